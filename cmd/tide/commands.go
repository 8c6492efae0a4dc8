package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// env is what a command may touch of the outside world; tests build their own.
type env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv func(string) string
	Logger *slog.Logger
}

func newEnv() *env {
	return &env{
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Stdin:  os.Stdin,
		Getenv: os.Getenv,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// command is one subcommand. Each lives in its own file and registers itself
// in an init function.
type command struct {
	Name    string
	Summary string
	// Hidden commands are not listed in the help (internal entry points).
	Hidden bool
	// Run parses args with the given flag set and does the work. A returned
	// exitError sets the exit code without printing anything more.
	Run func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.Name]; dup {
		panic("tide: command registered twice: " + c.Name)
	}
	commands[c.Name] = c
}

// exitError carries an exit code for a failure the command has already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "tide: an autoscaling scheduler for fleets of plain VMs")
	fmt.Fprintln(w, "\nUsage: tide COMMAND [flags]   (tide COMMAND --help for a command's flags)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.Hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run(ctx, e, []string{args[1], "--help"})
		}
		usage(e.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.Stderr, "tide: unknown command %q\n\n", args[0])
		usage(e.Stderr)
		return 2
	}
	fs := flag.NewFlagSet("tide "+c.Name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	err := c.Run(ctx, e, fs, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "invalid value") {
		return 2
	}
	fmt.Fprintf(e.Stderr, "tide %s: %v\n", c.Name, err)
	return 1
}

// parseFlags parses args and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, summary string) error {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n%s\n\nFlags:\n", fs.Name(), summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
