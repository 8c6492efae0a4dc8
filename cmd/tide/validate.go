package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	// Schedules name IANA time zones; embed the database so that validation
	// does not depend on the machine's zoneinfo files.
	_ "time/tzdata"

	"github.com/tideops/tide/config"
)

func init() {
	register(command{Name: "validate", Summary: "check a schedule file", Run: runValidate})
}

const validateHelp = `Checks a schedule file: strict YAML (unknown fields are errors), references
between roles and applications, cron windows and time zones, and exact
windows that would conflict in the coming year. Prints "FILE: ok" and exits 0,
or prints every problem as FILE:LINE:COL: FIELD: MESSAGE and exits 1.`

func runValidate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	file := fs.String("c", "", "schedule file (required)")
	at := fs.String("at", "", "time to look for conflicting windows from, RFC3339 (default now)")
	if err := parseFlags(fs, args, validateHelp); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(e.Stderr, "tide validate: -c FILE is required")
		return exitError{2}
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fmt.Fprintf(e.Stderr, "tide validate: bad -at %q: want RFC3339, like 2026-03-02T09:00:00+01:00\n", *at)
			return exitError{2}
		}
		now = t
	}
	s, err := config.Load(*file, config.WithNow(now))
	var ps config.Problems
	switch {
	case errors.As(err, &ps):
		for _, p := range ps {
			fmt.Fprintln(e.Stderr, p)
		}
		return exitError{1}
	case err != nil:
		return err
	}
	fmt.Fprintf(e.Stdout, "%s: ok (%d roles, %d applications)\n", *file, len(s.Roles), len(s.Applications))
	return nil
}
