package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNewRejects(t *testing.T) {
	if _, err := New("nope", Options{}); err == nil || !strings.Contains(err.Error(), "office") {
		t.Errorf("unknown profile: err = %v, want the list of profiles", err)
	}
	if _, err := New("office", Options{Peak: -1}); err == nil {
		t.Error("negative peak accepted")
	}
}

func TestDeterministicAndPure(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p, func(t *testing.T) {
			a, _ := New(p, Options{Seed: 7})
			b, _ := New(p, Options{Seed: 7})
			c, _ := New(p, Options{Seed: 8})
			from := at("2026-01-05T00:00:00Z")
			s := a.Series(from, from.Add(14*24*time.Hour), time.Minute)
			if len(s.Points) != 14*24*60 || s.Step != time.Minute {
				t.Fatalf("series has %d points, step %s", len(s.Points), s.Step)
			}
			differ := 0
			// Backwards, on a fresh generator: order must not matter.
			for i := len(s.Points) - 1; i >= 0; i-- {
				pt := s.Points[i]
				if got := math.Round(b.At(pt.At)*100) / 100; got != pt.Value {
					t.Fatalf("At(%s) = %v, series has %v", pt.At, got, pt.Value)
				}
				if pt.Value < 0 || math.IsNaN(pt.Value) {
					t.Fatalf("bad value %v at %s", pt.Value, pt.At)
				}
				if c.At(pt.At) != a.At(pt.At) {
					differ++
				}
			}
			if differ < len(s.Points)/2 {
				t.Errorf("another seed changed only %d of %d values", differ, len(s.Points))
			}
		})
	}
}

// noiseless returns a generator without noise, so shapes can be checked.
func noiseless(t *testing.T, p string) *Generator {
	t.Helper()
	g, err := New(p, Options{Peak: 1000, Noise: -1, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestOfficeShape(t *testing.T) {
	g := noiseless(t, "office")
	wedMorning := g.At(at("2026-01-07T10:30:00Z"))
	lunch := g.At(at("2026-01-07T12:45:00Z"))
	afternoon := g.At(at("2026-01-07T14:30:00Z"))
	night := g.At(at("2026-01-07T03:00:00Z"))
	sunday := g.At(at("2026-01-11T10:30:00Z"))
	newYear := g.At(at("2026-01-01T10:30:00Z"))
	if wedMorning < 900 || wedMorning > 1000 {
		t.Errorf("weekday 10:30 = %.0f, want near the peak 1000", wedMorning)
	}
	if lunch > 0.8*afternoon || lunch > 0.8*wedMorning {
		t.Errorf("no lunch dip: 10:30 %.0f, 12:45 %.0f, 14:30 %.0f", wedMorning, lunch, afternoon)
	}
	for name, v := range map[string]float64{"night": night, "sunday": sunday, "new year": newYear} {
		if v > 0.12*wedMorning {
			t.Errorf("%s = %.0f, want low against %.0f", name, v, wedMorning)
		}
	}
}

func TestOfficeFollowsLocation(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	g, _ := New("office", Options{Noise: -1, Location: tokyo})
	// 10:30 in Tokyo is 01:30 UTC.
	if v := g.At(at("2026-01-07T01:30:00Z")); v < 900 {
		t.Errorf("Tokyo 10:30 = %.0f, want near the peak", v)
	}
}

func TestWeeklyBatch(t *testing.T) {
	g := noiseless(t, "weekly-batch")
	sat := g.At(at("2026-01-10T12:00:00Z"))
	friEvening := g.At(at("2026-01-09T20:00:00Z"))
	friAfternoon := g.At(at("2026-01-09T15:00:00Z"))
	wed := g.At(at("2026-01-07T12:00:00Z"))
	mondayMorning := g.At(at("2026-01-12T06:00:00Z"))
	if sat < 700 || friEvening < 700 {
		t.Errorf("batch too light: Saturday noon %.0f, Friday 20:00 %.0f", sat, friEvening)
	}
	for name, v := range map[string]float64{"Wednesday noon": wed, "Friday 15:00": friAfternoon, "Monday 06:00": mondayMorning} {
		if v > 0.35*sat {
			t.Errorf("%s = %.0f, want light against the batch's %.0f", name, v, sat)
		}
	}
}

func TestPublicationDay(t *testing.T) {
	tests := []struct {
		month time.Month
		want  int
	}{
		{time.January, 6},  // 1st is a holiday, then Fri 2, Mon 5, Tue 6
		{time.February, 4}, // starts on a Sunday
		{time.April, 7},    // Good Friday 3rd, Easter Monday 6th
		{time.May, 6},      // Labour Day on Friday 1st
	}
	for _, tc := range tests {
		t.Run(tc.month.String(), func(t *testing.T) {
			if got := PublicationDay(2026, tc.month, time.UTC); got.Day() != tc.want || got.Month() != tc.month {
				t.Errorf("publication day = %s, want the %d", got.Format("2006-01-02"), tc.want)
			}
		})
	}
}

func TestMonthlySpikeDecays(t *testing.T) {
	g := noiseless(t, "monthly")
	pub := g.At(at("2026-02-04T10:00:00Z"))
	before := g.At(at("2026-02-03T10:00:00Z"))
	dayAfter := g.At(at("2026-02-05T10:00:00Z"))
	weekAfter := g.At(at("2026-02-11T10:00:00Z"))
	if pub < 850 {
		t.Errorf("publication day 10:00 = %.0f, want near the peak", pub)
	}
	if !(before < 0.3*pub && dayAfter < pub && dayAfter > 2*before && weekAfter < dayAfter) {
		t.Errorf("want a spike decaying over days: day before %.0f, day %.0f, day after %.0f, week after %.0f", before, pub, dayAfter, weekAfter)
	}
}

func TestFlashCrowdIsSudden(t *testing.T) {
	g := noiseless(t, "spike")
	from := at("2026-01-05T00:00:00Z")
	s := g.Series(from, from.Add(7*24*time.Hour), time.Minute)
	top := 0
	for i, p := range s.Points {
		if p.Value > s.Points[top].Value {
			top = i
		}
	}
	peak := s.Points[top]
	if peak.Value < 800 {
		t.Fatalf("flash crowd peak %.0f at %s, want near 1000", peak.Value, peak.At)
	}
	if before := s.Points[top-6].Value; before > 0.4*peak.Value {
		t.Errorf("load 6 minutes before the flash crowd = %.0f, want a sudden rise to %.0f", before, peak.Value)
	}
	if wd := peak.At.Weekday(); wd == time.Saturday || wd == time.Sunday || peak.At.Hour() < 9 || peak.At.Hour() >= 18 {
		t.Errorf("flash crowd at %s, want working hours", peak.At)
	}
	// Another week has it at another time.
	next := g.flashStart(weekIndex(from) + 1).Sub(g.flashStart(weekIndex(from)))
	if next == 7*24*time.Hour {
		t.Errorf("flash crowds at the same time two weeks running")
	}
}
