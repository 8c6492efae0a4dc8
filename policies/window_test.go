package policies

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func loc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return l
}

func mustCron(t testing.TB, spec CronSpec) *CronWindow {
	t.Helper()
	w, err := NewCronWindow(spec)
	if err != nil {
		t.Fatalf("NewCronWindow(%+v): %v", spec, err)
	}
	return w
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

// TestRobfigNextDST pins down what robfig/cron's own Next does on clock
// changes, which is why fire times are computed on the wall clock here: it
// loses a fire time in a skipped hour and fires twice in a repeated one.
func TestRobfigNextDST(t *testing.T) {
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	bxl := loc(t, "Europe/Brussels")
	sched, err := p.Parse("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("skipped hour loses the fire", func(t *testing.T) {
		got := sched.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, bxl))
		if want := time.Date(2026, 3, 30, 2, 30, 0, 0, bxl); !got.Equal(want) {
			t.Errorf("Next = %s, want %s (robfig skips the 29th)", got, want)
		}
	})
	t.Run("repeated hour fires twice", func(t *testing.T) {
		first := sched.Next(time.Date(2026, 10, 24, 12, 0, 0, 0, bxl))
		second := sched.Next(first)
		if !first.Equal(utc(2026, 10, 25, 0, 30)) || !second.Equal(utc(2026, 10, 25, 1, 30)) {
			t.Errorf("Next = %s then %s, want 00:30Z then 01:30Z", first.UTC(), second.UTC())
		}
	})
	t.Run("our schedule fires once on both days", func(t *testing.T) {
		w := mustCron(t, CronSpec{Name: "x", Start: "30 2 * * *", Duration: time.Minute, TimeZone: "Europe/Brussels"})
		var got []time.Time
		w.start.between(utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0), func(f fire) { got = append(got, time.Unix(f.at, 0).UTC()) })
		w.start.between(utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0), func(f fire) { got = append(got, time.Unix(f.at, 0).UTC()) })
		want := []time.Time{
			utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), // 03:00 CEST after the gap; 02:30 CEST
			utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), // first 02:30 only; 02:30 CET
		}
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Errorf("fires = %v, want %v", got, want)
		}
	})
}

func TestCronWindowActiveAt(t *testing.T) {
	bxl := loc(t, "Europe/Brussels")
	local := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, bxl) }
	business := CronSpec{Name: "business-hours", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI", TimeZone: "Europe/Brussels", Count: 6}
	night := CronSpec{Name: "night", Start: "0 22 * * *", End: "0 6 * * *", TimeZone: "Europe/Brussels", Count: 1, Mode: Exact}
	weekend := CronSpec{Name: "drp", Start: "0 18 * * FRI", Duration: 60 * time.Hour, TimeZone: "Europe/Brussels", Count: 8}
	monthly := CronSpec{Name: "month-start", Start: "0 0 1 * *", Duration: 72 * time.Hour, TimeZone: "Europe/Brussels", Count: 3}
	monthlyEnd := CronSpec{Name: "closing", Start: "0 0 1 * *", End: "0 0 8 * *", TimeZone: "Europe/Brussels", Count: 3}
	weekly := CronSpec{Name: "weekly", Start: "@weekly", Duration: 24 * time.Hour, Count: 2}

	tests := []struct {
		name         string
		spec         CronSpec
		at           time.Time
		active       bool
		since, until time.Time
	}{
		{"weekday morning", business, local(2026, 11, 27, 10, 0), true, local(2026, 11, 27, 8, 0), local(2026, 11, 27, 18, 0)},
		{"weekday at opening", business, local(2026, 11, 27, 8, 0), true, local(2026, 11, 27, 8, 0), local(2026, 11, 27, 18, 0)},
		{"weekday just before closing", business, local(2026, 11, 27, 17, 59).Add(59 * time.Second), true, local(2026, 11, 27, 8, 0), local(2026, 11, 27, 18, 0)},
		{"weekday before opening", business, local(2026, 11, 27, 7, 59), false, time.Time{}, time.Time{}},
		{"weekday at closing", business, local(2026, 11, 27, 18, 0), false, time.Time{}, time.Time{}},
		{"saturday", business, local(2026, 11, 28, 10, 0), false, time.Time{}, time.Time{}},
		{"sunday", business, local(2026, 11, 29, 10, 0), false, time.Time{}, time.Time{}},
		{"monday", business, local(2026, 11, 30, 9, 0), true, local(2026, 11, 30, 8, 0), local(2026, 11, 30, 18, 0)},
		{"night before midnight", night, local(2026, 11, 27, 23, 0), true, local(2026, 11, 27, 22, 0), local(2026, 11, 28, 6, 0)},
		{"night after midnight", night, local(2026, 11, 28, 3, 0), true, local(2026, 11, 27, 22, 0), local(2026, 11, 28, 6, 0)},
		{"night at close", night, local(2026, 11, 28, 6, 0), false, time.Time{}, time.Time{}},
		{"night evening", night, local(2026, 11, 28, 21, 59), false, time.Time{}, time.Time{}},
		{"weekend friday before", weekend, local(2026, 11, 27, 17, 59), false, time.Time{}, time.Time{}},
		{"weekend friday evening", weekend, local(2026, 11, 27, 18, 0), true, local(2026, 11, 27, 18, 0), local(2026, 11, 30, 6, 0)},
		{"weekend sunday", weekend, local(2026, 11, 29, 12, 0), true, local(2026, 11, 27, 18, 0), local(2026, 11, 30, 6, 0)},
		{"weekend monday early", weekend, local(2026, 11, 30, 5, 59), true, local(2026, 11, 27, 18, 0), local(2026, 11, 30, 6, 0)},
		{"weekend monday closed", weekend, local(2026, 11, 30, 6, 0), false, time.Time{}, time.Time{}},
		{"monthly first", monthly, local(2026, 12, 1, 0, 0), true, local(2026, 12, 1, 0, 0), local(2026, 12, 4, 0, 0)},
		{"monthly third", monthly, local(2026, 12, 3, 23, 59), true, local(2026, 12, 1, 0, 0), local(2026, 12, 4, 0, 0)},
		{"monthly fourth", monthly, local(2026, 12, 4, 0, 0), false, time.Time{}, time.Time{}},
		{"monthly last day", monthly, local(2026, 11, 30, 23, 59), false, time.Time{}, time.Time{}},
		{"monthly end cron", monthlyEnd, local(2026, 12, 5, 12, 0), true, local(2026, 12, 1, 0, 0), local(2026, 12, 8, 0, 0)},
		{"monthly end cron after", monthlyEnd, local(2026, 12, 20, 12, 0), false, time.Time{}, time.Time{}},
		{"weekly descriptor sunday", weekly, utc(2026, 11, 29, 23, 0), true, utc(2026, 11, 29, 0, 0), utc(2026, 11, 30, 0, 0)},
		{"weekly descriptor monday", weekly, utc(2026, 11, 30, 0, 0), false, time.Time{}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := mustCron(t, tc.spec)
			p, ok := w.ActiveAt(tc.at)
			if ok != tc.active {
				t.Fatalf("ActiveAt(%s) active = %v, want %v (%+v)", tc.at, ok, tc.active, p)
			}
			if !ok {
				return
			}
			if !p.Since.Equal(tc.since) || !p.Until.Equal(tc.until) {
				t.Errorf("ActiveAt(%s) = [%s, %s), want [%s, %s)", tc.at, p.Since, p.Until, tc.since, tc.until)
			}
			wantMode := tc.spec.Mode
			if wantMode == "" {
				wantMode = Floor
			}
			if p.Policy != tc.spec.Name || p.Count != tc.spec.Count || p.Mode != wantMode {
				t.Errorf("proposal = %+v, want policy %s count %d mode %s", p, tc.spec.Name, tc.spec.Count, wantMode)
			}
		})
	}
}

func TestReason(t *testing.T) {
	bxl := loc(t, "Europe/Brussels")
	tests := []struct {
		name string
		spec CronSpec
		at   time.Time
		want string
	}{
		{"business hours",
			CronSpec{Name: "business-hours", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI", TimeZone: "Europe/Brussels", Count: 6},
			time.Date(2026, 11, 27, 9, 0, 0, 0, bxl),
			"business-hours: Mon-Fri 08:00-18:00 Europe/Brussels (opened 2026-11-27 08:00 CET, closes 18:00 CET): floor 6"},
		{"weekend duration",
			CronSpec{Name: "drp", Start: "0 18 * * FRI", Duration: 60 * time.Hour, TimeZone: "Europe/Brussels", Count: 8, Mode: Exact},
			time.Date(2026, 11, 28, 9, 0, 0, 0, bxl),
			"drp: Fri 18:00 for 60h Europe/Brussels (opened 2026-11-27 18:00 CET, closes 2026-11-30 06:00 CET): exact 8"},
		{"weekend days",
			CronSpec{Name: "we", Start: "0 9 * * SAT,SUN", End: "0 17 * * SAT,SUN", Count: 1},
			utc(2026, 11, 28, 10, 0),
			"we: Sat,Sun 09:00-17:00 UTC (opened 2026-11-28 09:00 UTC, closes 17:00 UTC): floor 1"},
		{"complex",
			CronSpec{Name: "c", Start: "*/30 8-9 * * *", Duration: 10 * time.Minute, Count: 1},
			utc(2026, 11, 28, 9, 35),
			`c: "*/30 8-9 * * *" for 10m UTC (opened 2026-11-28 09:30 UTC, closes 09:40 UTC): floor 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := mustCron(t, tc.spec).ActiveAt(tc.at)
			if !ok {
				t.Fatal("not active")
			}
			if p.Reason != tc.want {
				t.Errorf("Reason =\n%s\nwant\n%s", p.Reason, tc.want)
			}
		})
	}
	o, err := NewOneOffWindow(OneOffSpec{Name: "black-friday", From: time.Date(2026, 11, 27, 6, 0, 0, 0, bxl), Until: time.Date(2026, 11, 28, 0, 0, 0, 0, bxl), Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := o.ActiveAt(time.Date(2026, 11, 27, 12, 0, 0, 0, bxl))
	if want := "black-friday: 2026-11-27 06:00 CET to 2026-11-28 00:00 CET: floor 10"; p.Reason != want {
		t.Errorf("one-off Reason = %q, want %q", p.Reason, want)
	}
}

func TestCronWindowDST(t *testing.T) {
	type check struct {
		at           time.Time
		active       bool
		since, until time.Time // checked when active
	}
	tests := []struct {
		name   string
		spec   CronSpec
		checks []check
		// transitions over [from, to) when want is not nil.
		from, to    time.Time
		transitions []time.Time
	}{
		{
			name: "brussels march 08:00-18:00 local on both sides",
			spec: CronSpec{Name: "b", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				{utc(2026, 3, 28, 7, 0), true, utc(2026, 3, 28, 7, 0), utc(2026, 3, 28, 17, 0)}, // CET
				{utc(2026, 3, 28, 6, 59), false, time.Time{}, time.Time{}},
				{utc(2026, 3, 29, 6, 0), true, utc(2026, 3, 29, 6, 0), utc(2026, 3, 29, 16, 0)}, // CEST
				{utc(2026, 3, 29, 5, 59), false, time.Time{}, time.Time{}},
				{utc(2026, 3, 29, 16, 0), false, time.Time{}, time.Time{}},
			},
			from: utc(2026, 3, 28, 0, 0), to: utc(2026, 3, 30, 0, 0),
			transitions: []time.Time{utc(2026, 3, 28, 7, 0), utc(2026, 3, 28, 17, 0), utc(2026, 3, 29, 6, 0), utc(2026, 3, 29, 16, 0)},
		},
		{
			name: "brussels october 08:00-18:00 local on both sides",
			spec: CronSpec{Name: "b", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				{utc(2026, 10, 24, 6, 0), true, utc(2026, 10, 24, 6, 0), utc(2026, 10, 24, 16, 0)}, // CEST
				{utc(2026, 10, 25, 7, 0), true, utc(2026, 10, 25, 7, 0), utc(2026, 10, 25, 17, 0)}, // CET
				{utc(2026, 10, 25, 6, 30), false, time.Time{}, time.Time{}},
			},
		},
		{
			name: "new york march 08:00-18:00 local on both sides",
			spec: CronSpec{Name: "b", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "America/New_York", Count: 1},
			checks: []check{
				{utc(2026, 3, 7, 13, 0), true, utc(2026, 3, 7, 13, 0), utc(2026, 3, 7, 23, 0)}, // EST
				{utc(2026, 3, 8, 12, 0), true, utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 22, 0)}, // EDT
				{utc(2026, 3, 8, 11, 59), false, time.Time{}, time.Time{}},
			},
		},
		{
			name: "new york november 08:00-18:00 local on both sides",
			spec: CronSpec{Name: "b", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "America/New_York", Count: 1},
			checks: []check{
				{utc(2026, 10, 31, 12, 0), true, utc(2026, 10, 31, 12, 0), utc(2026, 10, 31, 22, 0)}, // EDT
				{utc(2026, 11, 1, 13, 0), true, utc(2026, 11, 1, 13, 0), utc(2026, 11, 1, 23, 0)},    // EST
				{utc(2026, 11, 1, 12, 30), false, time.Time{}, time.Time{}},
			},
		},
		{
			name: "brussels skipped 02:30 opens at 03:00 CEST",
			spec: CronSpec{Name: "s", Start: "30 2 * * *", Duration: time.Hour, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				{utc(2026, 3, 29, 0, 59), false, time.Time{}, time.Time{}},
				{utc(2026, 3, 29, 1, 0), true, utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)},
				{utc(2026, 3, 29, 1, 59), true, utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)},
				{utc(2026, 3, 30, 0, 30), true, utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)},
			},
			from: utc(2026, 3, 29, 0, 0), to: utc(2026, 3, 29, 12, 0),
			transitions: []time.Time{utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)},
		},
		{
			name: "new york skipped 02:30 opens at 03:00 EDT",
			spec: CronSpec{Name: "s", Start: "30 2 * * *", Duration: time.Hour, TimeZone: "America/New_York", Count: 1},
			checks: []check{
				{utc(2026, 3, 8, 6, 59), false, time.Time{}, time.Time{}},
				{utc(2026, 3, 8, 7, 0), true, utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)},
			},
			from: utc(2026, 3, 8, 0, 0), to: utc(2026, 3, 8, 12, 0),
			transitions: []time.Time{utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)},
		},
		{
			name: "brussels repeated 02:30 opens once",
			spec: CronSpec{Name: "r", Start: "30 2 * * *", Duration: 30 * time.Minute, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				{utc(2026, 10, 25, 0, 30), true, utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0)}, // first 02:30 (CEST)
				{utc(2026, 10, 25, 1, 0), false, time.Time{}, time.Time{}},
				{utc(2026, 10, 25, 1, 30), false, time.Time{}, time.Time{}}, // second 02:30 (CET)
				{utc(2026, 10, 25, 1, 45), false, time.Time{}, time.Time{}},
			},
			from: utc(2026, 10, 24, 12, 0), to: utc(2026, 10, 25, 12, 0),
			transitions: []time.Time{utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0)},
		},
		{
			name: "brussels repeated 02:30 not restarted",
			spec: CronSpec{Name: "r", Start: "30 2 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				{utc(2026, 10, 25, 1, 30), true, utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30)},
				{utc(2026, 10, 25, 2, 30), false, time.Time{}, time.Time{}},
			},
			from: utc(2026, 10, 25, 0, 0), to: utc(2026, 10, 25, 12, 0),
			transitions: []time.Time{utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30)},
		},
		{
			name: "new york repeated 01:30 opens once",
			spec: CronSpec{Name: "r", Start: "30 1 * * *", Duration: 30 * time.Minute, TimeZone: "America/New_York", Count: 1},
			checks: []check{
				{utc(2026, 11, 1, 5, 30), true, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)}, // first 01:30 (EDT)
				{utc(2026, 11, 1, 6, 30), false, time.Time{}, time.Time{}},                       // second 01:30 (EST)
			},
			from: utc(2026, 11, 1, 0, 0), to: utc(2026, 11, 1, 12, 0),
			transitions: []time.Time{utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)},
		},
		{
			name: "real-time duration over the october weekend",
			spec: CronSpec{Name: "w", Start: "0 18 * * FRI", Duration: 60 * time.Hour, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				// Fri 18:00 CEST + 60 real hours = Mon 05:00 CET.
				{utc(2026, 10, 26, 3, 59), true, utc(2026, 10, 23, 16, 0), utc(2026, 10, 26, 4, 0)},
				{utc(2026, 10, 26, 4, 0), false, time.Time{}, time.Time{}},
			},
		},
		{
			name: "wall-clock duration over the october weekend",
			spec: CronSpec{Name: "w", Start: "0 18 * * FRI", Duration: 60 * time.Hour, WallClock: true, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				// Fri 18:00 CEST + 60h of local clock = Mon 06:00 CET.
				{utc(2026, 10, 26, 4, 59), true, utc(2026, 10, 23, 16, 0), utc(2026, 10, 26, 5, 0)},
				{utc(2026, 10, 26, 5, 0), false, time.Time{}, time.Time{}},
			},
		},
		{
			name: "wall-clock duration over the march weekend",
			spec: CronSpec{Name: "w", Start: "0 18 * * FRI", Duration: 60 * time.Hour, WallClock: true, TimeZone: "Europe/Brussels", Count: 1},
			checks: []check{
				// Fri 18:00 CET + 60h of local clock = Mon 06:00 CEST.
				{utc(2026, 3, 30, 3, 59), true, utc(2026, 3, 27, 17, 0), utc(2026, 3, 30, 4, 0)},
				{utc(2026, 3, 30, 4, 0), false, time.Time{}, time.Time{}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := mustCron(t, tc.spec)
			for _, c := range tc.checks {
				p, ok := w.ActiveAt(c.at)
				if ok != c.active {
					t.Errorf("ActiveAt(%s) active = %v, want %v (%+v)", c.at, ok, c.active, p)
					continue
				}
				if ok && (!p.Since.Equal(c.since) || !p.Until.Equal(c.until)) {
					t.Errorf("ActiveAt(%s) = [%s, %s), want [%s, %s)", c.at, p.Since.UTC(), p.Until.UTC(), c.since, c.until)
				}
			}
			if tc.transitions != nil {
				got := Set{w}.Transitions(tc.from, tc.to)
				if !slices.EqualFunc(got, tc.transitions, time.Time.Equal) {
					t.Errorf("Transitions = %v, want %v", got, tc.transitions)
				}
			}
		})
	}
}

func TestSpecErrors(t *testing.T) {
	base := CronSpec{Name: "x", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "Europe/Brussels", Count: 1}
	with := func(f func(*CronSpec)) CronSpec { s := base; f(&s); return s }
	tests := []struct {
		name  string
		spec  CronSpec
		field string
		msg   string // substring of the error
	}{
		{"bad start", with(func(s *CronSpec) { s.Start = "0 25 * * *" }), "start", "end of range (25) above maximum (23)"},
		{"six fields", with(func(s *CronSpec) { s.Start = "0 0 8 * * *" }), "start", "expected exactly 5 fields"},
		{"empty start", with(func(s *CronSpec) { s.Start = " " }), "start", "empty"},
		{"tz prefix", with(func(s *CronSpec) { s.Start = "TZ=UTC 0 8 * * *" }), "start", "timezone field"},
		{"cron_tz prefix", with(func(s *CronSpec) { s.End = "CRON_TZ=UTC 0 8 * * *" }), "end", "timezone field"},
		{"every", with(func(s *CronSpec) { s.Start = "@every 1h" }), "start", "@every"},
		{"start never fires", with(func(s *CronSpec) { s.Start = "0 0 30 2 *" }), "start", "never fires"},
		{"bad end", with(func(s *CronSpec) { s.End = "0 18 * * FUNDAY" }), "end", "FUNDAY"},
		{"end never fires", with(func(s *CronSpec) { s.End = "0 0 30 2 *" }), "end", "window never ends"},
		{"end every four years", with(func(s *CronSpec) { s.End = "0 0 29 2 *" }), "end", "window never ends"},
		{"neither end nor duration", with(func(s *CronSpec) { s.End = "" }), "end", "set end or duration"},
		{"both end and duration", with(func(s *CronSpec) { s.Duration = time.Hour }), "duration", "not both"},
		{"negative duration", with(func(s *CronSpec) { s.End, s.Duration = "", -time.Hour }), "duration", "negative"},
		{"duration too long", with(func(s *CronSpec) { s.End, s.Duration = "", 400*24*time.Hour }), "duration", "longer than"},
		{"wall clock with end", with(func(s *CronSpec) { s.WallClock = true }), "duration", "wall clock"},
		{"bad zone", with(func(s *CronSpec) { s.TimeZone = "Europe/Atlantis" }), "timezone", "Atlantis"},
		{"local zone", with(func(s *CronSpec) { s.TimeZone = "Local" }), "timezone", "Local"},
		{"negative count", with(func(s *CronSpec) { s.Count = -1 }), "count", "negative"},
		{"bad mode", with(func(s *CronSpec) { s.Mode = "ceiling" }), "mode", "ceiling"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCronWindow(tc.spec)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SpecError", err)
			}
			if se.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q (field %q), want field %q containing %q", err, se.Field, tc.field, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") || errors.Unwrap(err) == nil {
				t.Errorf("err = %q: want %q prefix and an unwrappable reason", err, tc.field)
			}
		})
	}

	from := utc(2026, 11, 27, 6, 0)
	oneOff := []struct {
		name  string
		spec  OneOffSpec
		field string
	}{
		{"until before from", OneOffSpec{Name: "o", From: from, Until: from.Add(-time.Hour), Count: 1}, "until"},
		{"until equals from", OneOffSpec{Name: "o", From: from, Until: from, Count: 1}, "until"},
		{"no from", OneOffSpec{Name: "o", Until: from, Count: 1}, "from"},
		{"negative count", OneOffSpec{Name: "o", From: from, Until: from.Add(time.Hour), Count: -2}, "count"},
		{"bad mode", OneOffSpec{Name: "o", From: from, Until: from.Add(time.Hour), Mode: "Floor"}, "mode"},
	}
	for _, tc := range oneOff {
		t.Run("one-off "+tc.name, func(t *testing.T) {
			_, err := NewOneOffWindow(tc.spec)
			se, ok := IsSpecError(err)
			if !ok || se.Field != tc.field {
				t.Errorf("err = %v, want *SpecError field %q", err, tc.field)
			}
		})
	}
}

func TestValidSpecsAccepted(t *testing.T) {
	for _, spec := range []CronSpec{
		{Name: "leap", Start: "0 0 29 2 *", Duration: 24 * time.Hour}, // starts every four years: fine
		{Name: "yearly", Start: "@yearly", End: "0 0 2 1 *"},          // end once a year
		{Name: "names", Start: "0 8 * JAN-MAR MON-FRI", End: "0 18 * * *", Mode: Exact},
		{Name: "monthly", Start: "@monthly", End: "@daily", TimeZone: "Asia/Kolkata"},
	} {
		t.Run(spec.Name, func(t *testing.T) { mustCron(t, spec) })
	}
}

func TestOneOffWindow(t *testing.T) {
	from, until := utc(2026, 11, 27, 6, 0), utc(2026, 11, 28, 0, 0)
	w, err := NewOneOffWindow(OneOffSpec{Name: "bf", From: from, Until: until, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at     time.Time
		active bool
	}{
		{from.Add(-time.Nanosecond), false},
		{from, true},
		{until.Add(-time.Nanosecond), true},
		{until, false},
	}
	for _, tc := range tests {
		t.Run(tc.at.String(), func(t *testing.T) {
			p, ok := w.ActiveAt(tc.at)
			if ok != tc.active {
				t.Fatalf("active = %v, want %v", ok, tc.active)
			}
			if ok && (p.Mode != Floor || p.Count != 10 || !p.Since.Equal(from) || !p.Until.Equal(until) || p.Policy != "bf") {
				t.Errorf("proposal = %+v", p)
			}
		})
	}
}

func TestSetAtAndTransitions(t *testing.T) {
	bxl := loc(t, "Europe/Brussels")
	local := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, bxl) }
	business := mustCron(t, CronSpec{Name: "business", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI", TimeZone: "Europe/Brussels", Count: 6})
	evening := mustCron(t, CronSpec{Name: "evening", Start: "0 18 * * *", Duration: 4 * time.Hour, TimeZone: "Europe/Brussels", Count: 2})
	// Occurrences every hour for two hours overlap: no transition at each start.
	overlapping := mustCron(t, CronSpec{Name: "overlap", Start: "0 * * * SAT", Duration: 2 * time.Hour, TimeZone: "Europe/Brussels", Count: 1})
	sale, err := NewOneOffWindow(OneOffSpec{Name: "sale", From: local(27, 12), Until: local(27, 14), Count: 9})
	if err != nil {
		t.Fatal(err)
	}
	set := Set{business, evening, overlapping, sale}

	t.Run("At", func(t *testing.T) {
		var names []string
		for _, p := range set.At(local(27, 13)) {
			names = append(names, p.Policy)
		}
		if want := []string{"business", "sale"}; !slices.Equal(names, want) {
			t.Errorf("At = %v, want %v", names, want)
		}
		if got := set.At(local(26, 3)); len(got) != 0 {
			t.Errorf("At(03:00) = %v, want none", got)
		}
	})
	t.Run("Transitions", func(t *testing.T) {
		got := set.Transitions(local(27, 0), local(29, 2))
		want := []time.Time{
			local(27, 8), local(27, 12), local(27, 14),
			local(27, 18), // business closes as evening opens: one instant
			local(27, 22),
			local(28, 0),  // Saturday: overlapping opens at 00:00 ...
			local(28, 18), // ... evening opens ...
			local(28, 22), // ... evening closes
			local(29, 1),  // last Saturday start 23:00 + 2h
		}
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Errorf("Transitions =\n%v\nwant\n%v", got, want)
		}
		if got := set.Transitions(local(28, 0), local(28, 0)); got != nil {
			t.Errorf("empty range: %v", got)
		}
	})
	t.Run("Location", func(t *testing.T) {
		if got := set.Location(); got != bxl && got.String() != "Europe/Brussels" {
			t.Errorf("Location = %v", got)
		}
		if got := (Set{sale}).Location(); got != time.UTC {
			t.Errorf("Location without cron windows = %v, want UTC", got)
		}
	})
}

// plain is a Window that is not an Edger, to exercise Transitions' fallback.
type plain struct{ Window }

func TestTransitionsFallback(t *testing.T) {
	w := mustCron(t, CronSpec{Name: "b", Start: "0 8 * * *", End: "30 9 * * *", Count: 1})
	got := Set{plain{w}}.Transitions(utc(2026, 1, 1, 0, 0), utc(2026, 1, 2, 0, 0))
	want := []time.Time{utc(2026, 1, 1, 8, 0), utc(2026, 1, 1, 9, 30)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("Transitions = %v, want %v", got, want)
	}
}

func TestExactConflicts(t *testing.T) {
	mk := func(name, start, end string, count int, mode Mode) Window {
		return mustCron(t, CronSpec{Name: name, Start: start, End: end, TimeZone: "Europe/Brussels", Count: count, Mode: mode})
	}
	from := time.Date(2026, 11, 23, 0, 0, 0, 0, loc(t, "Europe/Brussels")) // a Monday
	at := func(d, h int) time.Time { return from.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name string
		ws   []Window
		want []Conflict
	}{
		{"exact different counts overlap",
			[]Window{mk("day", "0 8 * * MON-FRI", "0 18 * * MON-FRI", 6, Exact), mk("batch", "0 16 * * FRI", "0 20 * * FRI", 9, Exact)},
			[]Conflict{{A: "day", B: "batch", At: at(4, 16)}}},
		{"floors ignored",
			[]Window{mk("day", "0 8 * * MON-FRI", "0 18 * * MON-FRI", 6, Floor), mk("batch", "0 16 * * FRI", "0 20 * * FRI", 9, Exact)},
			nil},
		{"equal counts ignored",
			[]Window{mk("day", "0 8 * * MON-FRI", "0 18 * * MON-FRI", 6, Exact), mk("batch", "0 16 * * FRI", "0 20 * * FRI", 6, Exact)},
			nil},
		{"touching windows do not conflict",
			[]Window{mk("day", "0 8 * * *", "0 18 * * *", 6, Exact), mk("night", "0 18 * * *", "0 8 * * *", 2, Exact)},
			nil},
		{"conflict already at from, and each day",
			[]Window{mk("a", "0 0 * * MON,TUE", "0 12 * * MON,TUE", 1, Exact), mk("b", "0 6 * * *", "0 7 * * *", 2, Exact)},
			[]Conflict{{A: "a", B: "b", At: at(0, 6)}, {A: "a", B: "b", At: at(1, 6)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ExactConflicts(tc.ws, from, 7*24*time.Hour)
			if !slices.EqualFunc(got, tc.want, func(a, b Conflict) bool { return a.A == b.A && a.B == b.B && a.At.Equal(b.At) }) {
				t.Errorf("ExactConflicts = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("overlap at from", func(t *testing.T) {
		ws := []Window{mk("a", "0 0 * * *", "0 12 * * *", 1, Exact), mk("b", "0 0 * * *", "0 6 * * *", 2, Exact)}
		got := ExactConflicts(ws, from.Add(time.Hour), time.Hour)
		if len(got) != 1 || !got[0].At.Equal(from.Add(time.Hour)) {
			t.Errorf("ExactConflicts = %v, want one at from", got)
		}
	})
}

func TestMaxDayGap(t *testing.T) {
	tests := []struct {
		expr string
		want int
	}{
		{"0 8 * * *", 1},
		{"0 8 * * MON-FRI", 3},
		{"0 8 * * SUN", 7},
		{"0 0 1 * *", 31},
		{"0 0 31 * *", 61},     // Aug 31 -> Oct 31
		{"0 0 29 * *", 59},     // Jan 29 -> Mar 29 in a common year
		{"0 0 1 1 *", 366},     // yearly, across a leap year
		{"0 0 * FEB MON", 350}, // last Monday of February to the first of the next
		{"0 0 13 * FRI", 7},    // either the 13th or a Friday
		{"0 0 29 2 *", 2921},   // 2096 -> 2104 skips the non-leap 2100
		{"0 0 30 2 *", -1},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			s, err := parseSchedule("start", tc.expr, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.maxDayGap(); got != tc.want {
				t.Errorf("maxDayGap = %d, want %d", got, tc.want)
			}
			if got := s.firesEver(); got != (tc.want >= 0) {
				t.Errorf("firesEver = %v", got)
			}
		})
	}
}

func TestClockChanges(t *testing.T) {
	tests := []struct {
		zone     string
		from, to time.Time
		want     []time.Time
	}{
		{"Europe/Brussels", utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), []time.Time{utc(2026, 3, 29, 1, 0), utc(2026, 10, 25, 1, 0)}},
		{"America/New_York", utc(2026, 3, 1, 0, 0), utc(2026, 3, 15, 0, 0), []time.Time{utc(2026, 3, 8, 7, 0)}},
		{"Europe/Brussels", utc(2026, 5, 1, 0, 0), utc(2026, 5, 8, 0, 0), nil},
		{"UTC", utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.zone+tc.from.Format("/2006-01"), func(t *testing.T) {
			if got := ClockChanges(loc(t, tc.zone), tc.from, tc.to); !slices.EqualFunc(got, tc.want, time.Time.Equal) {
				t.Errorf("ClockChanges = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestActiveAtConcurrent asks one window from several goroutines at
// different instants (run with -race): answers stay right while the cache
// is replaced under them.
func TestActiveAtConcurrent(t *testing.T) {
	w := mustCron(t, CronSpec{Name: "b", Start: "0 8 * * *", End: "0 18 * * *", TimeZone: "Europe/Brussels", Count: 1})
	bxl := w.Location()
	errs := make(chan string, 4)
	for g := range 4 {
		go func() {
			for i := range 2000 {
				d := 1 + (g*7+i)%28
				now := time.Date(2026, 2, d, (i*5)%24, 0, 0, 0, bxl)
				_, ok := w.ActiveAt(now)
				if want := now.Hour() >= 8 && now.Hour() < 18; ok != want {
					errs <- now.String()
					return
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if e := <-errs; e != "" {
			t.Errorf("wrong answer at %s", e)
		}
	}
}
