package policies

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	_ "time/tzdata" // time zones work on hosts without a zoneinfo database

	"github.com/robfig/cron/v3"
)

// Window is a policy that is either active or not at a given instant, and
// proposes a count while active.
type Window interface {
	// Name returns the window's name, as written in the schedule.
	Name() string
	// ActiveAt returns the window's proposal and true when it is open at now.
	ActiveAt(now time.Time) (Proposal, bool)
}

// Edger is implemented by windows that can list the instants at which they
// may open or close. Set.Transitions uses it; for other windows it falls
// back to looking at every minute.
type Edger interface {
	// Edges returns, sorted, instants in [from, to) at which the window may
	// open or close. It may list instants where nothing changes, never miss
	// one where something does.
	Edges(from, to time.Time) []time.Time
}

var (
	_ Window = (*CronWindow)(nil)
	_ Window = (*OneOffWindow)(nil)
	_ Edger  = (*CronWindow)(nil)
	_ Edger  = (*OneOffWindow)(nil)
)

// Limits on window specifications.
const (
	// maxWindow is the longest a window may stay open: a Duration above it,
	// or an End that can be more than this many days from a start, is an
	// error ("window never ends").
	maxWindowDays = 366
	maxWindow     = maxWindowDays * 24 * time.Hour
	// nextHorizon is how far ahead ActiveAt looks for the next start to
	// know how long its answer holds.
	nextHorizon = 35 * 24 * time.Hour
)

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CronSpec specifies a recurring window: it opens at each fire time of Start
// and stays open until the next fire time of End after that, or for
// Duration. Exactly one of End and Duration is set.
type CronSpec struct {
	// Name names the window in proposals and errors.
	Name string
	// Start is a 5-field cron expression (minute hour day-of-month month
	// day-of-week, names like MON-FRI allowed) or a descriptor (@daily,
	// @weekly, @monthly, @yearly, @hourly), read on the clock of TimeZone.
	Start string
	// End is a cron expression like Start; the window closes at its first
	// fire time after the window opened.
	End string
	// Duration is how long the window stays open: real elapsed time unless
	// WallClock is set.
	Duration time.Duration
	// WallClock makes Duration a span of the local clock rather than of real
	// time: Friday 18:00 for 60h closes at Monday 06:00 local even when the
	// clocks change over the weekend (59 or 61 real hours).
	WallClock bool
	// TimeZone is an IANA time zone name such as Europe/Brussels; empty
	// means UTC.
	TimeZone string
	// Count is the number of hosts proposed while the window is open.
	Count int
	// Mode is Floor (the default when empty) or Exact.
	Mode Mode
}

// CronWindow is a recurring window in a time zone. It is safe for
// concurrent use.
//
// Fire times are computed on the wall clock of the window's time zone, the
// way people read a schedule:
//   - A window from 08:00 to 18:00 is open 08:00-18:00 local on both sides
//     of a clock change.
//   - A start (or end) time that does not exist because the clocks jump
//     forward (02:30 on the spring-forward day) happens at the first instant
//     after the gap (03:00 local): a skipped hour never loses a window.
//     Several fire times inside one skipped hour happen together, once.
//   - A time that exists twice because the clocks go back (02:30 on the
//     fall-back day in Europe, 01:30 in America/New_York) fires once, at its
//     first occurrence; the window is not reopened at the second.
//
// A Duration is real elapsed time by default (a 10h window is open ten
// hours even on a clock-change day), or a span of the local clock when
// CronSpec.WallClock is set. A window is open on [start, end). When
// occurrences overlap (a start comes before the previous occurrence
// closed), the window stays open; Since is then the latest start and Until
// the close of that latest occurrence.
type CronWindow struct {
	name      string
	spec      CronSpec
	loc       *time.Location
	start     *schedule
	end       *schedule // nil for a duration window
	mode      Mode
	lookback  time.Duration // no occurrence is open longer than this
	describe  string
	cache     atomic.Pointer[span]
	wallClock bool
}

// span is a cached answer of CronWindow.ActiveAt: for instants in [lo, hi)
// the latest start is the one of proposal (when has), and the window is
// open iff the instant is before proposal.Until.
type span struct {
	lo, hi   time.Time
	has      bool
	proposal Proposal
}

// NewCronWindow checks spec and returns its window. Errors are *SpecError.
func NewCronWindow(spec CronSpec) (*CronWindow, error) {
	w := &CronWindow{name: spec.Name, spec: spec, wallClock: spec.WallClock}
	var err error
	if w.mode, err = checkMode(spec.Mode); err != nil {
		return nil, err
	}
	if spec.Count < 0 {
		return nil, specErrorf("count", "count %d is negative", spec.Count)
	}
	if w.loc, err = loadZone(spec.TimeZone); err != nil {
		return nil, err
	}
	if w.start, err = parseSchedule("start", spec.Start, w.loc); err != nil {
		return nil, err
	}
	if !w.start.firesEver() {
		return nil, specErrorf("start", "%q never fires", spec.Start)
	}
	switch {
	case spec.End == "" && spec.Duration == 0:
		return nil, specErrorf("end", "set end or duration")
	case spec.End != "" && spec.Duration != 0:
		return nil, specErrorf("duration", "set end or duration, not both")
	case spec.End != "":
		if w.end, err = parseSchedule("end", spec.End, w.loc); err != nil {
			return nil, err
		}
		gap := w.end.maxDayGap()
		if gap < 0 {
			return nil, specErrorf("end", "window never ends: %q never fires", spec.End)
		}
		if gap > maxWindowDays {
			return nil, specErrorf("end", "window never ends: %q fires only every %d days, a window may stay open at most %d", spec.End, gap, maxWindowDays)
		}
		// The next end after any start is at most gap days after the
		// start's day, plus a day for the clock readings and changes.
		w.lookback = time.Duration(gap+2) * 24 * time.Hour
	default:
		if spec.Duration < 0 {
			return nil, specErrorf("duration", "duration %s is negative", spec.Duration)
		}
		if spec.Duration > maxWindow {
			return nil, specErrorf("duration", "duration %s is longer than %d days", spec.Duration, maxWindowDays)
		}
		w.lookback = spec.Duration
		if spec.WallClock {
			w.lookback += 24 * time.Hour // clock changes stretch it by hours at most
		}
	}
	if spec.WallClock && spec.End != "" {
		return nil, specErrorf("duration", "wall clock applies to a duration, not to an end")
	}
	w.describe = describeCron(w)
	return w, nil
}

func checkMode(m Mode) (Mode, error) {
	switch m {
	case "":
		return Floor, nil
	case Floor, Exact:
		return m, nil
	}
	return "", specErrorf("mode", "mode %q is neither %q nor %q", m, Floor, Exact)
}

func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, specErrorf("timezone", "name a time zone such as Europe/Brussels, not Local")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &SpecError{Field: "timezone", Err: err}
	}
	return loc, nil
}

func parseSchedule(field, expr string, loc *time.Location) (*schedule, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, specErrorf(field, "empty cron expression")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, specErrorf(field, "%q: put the time zone in the timezone field, not in the expression", expr)
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		return nil, &SpecError{Field: field, Err: err}
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, specErrorf(field, "%q: @every is not supported, windows follow the calendar", expr)
	}
	return newSchedule(expr, spec, loc), nil
}

// Name returns the window's name.
func (w *CronWindow) Name() string { return w.name }

// Location returns the time zone the window's cron expressions are read in.
func (w *CronWindow) Location() *time.Location { return w.loc }

// Spec returns the specification the window was built from.
func (w *CronWindow) Spec() CronSpec { return w.spec }

// ActiveAt returns the window's proposal and true when the window is open at
// now: when the latest start at or before now has not yet closed.
func (w *CronWindow) ActiveAt(now time.Time) (Proposal, bool) {
	c := w.cache.Load()
	if c == nil || now.Before(c.lo) || !now.Before(c.hi) {
		c = w.spanAt(now)
		w.cache.Store(c)
	}
	if !c.has || !now.Before(c.proposal.Until) {
		return Proposal{}, false
	}
	return c.proposal, true
}

// spanAt computes the answer of ActiveAt around now and how long it holds.
func (w *CronWindow) spanAt(now time.Time) *span {
	hi := now.Add(nextHorizon)
	if n, ok := w.start.next(now, hi); ok {
		hi = time.Unix(n.at, 0)
	}
	s, ok := w.start.prev(now, now.Add(-w.lookback))
	if !ok {
		// No start within lookback before now, and none until hi.
		return &span{lo: now, hi: hi}
	}
	open, closes := w.occurrence(s)
	return &span{lo: open, hi: hi, has: true, proposal: w.proposal(open, closes)}
}

// occurrence returns when the occurrence started by s opens and closes.
func (w *CronWindow) occurrence(s fire) (open, closes time.Time) {
	open = time.Unix(s.at, 0).In(w.loc)
	switch {
	case w.end != nil:
		e, ok := w.end.next(open, open.Add(w.lookback))
		if !ok { // cannot happen: checked by NewCronWindow
			return open, open.Add(w.lookback)
		}
		closes = time.Unix(e.at, 0)
	case w.wallClock:
		d := w.spec.Duration
		closes = time.Unix(resolve(w.loc, s.wall+int64(d/time.Second)), int64(d%time.Second))
	default:
		closes = open.Add(w.spec.Duration)
	}
	return open, closes.In(w.loc)
}

func (w *CronWindow) proposal(open, closes time.Time) Proposal {
	return Proposal{
		Policy: w.name,
		Count:  w.spec.Count,
		Mode:   w.mode,
		Since:  open,
		Until:  closes,
		Reason: fmt.Sprintf("%s: %s (opened %s, closes %s): %s %d",
			w.name, w.describe, open.Format("2006-01-02 15:04 MST"), formatClose(open, closes), w.mode, w.spec.Count),
	}
}

// Edges returns, sorted, the instants in [from, to) at which the window
// opens or closes an occurrence.
func (w *CronWindow) Edges(from, to time.Time) []time.Time {
	var out []time.Time
	w.start.between(from.Add(-w.lookback), to, func(f fire) {
		open, closes := w.occurrence(f)
		if !open.Before(from) {
			out = append(out, open)
		}
		if !closes.Before(from) && closes.Before(to) {
			out = append(out, closes)
		}
	})
	slices.SortFunc(out, time.Time.Compare)
	return slices.CompactFunc(out, time.Time.Equal)
}

// OneOffSpec specifies a dated window, open on [From, Until).
type OneOffSpec struct {
	Name        string
	From, Until time.Time
	Count       int
	// Mode is Floor (the default when empty) or Exact.
	Mode Mode
}

// OneOffWindow is a dated window, open on [From, Until).
type OneOffWindow struct {
	spec     OneOffSpec
	proposal Proposal
}

// NewOneOffWindow checks spec and returns its window. Errors are *SpecError.
func NewOneOffWindow(spec OneOffSpec) (*OneOffWindow, error) {
	mode, err := checkMode(spec.Mode)
	if err != nil {
		return nil, err
	}
	if spec.Count < 0 {
		return nil, specErrorf("count", "count %d is negative", spec.Count)
	}
	if spec.From.IsZero() {
		return nil, specErrorf("from", "from is not set")
	}
	if !spec.Until.After(spec.From) {
		return nil, specErrorf("until", "until %s is not after from %s", spec.Until.Format(time.RFC3339), spec.From.Format(time.RFC3339))
	}
	return &OneOffWindow{spec: spec, proposal: Proposal{
		Policy: spec.Name,
		Count:  spec.Count,
		Mode:   mode,
		Since:  spec.From,
		Until:  spec.Until,
		Reason: fmt.Sprintf("%s: %s to %s: %s %d", spec.Name,
			spec.From.Format("2006-01-02 15:04 MST"), formatClose(spec.From, spec.Until), mode, spec.Count),
	}}, nil
}

// Name returns the window's name.
func (w *OneOffWindow) Name() string { return w.spec.Name }

// Spec returns the specification the window was built from.
func (w *OneOffWindow) Spec() OneOffSpec { return w.spec }

// ActiveAt returns the window's proposal and true when From <= now < Until.
func (w *OneOffWindow) ActiveAt(now time.Time) (Proposal, bool) {
	if now.Before(w.spec.From) || !now.Before(w.spec.Until) {
		return Proposal{}, false
	}
	return w.proposal, true
}

// Edges returns From and Until when they are in [from, to).
func (w *OneOffWindow) Edges(from, to time.Time) []time.Time {
	var out []time.Time
	for _, t := range []time.Time{w.spec.From, w.spec.Until} {
		if !t.Before(from) && t.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

// Set is a role's windows.
type Set []Window

// At returns the proposals of the windows active at now, in the set's order.
func (s Set) At(now time.Time) []Proposal {
	var out []Proposal
	for _, w := range s {
		if p, ok := w.ActiveAt(now); ok {
			out = append(out, p)
		}
	}
	return out
}

// Location returns the time zone of the set's first cron window, or UTC when
// it has none: the zone to show the set's schedule in.
func (s Set) Location() *time.Location {
	for _, w := range s {
		if cw, ok := w.(*CronWindow); ok {
			return cw.Location()
		}
	}
	return time.UTC
}

// Transitions returns the instants in [from, to) at which the set of active
// windows changes, sorted. An instant where one window closes as another
// opens is listed; one where a window's occurrence ends as its next begins
// is not.
func (s Set) Transitions(from, to time.Time) []time.Time {
	if !from.Before(to) {
		return nil
	}
	var cands []time.Time
	for _, w := range s {
		if e, ok := w.(Edger); ok {
			cands = append(cands, e.Edges(from, to)...)
			continue
		}
		for t := from.Truncate(time.Minute); t.Before(to); t = t.Add(time.Minute) {
			if !t.Before(from) {
				cands = append(cands, t)
			}
		}
	}
	slices.SortFunc(cands, time.Time.Compare)
	cands = slices.CompactFunc(cands, time.Time.Equal)

	// The active set is constant between consecutive candidates, so the set
	// just before a candidate is the set at the previous one.
	prev := s.activeSet(from.Add(-time.Nanosecond))
	var out []time.Time
	for _, t := range cands {
		cur := s.activeSet(t)
		if !slices.Equal(prev, cur) {
			out = append(out, t)
		}
		prev = cur
	}
	return out
}

func (s Set) activeSet(t time.Time) []bool {
	act := make([]bool, len(s))
	for i, w := range s {
		_, act[i] = w.ActiveAt(t)
	}
	return act
}

// Conflict is two exact windows that propose different counts at the same
// time. At is when they start to conflict.
type Conflict struct {
	A, B string
	At   time.Time
}

// String describes the conflict.
func (c Conflict) String() string {
	return fmt.Sprintf("exact windows %q and %q propose different counts from %s", c.A, c.B, c.At.Format("2006-01-02 15:04 MST"))
}

// ExactConflicts returns the pairs of exact windows in ws that propose
// different counts at the same instant within [from, from+span), one
// Conflict per pair and stretch of overlap, ordered by time. Floor windows
// and exact windows that agree on the count do not conflict.
func ExactConflicts(ws []Window, from time.Time, span time.Duration) []Conflict {
	set := Set(ws)
	instants := append([]time.Time{from}, set.Transitions(from, from.Add(span))...)
	instants = slices.CompactFunc(instants, time.Time.Equal)
	type pair struct{ a, b int }
	var out []Conflict
	prev := map[pair]bool{}
	for _, t := range instants {
		cur := map[pair]bool{}
		var idx []int
		var props []Proposal
		for i, w := range ws {
			if p, ok := w.ActiveAt(t); ok && p.Mode == Exact {
				idx = append(idx, i)
				props = append(props, p)
			}
		}
		for i := range idx {
			for j := i + 1; j < len(idx); j++ {
				if props[i].Count == props[j].Count {
					continue
				}
				k := pair{idx[i], idx[j]}
				cur[k] = true
				if !prev[k] {
					out = append(out, Conflict{A: ws[k.a].Name(), B: ws[k.b].Name(), At: t})
				}
			}
		}
		prev = cur
	}
	return out
}

// IsSpecError reports whether err is or wraps a *SpecError, and returns it.
func IsSpecError(err error) (*SpecError, bool) {
	var se *SpecError
	ok := errors.As(err, &se)
	return se, ok
}

// ClockChanges returns the instants in [from, to) at which the clocks of loc
// change (daylight saving time starts or ends), sorted: for marking them in a
// week's plan.
func ClockChanges(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	for t := from; t.Before(to); {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		if !end.Before(from) {
			out = append(out, end)
		}
		t = end
	}
	return out
}
