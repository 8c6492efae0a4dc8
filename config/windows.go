package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/tideops/tide/policies"
)

// Windows compiles a role's cron and one-off windows, in the file's order
// (recurring windows first). The scheduler asks the returned set for
// proposals at each instant.
func (s *Schedule) Windows(role string) (policies.Set, error) {
	r, ok := s.Role(role)
	if !ok {
		return nil, fmt.Errorf("compiling windows: unknown role %q", role)
	}
	ws, errs := compileWindows(r)
	if len(errs) > 0 {
		e := errs[0]
		return nil, fmt.Errorf("compiling windows of role %s: %s: %w", role, e.path, e.err)
	}
	return ws, nil
}

// windowError is a window that would not compile; path is relative to the
// role's policies ("schedule[0]").
type windowError struct {
	path string
	err  error
}

func compileWindows(r Role) (policies.Set, []windowError) {
	var (
		set  policies.Set
		errs []windowError
	)
	for j, w := range r.Policies.Schedule {
		cw, err := policies.NewCronWindow(policies.CronSpec{
			Name:      w.Name,
			Start:     w.Start,
			End:       w.End,
			Duration:  w.Duration.D(),
			WallClock: w.WallClock,
			TimeZone:  w.TimeZone,
			Count:     w.Count,
			Mode:      policies.Mode(w.Mode),
		})
		if err != nil {
			errs = append(errs, windowError{index("schedule", j), err})
			continue
		}
		set = append(set, cw)
	}
	for j, w := range r.Policies.Windows {
		ow, err := policies.NewOneOffWindow(policies.OneOffSpec{
			Name:  w.Name,
			From:  w.From,
			Until: w.Until,
			Count: w.Count,
			Mode:  policies.Mode(w.Mode),
		})
		if err != nil {
			errs = append(errs, windowError{index("windows", j), err})
			continue
		}
		set = append(set, ow)
	}
	return set, errs
}

// compile asks the policies package to compile a role's windows (after
// config's own checks passed) and to find exact windows that overlap with
// different counts in the year after now. names maps window names to their
// paths.
func (v *validator) compile(p string, r Role, names map[string]string, now time.Time) {
	set, errs := compileWindows(r)
	for _, e := range errs {
		wp := p + "." + e.path
		var se *policies.SpecError
		if errors.As(e.err, &se) {
			v.add(wp+"."+se.Field, "%v", se.Err)
			continue
		}
		v.add(wp, "%v", e.err)
	}
	if len(errs) > 0 {
		return
	}
	// Only exact windows can conflict; most roles have fewer than two, and
	// then there is nothing to look for.
	exact := 0
	for _, w := range r.Policies.Schedule {
		if w.Mode == string(policies.Exact) {
			exact++
		}
	}
	for _, w := range r.Policies.Windows {
		if w.Mode == string(policies.Exact) {
			exact++
		}
	}
	if exact < 2 {
		return
	}
	counts := map[string]int{}
	for _, w := range r.Policies.Schedule {
		counts[w.Name] = w.Count
	}
	for _, w := range r.Policies.Windows {
		counts[w.Name] = w.Count
	}
	reported := map[[2]string]bool{}
	for _, c := range policies.ExactConflicts(set, now, conflictSpan) {
		// A weekly pair conflicts every week; once is enough.
		if reported[[2]string{c.A, c.B}] {
			continue
		}
		reported[[2]string{c.A, c.B}] = true
		this, other := c.B, c.A
		if names[this] == "" {
			this, other = other, this
		}
		v.add(names[this], "exact window %q (count %d) overlaps exact window %q (count %d), first at %s",
			this, counts[this], other, counts[other], c.At.Format(time.RFC3339))
	}
}
