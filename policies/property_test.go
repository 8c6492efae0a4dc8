package policies

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// reference computes a window's activity by brute force: it watches the
// local clock minute by minute, like a person with a wall clock, and fires a
// cron expression when the clock first reaches a reading that matches it. A
// reading skipped by a jump forward fires when the clock jumps past it; a
// reading shown again after the clocks go back does not fire again.
type reference struct {
	loc    *time.Location
	starts []refFire // ascending
	ends   []refFire // ascending
	// reached[i] is the highest reading seen by minute i (index from begin).
	begin   time.Time
	reached []time.Time // reading as a UTC time.Time, per minute
	spec    CronSpec
}

type refFire struct {
	at      time.Time
	reading time.Time // the matching reading, as a UTC time.Time
}

func matches(s *cron.SpecSchedule, r time.Time) bool {
	if s.Minute&(1<<uint(r.Minute())) == 0 || s.Hour&(1<<uint(r.Hour())) == 0 || s.Month&(1<<uint(r.Month())) == 0 {
		return false
	}
	dom := s.Dom&(1<<uint(r.Day())) != 0
	dow := s.Dow&(1<<uint(r.Weekday())) != 0
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

func reading(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
}

func newReference(t *testing.T, spec CronSpec, begin, end time.Time) *reference {
	t.Helper()
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	parse := func(expr string) *cron.SpecSchedule {
		s, err := p.Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		return s.(*cron.SpecSchedule)
	}
	r := &reference{loc: loc(t, spec.TimeZone), begin: begin, spec: spec}
	start := parse(spec.Start)
	var endSched *cron.SpecSchedule
	if spec.End != "" {
		endSched = parse(spec.End)
	}
	maxSeen := reading(begin.Add(-time.Minute), r.loc)
	for m := begin; m.Before(end); m = m.Add(time.Minute) {
		cur := reading(m, r.loc)
		for rd := maxSeen.Add(time.Minute); !rd.After(cur); rd = rd.Add(time.Minute) {
			if matches(start, rd) && (len(r.starts) == 0 || !r.starts[len(r.starts)-1].at.Equal(m)) {
				r.starts = append(r.starts, refFire{at: m, reading: rd})
			}
			if endSched != nil && matches(endSched, rd) && (len(r.ends) == 0 || !r.ends[len(r.ends)-1].at.Equal(m)) {
				r.ends = append(r.ends, refFire{at: m, reading: rd})
			}
		}
		if cur.After(maxSeen) {
			maxSeen = cur
		}
		r.reached = append(r.reached, maxSeen)
	}
	return r
}

// activeAt returns the latest start at or before t and when it closes.
func (r *reference) activeAt(t *testing.T, now time.Time) (since, until time.Time, ok bool) {
	i, _ := slices.BinarySearchFunc(r.starts, now, func(f refFire, t time.Time) int {
		if f.at.After(t) {
			return 1
		}
		return -1
	})
	if i == 0 {
		t.Fatalf("reference has no start before %s: widen its range", now)
	}
	s := r.starts[i-1]
	switch {
	case r.spec.End != "":
		j, _ := slices.BinarySearchFunc(r.ends, s.at, func(f refFire, t time.Time) int {
			if f.at.After(t) {
				return 1
			}
			return -1
		})
		if j == len(r.ends) {
			t.Fatalf("reference has no end after %s", s.at)
		}
		until = r.ends[j].at
	case r.spec.WallClock:
		target := s.reading.Add(r.spec.Duration)
		j, _ := slices.BinarySearchFunc(r.reached, target, func(rd, t time.Time) int {
			if !rd.Before(t) {
				return 1
			}
			return -1
		})
		if j == len(r.reached) {
			t.Fatalf("reference never reaches %s", target)
		}
		until = r.begin.Add(time.Duration(j) * time.Minute)
	default:
		until = s.at.Add(r.spec.Duration)
	}
	return s.at, until, now.Before(until)
}

func TestActiveAtMatchesBruteForce(t *testing.T) {
	weeks := []struct {
		zone  string
		start time.Time // a week around a clock change
	}{
		{"Europe/Brussels", utc(2026, 3, 25, 0, 0)},
		{"Europe/Brussels", utc(2026, 10, 21, 0, 0)},
		{"America/New_York", utc(2026, 3, 5, 0, 0)},
		{"America/New_York", utc(2026, 10, 29, 0, 0)},
		{"Australia/Lord_Howe", utc(2026, 4, 1, 0, 0)}, // clocks move by 30 minutes
	}
	specs := []CronSpec{
		{Name: "business", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI"},
		{Name: "night", Start: "0 22 * * *", End: "0 6 * * *"},
		{Name: "small-hours", Start: "30 2 * * *", Duration: 30 * time.Minute},
		{Name: "small-hours-wall", Start: "30 2 * * *", Duration: 90 * time.Minute, WallClock: true},
		{Name: "quarter", Start: "*/15 1-3 * * *", Duration: 20 * time.Minute},
		{Name: "quarter-end", Start: "5 0-4 * * *", End: "*/20 1-3 * * *"},
		{Name: "weekend", Start: "0 18 * * FRI", Duration: 60 * time.Hour},
		{Name: "weekend-wall", Start: "0 18 * * FRI", Duration: 60 * time.Hour, WallClock: true},
		{Name: "sunday-early", Start: "0 2 * * SUN", End: "0 4 * * *"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, wk := range weeks {
		for _, spec := range specs {
			spec.TimeZone = wk.zone
			spec.Count = 1
			t.Run(wk.zone+"/"+wk.start.Format("2006-01")+"/"+spec.Name, func(t *testing.T) {
				w := mustCron(t, spec)
				ref := newReference(t, spec, wk.start.Add(-8*24*time.Hour), wk.start.Add(10*24*time.Hour))
				weekEnd := wk.start.Add(7 * 24 * time.Hour)
				check := func(now time.Time) {
					since, until, want := ref.activeAt(t, now)
					p, got := w.ActiveAt(now)
					if got != want || (got && (!p.Since.Equal(since) || !p.Until.Equal(until))) {
						t.Fatalf("ActiveAt(%s = %s local) = %v [%s, %s), reference %v [%s, %s)",
							now, now.In(w.Location()), got, p.Since.UTC(), p.Until.UTC(), want, since.UTC(), until.UTC())
					}
				}
				// Every minute in order (the cached path), then random
				// instants out of order (cache misses).
				for now := wk.start; now.Before(weekEnd); now = now.Add(time.Minute) {
					check(now)
				}
				for range 300 {
					now := wk.start.Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
					check(now)
					check(now.Truncate(time.Minute))
				}
				// Transitions are exactly where the reference flips.
				var want []time.Time
				prev := false
				for now := wk.start.Add(-time.Minute); now.Before(weekEnd); now = now.Add(time.Minute) {
					_, _, act := ref.activeAt(t, now)
					if act != prev && !now.Before(wk.start) {
						want = append(want, now)
					}
					prev = act
				}
				if got := (Set{w}).Transitions(wk.start, weekEnd); !slices.EqualFunc(got, want, time.Time.Equal) {
					t.Errorf("Transitions =\n%v\nreference\n%v", got, want)
				}
			})
		}
	}
}
