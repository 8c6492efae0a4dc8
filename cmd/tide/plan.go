package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/scheduler"
)

func init() {
	register(command{Name: "plan", Summary: "show the desired count per role at a time, and why", Run: runPlan})
}

const planHelp = `Shows, per role, the count tide would want at a time (default now) and the
record of that decision. Load-driven roles are decided without load unless
--load gives a sample (e.g. --load web=520). --explain ROLE prints the whole
record; --week prints each role's scheduled counts hour by hour for the next
7 days in the policies' local time, marking daylight-saving changes.`

// loadFlag collects role=value pairs.
type loadFlag map[string]float64

func (l loadFlag) String() string { return fmt.Sprint(map[string]float64(l)) }
func (l loadFlag) Set(s string) error {
	role, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want ROLE=VALUE, got %q", s)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("load for %s: %w", role, err)
	}
	l[role] = f
	return nil
}

func runPlan(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	file := fs.String("c", "", "schedule file (required)")
	at := fs.String("at", "", "time to plan for, RFC3339 (default now)")
	explain := fs.String("explain", "", "print the whole decision record of this role")
	week := fs.Bool("week", false, "print scheduled counts hour by hour for the next 7 days")
	output := fs.String("output", "text", "output format: text or json")
	loads := loadFlag{}
	fs.Var(loads, "load", "a load sample ROLE=VALUE to decide with (repeatable)")
	if err := parseFlags(fs, args, planHelp); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("-c FILE is required")
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--at: %w", err)
		}
		now = t
	}
	s, err := config.Load(*file)
	if err != nil {
		return reportConfigError(e, err)
	}
	if *explain != "" && findRole(s, *explain) == nil {
		return fmt.Errorf("--explain: no role %q in %s", *explain, *file)
	}
	for r := range loads {
		if findRole(s, r) == nil {
			return fmt.Errorf("--load: no role %q in %s", r, *file)
		}
	}
	if *week {
		return printWeek(e.Stdout, s, now, *output == "json")
	}
	var records []scheduler.Record
	for _, r := range s.Roles {
		windows, err := s.Windows(r.Name)
		if err != nil {
			return err
		}
		role := scheduler.NewRole(scheduler.ParamsFor(s, r), windows, nil)
		if v, ok := loads[r.Name]; ok {
			role.Observe(scheduler.Sample{At: now, Value: v})
		}
		records = append(records, role.Decide(now, nil))
	}
	if *output == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(records)
	}
	fmt.Fprintf(e.Stdout, "plan for %s at %s\n", s.Name, now.Format(time.RFC3339))
	for _, rec := range records {
		if *explain != "" {
			if rec.Role == *explain {
				fmt.Fprint(e.Stdout, rec.String())
			}
			continue
		}
		fmt.Fprintf(e.Stdout, "  %-10s %3d  %s\n", rec.Role, rec.Desired, reasonOf(rec))
	}
	return nil
}

// reasonOf is the winning input's detail, with any limit that applied.
func reasonOf(rec scheduler.Record) string {
	var b strings.Builder
	for _, in := range rec.Inputs {
		if in.Won {
			b.WriteString(in.Detail.String())
		}
	}
	for _, s := range rec.Steps {
		fmt.Fprintf(&b, " [%s: %s]", s.Kind, s.Detail)
	}
	return b.String()
}

func findRole(s *config.Schedule, name string) *config.Role {
	for i := range s.Roles {
		if s.Roles[i].Name == name {
			return &s.Roles[i]
		}
	}
	return nil
}

// planZone is the time zone the week is shown in: the first zone a cron
// window names, else UTC.
func planZone(s *config.Schedule) *time.Location {
	for _, r := range s.Roles {
		for _, w := range r.Policies.Schedule {
			if w.TimeZone == "" {
				continue
			}
			if loc, err := time.LoadLocation(w.TimeZone); err == nil {
				return loc
			}
		}
	}
	return time.UTC
}

type weekRow struct {
	At     time.Time      `json:"at"`
	Counts map[string]int `json:"counts"`
	DST    string         `json:"dst_change,omitempty"`
}

// computeWeek is each role's scheduled count hour by hour for the 7 days
// from now, in the schedule's zone, with daylight-saving changes marked.
func computeWeek(s *config.Schedule, now time.Time) (*time.Location, []string, []weekRow, error) {
	loc := planZone(s)
	start := now.In(loc).Truncate(time.Hour)
	type roleWindows struct {
		p scheduler.Params
		w policies.Set
	}
	var roles []roleWindows
	var names []string
	for _, r := range s.Roles {
		ws, err := s.Windows(r.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		roles = append(roles, roleWindows{scheduler.ParamsFor(s, r), ws})
		names = append(names, r.Name)
	}
	var rows []weekRow
	prevName, prevOff := start.Zone()
	for h := 0; h < 7*24; h++ {
		at := start.Add(time.Duration(h) * time.Hour).In(loc)
		row := weekRow{At: at, Counts: map[string]int{}}
		name, off := at.Zone()
		if off != prevOff {
			row.DST = fmt.Sprintf("%s -> %s (UTC%+d -> UTC%+d)", prevName, name, prevOff/3600, off/3600)
			prevOff, prevName = off, name
		}
		for _, r := range roles {
			n, _ := scheduler.ScheduledCount(r.p, r.w, at)
			row.Counts[r.p.Role] = n
		}
		rows = append(rows, row)
	}
	return loc, names, rows, nil
}

func printWeek(w io.Writer, s *config.Schedule, now time.Time, asJSON bool) error {
	loc, roles, rows, err := computeWeek(s, now)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Fprintf(w, "scheduled counts for %s, hour by hour, in %s (load may raise them)\n", s.Name, loc)
	fmt.Fprintf(w, "%-26s", "local time")
	for _, r := range roles {
		fmt.Fprintf(w, " %8s", r)
	}
	fmt.Fprintln(w)
	for i, row := range rows {
		if row.DST != "" {
			fmt.Fprintf(w, "---- daylight-saving change: %s ----\n", row.DST)
		}
		changed := i == 0 || row.DST != ""
		if i > 0 {
			for k, v := range row.Counts {
				if rows[i-1].Counts[k] != v {
					changed = true
				}
			}
		}
		mark := " "
		if changed {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %-24s", mark, row.At.Format("Mon 2006-01-02 15:04 MST"))
		for _, r := range roles {
			fmt.Fprintf(w, " %8d", row.Counts[r])
		}
		fmt.Fprintln(w)
	}
	return nil
}

// reportConfigError prints schedule problems one a line and exits 1.
func reportConfigError(e *env, err error) error {
	fmt.Fprintln(e.Stderr, err)
	return exitError{1}
}
