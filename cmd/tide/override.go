package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tideops/tide/scheduler"
)

func init() {
	register(command{Name: "override", Summary: "pin or floor a role for a while, with a reason (talks to tide serve)", Run: runOverride})
}

const overrideHelp = `Sets, lists and clears operators' overrides on a running tide serve:

  tide override set ROLE=N --for 2h --reason TEXT [--floor] [--ignore-limits]
  tide override list
  tide override clear ROLE

set pins ROLE at exactly N hosts (or, with --floor, keeps at least N) until
the override expires (--for DURATION or --until RFC3339). An override beats
the schedule and the load, but stays within the role's min and max unless
--ignore-limits says otherwise.

The service's address comes from --addr or TIDE_ADDR (default
http://127.0.0.1:8080), the token from --token-file, TIDE_TOKEN, or the
token tide serve made in the state directory.`

// apiClient talks to tide serve's API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func overrideUsage(fs *flag.FlagSet) error {
	fs.Usage()
	return exitError{2}
}

func runOverride(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	addr := fs.String("addr", "", "tide serve's address (env TIDE_ADDR; default http://127.0.0.1:8080)")
	tokenFile := fs.String("token-file", "", "file holding the API token (env TIDE_TOKEN)")
	stateDir := stateDirFlag(fs, e)
	floor := fs.Bool("floor", false, "set: keep at least N hosts instead of exactly N")
	forD := fs.Duration("for", 0, "set: how long the override lasts")
	until := fs.String("until", "", "set: when the override ends, RFC3339")
	reason := fs.String("reason", "", "set: why (required)")
	ignoreLimits := fs.Bool("ignore-limits", false, "set: allow a count outside the role's min and max")
	output := fs.String("output", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tide override set|list|clear ...\n\n%s\n\nFlags:\n", overrideHelp)
		fs.PrintDefaults()
	}
	// Flags may come before or after the positional arguments.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		return overrideUsage(fs)
	}
	c, err := newAPIClient(e, *addr, *tokenFile, *stateDir)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "set":
		if len(pos) != 2 {
			return fmt.Errorf("set: want ROLE=N, got %q", strings.Join(pos[1:], " "))
		}
		role, n, ok := strings.Cut(pos[1], "=")
		count, err := strconv.Atoi(n)
		if !ok || role == "" || err != nil {
			return fmt.Errorf("set: want ROLE=N, got %q", pos[1])
		}
		if strings.TrimSpace(*reason) == "" {
			return fmt.Errorf("set: --reason is required: say why, for the next person")
		}
		req := map[string]any{"role": role, "count": count, "kind": scheduler.Pin, "reason": *reason, "ignore_limits": *ignoreLimits}
		if *floor {
			req["kind"] = scheduler.FloorOverride
		}
		switch {
		case *forD > 0 && *until != "":
			return fmt.Errorf("set: give --for or --until, not both")
		case *forD > 0:
			req["for"] = forD.String()
		case *until != "":
			req["until"] = *until
		default:
			return fmt.Errorf("set: --for DURATION or --until TIME is required: overrides always expire")
		}
		var o scheduler.Override
		if err := c.do(ctx, http.MethodPost, "/api/overrides", req, &o); err != nil {
			return err
		}
		if *output == "json" {
			return writeJSONTo(e.Stdout, o)
		}
		fmt.Fprintf(e.Stdout, "%s: %s %d until %s (%s)\n", o.Role, o.Kind, o.Count, o.Until.Local().Format(time.RFC3339), o.Reason)
		return nil
	case "list":
		var out struct {
			Overrides []scheduler.Override `json:"overrides"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/overrides", nil, &out); err != nil {
			return err
		}
		if *output == "json" {
			return writeJSONTo(e.Stdout, out.Overrides)
		}
		if len(out.Overrides) == 0 {
			fmt.Fprintln(e.Stdout, "no overrides in force")
			return nil
		}
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tKIND\tCOUNT\tUNTIL\tREASON")
		for _, o := range out.Overrides {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", o.Role, o.Kind, o.Count, o.Until.Local().Format(time.RFC3339), o.Reason)
		}
		return tw.Flush()
	case "clear":
		if len(pos) != 2 {
			return fmt.Errorf("clear: want ROLE")
		}
		if err := c.do(ctx, http.MethodDelete, "/api/overrides/"+url.PathEscape(pos[1]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "%s: override cleared\n", pos[1])
		return nil
	}
	return fmt.Errorf("unknown override command %q: want set, list or clear", pos[0])
}

// newAPIClient finds the address and token of a running tide serve.
func newAPIClient(e *env, addr, tokenFile, stateDir string) (*apiClient, error) {
	if addr == "" {
		addr = e.Getenv("TIDE_ADDR")
	}
	if addr == "" {
		addr = "http://127.0.0.1:8080"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	token := ""
	switch {
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	case e.Getenv("TIDE_TOKEN") != "":
		token = strings.TrimSpace(e.Getenv("TIDE_TOKEN"))
	default:
		b, err := os.ReadFile(filepath.Join(stateDir, "api-token"))
		if err != nil {
			return nil, fmt.Errorf("no API token: set TIDE_TOKEN or --token-file (tide serve's own token was not found in %s)", stateDir)
		}
		token = strings.TrimSpace(string(b))
	}
	return &apiClient{base: strings.TrimRight(addr, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
// An error answer's message is returned as the error.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reaching tide serve: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading tide serve's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("tide serve: %s", e.Error)
		}
		return fmt.Errorf("tide serve: %s", resp.Status)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding tide serve's answer: %w", err)
	}
	return nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
