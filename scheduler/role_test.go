package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/predictor"
)

// fixedWindow is a window that is open in [from, until).
type fixedWindow struct {
	name        string
	from, until time.Time
	count       int
	mode        policies.Mode
}

func (w fixedWindow) Name() string { return w.name }

func (w fixedWindow) ActiveAt(now time.Time) (policies.Proposal, bool) {
	if now.Before(w.from) || !now.Before(w.until) {
		return policies.Proposal{}, false
	}
	return policies.Proposal{Policy: w.name, Count: w.count, Mode: w.mode, Reason: w.name + " window", Since: w.from, Until: w.until}, true
}

// fakeForecaster returns a fixed estimate, or an error.
type fakeForecaster struct {
	est      predictor.Estimate
	err      error
	observed int
}

func (f *fakeForecaster) Observe(time.Time, float64) { f.observed++ }
func (f *fakeForecaster) Forecast(time.Time, time.Duration) (predictor.Estimate, error) {
	return f.est, f.err
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func baseParams() Params {
	return Params{Role: "web", Min: 1, Max: 20, LoadDriven: true, Target: 40, Headroom: 0.2,
		Lead: 10 * time.Minute, Interval: time.Minute, MaxAge: 5 * time.Minute, Predict: true,
		Stabilization: 10 * time.Minute, MaxStep: 2}
}

func TestDecideInputs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		params     func(*Params)
		windows    policies.Set
		load       *float64
		loadAge    time.Duration
		forecast   *fakeForecaster
		override   *Override
		prev       int
		want       int
		winner     string
		steps      []string
		detailHas  string
		wantFrozen bool
	}{
		{name: "load with headroom", load: ptr(100), want: 3, winner: "load"},
		{name: "forecast above load wins", load: ptr(100), forecast: &fakeForecaster{est: predictor.Estimate{Point: 500, Upper: 612, Quantile: 0.95, Model: "m"}}, want: 16, winner: "forecast", detailHas: "forecast p95 612 within 11m0s: 16 hosts needed"},
		{name: "insufficient history falls back", load: ptr(100), forecast: &fakeForecaster{err: predictor.ErrInsufficientHistory}, want: 3, winner: "load", detailHas: "reactive scaling with headroom"},
		{name: "floor window beats lower load", load: ptr(10), windows: policies.Set{fixedWindow{name: "business-hours", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 6, mode: policies.Floor}}, want: 6, winner: "policy:business-hours"},
		{name: "closed window ignored", load: ptr(10), windows: policies.Set{fixedWindow{name: "night", from: t0.Add(time.Hour), until: t0.Add(2 * time.Hour), count: 6}}, want: 1, winner: "load"},
		{name: "exact window beats higher load and scales down at once", prev: 10, load: ptr(1000), windows: policies.Set{fixedWindow{name: "drp", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 4, mode: policies.Exact}}, want: 4, winner: "policy:drp"},
		{name: "clamped to max", load: ptr(10000), want: 20, winner: "load", steps: []string{"clamp-max"}},
		{name: "min when idle", load: ptr(0), want: 1, winner: "min"},
		{name: "missing metric freezes", prev: 7, want: 7, winner: "load", wantFrozen: true, detailHas: "no load sample yet"},
		{name: "stale metric freezes", prev: 7, load: ptr(1), loadAge: 6 * time.Minute, want: 7, winner: "load", wantFrozen: true, detailHas: "stale"},
		{name: "stale metric still lets a window raise", prev: 2, load: ptr(1), loadAge: time.Hour, windows: policies.Set{fixedWindow{name: "bh", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 5}}, want: 5, winner: "policy:bh", wantFrozen: true},
		{name: "floor override raises", load: ptr(10), override: &Override{Kind: FloorOverride, Count: 6, Until: t0.Add(time.Hour), Reason: "launch day"}, want: 6, winner: "override"},
		{name: "floor override respects max", load: ptr(10), override: &Override{Kind: FloorOverride, Count: 60, Until: t0.Add(time.Hour), Reason: "x"}, want: 20, winner: "override", steps: []string{"clamp-max"}},
		{name: "floor override may break limits when told", load: ptr(10), override: &Override{Kind: FloorOverride, Count: 60, Until: t0.Add(time.Hour), Reason: "x", IgnoreLimits: true}, want: 60, winner: "override"},
		{name: "pin beats load and scales down at once", prev: 12, load: ptr(1000), override: &Override{Kind: Pin, Count: 3, Until: t0.Add(time.Hour), Reason: "maintenance"}, want: 3, winner: "override", steps: []string{"pin"}},
		{name: "expired override is ignored", load: ptr(100), override: &Override{Kind: Pin, Count: 9, Until: t0, Reason: "old"}, want: 3, winner: "load"},
		{name: "not load driven", params: func(p *Params) { p.LoadDriven = false; p.Min = 2 }, want: 2, winner: "min"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			if tc.params != nil {
				tc.params(&p)
			}
			var f Forecaster
			if tc.forecast != nil {
				f = tc.forecast
			}
			r := NewRole(p, tc.windows, f)
			if tc.prev > 0 {
				r.Restore(tc.prev, t0.Add(-time.Hour))
			}
			if tc.load != nil {
				r.Observe(Sample{At: t0.Add(-tc.loadAge), Value: *tc.load})
			}
			rec := r.Decide(t0, tc.override)
			if rec.Desired != tc.want || rec.Winner != tc.winner {
				t.Fatalf("desired %d by %s, want %d by %s\n%s", rec.Desired, rec.Winner, tc.want, tc.winner, rec)
			}
			var kinds []string
			for _, s := range rec.Steps {
				kinds = append(kinds, s.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.steps, ",") && !(tc.wantFrozen && strings.Join(kinds, ",") == "freeze") {
				t.Errorf("steps %v, want %v\n%s", kinds, tc.steps, rec)
			}
			if rec.Frozen != tc.wantFrozen {
				t.Errorf("frozen %v, want %v", rec.Frozen, tc.wantFrozen)
			}
			if tc.detailHas != "" && !strings.Contains(rec.String(), tc.detailHas) {
				t.Errorf("record lacks %q:\n%s", tc.detailHas, rec)
			}
			won := 0
			for _, in := range rec.Inputs {
				if in.Won {
					won++
				}
			}
			if won != 1 {
				t.Errorf("%d inputs marked as winner, want 1\n%s", won, rec)
			}
		})
	}
}

func TestScaleDownStabilizationAndSteps(t *testing.T) {
	p := baseParams() // stabilization 10m, max step 2
	r := NewRole(p, nil, nil)
	now := t0
	decide := func(load float64) Record {
		r.Observe(Sample{At: now, Value: load})
		rec := r.Decide(now, nil)
		now = now.Add(time.Minute)
		return rec
	}
	if got := decide(400).Desired; got != 12 { // 400*1.2/40
		t.Fatalf("scale up: got %d, want 12", got)
	}
	// Load drops: held for the stabilization window.
	for i := 0; i < 9; i++ {
		rec := decide(40)
		if rec.Desired != 12 {
			t.Fatalf("minute %d after the drop: desired %d, want 12 held\n%s", i+1, rec.Desired, rec)
		}
		if rec.Steps[0].Kind != "stabilization" {
			t.Fatalf("hold not explained: %v", rec.Steps)
		}
	}
	// Then it goes down at most 2 per decision: 10, 8, 6, 4, 2.
	for _, want := range []int{10, 8, 6, 4, 2, 2} {
		rec := decide(40)
		if rec.Desired != want {
			t.Fatalf("step down: desired %d, want %d\n%s", rec.Desired, want, rec)
		}
	}
	// Scale up is immediate.
	if got := decide(800).Desired; got != 20 {
		t.Fatalf("scale up after scale down: got %d, want 20 (max)", got)
	}
}

func TestObserveFeedsForecasterAndKeepsNewest(t *testing.T) {
	f := &fakeForecaster{err: predictor.ErrInsufficientHistory}
	r := NewRole(baseParams(), nil, f)
	r.Observe(Sample{At: t0, Value: 400})
	r.Observe(Sample{At: t0.Add(-time.Minute), Value: 4}) // late sample
	if f.observed != 2 {
		t.Fatalf("forecaster saw %d samples, want 2", f.observed)
	}
	if rec := r.Decide(t0, nil); rec.Desired != 12 || rec.Load == nil || *rec.Load != 400 {
		t.Fatalf("late sample replaced the newest: %+v", rec)
	}
}

func TestOverrideValidate(t *testing.T) {
	ok := Override{Role: "web", Kind: Pin, Count: 3, Until: t0.Add(time.Hour), Reason: "x"}
	if err := ok.Validate(t0); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Override){
		"no role":   func(o *Override) { o.Role = "" },
		"bad kind":  func(o *Override) { o.Kind = "max" },
		"negative":  func(o *Override) { o.Count = -1 },
		"past":      func(o *Override) { o.Until = t0 },
		"no reason": func(o *Override) { o.Reason = "" },
	} {
		o := ok
		mut(&o)
		if o.Validate(t0) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestScheduledCount(t *testing.T) {
	p := Params{Min: 1, Max: 10}
	ws := policies.Set{
		fixedWindow{name: "bh", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 5},
		fixedWindow{name: "big", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 50},
	}
	if n, props := ScheduledCount(p, ws, t0); n != 10 || len(props) != 2 {
		t.Fatalf("got %d with %d proposals, want 10 (clamped) with 2", n, len(props))
	}
	if n, _ := ScheduledCount(p, ws, t0.Add(2*time.Hour)); n != 1 {
		t.Fatalf("after the windows: got %d, want min 1", n)
	}
}

func ptr(f float64) *float64 { return &f }

// laterFake also bounds a later stretch, and records what it was asked.
type laterFake struct {
	fakeForecaster
	after, horizon time.Duration
	later          predictor.Estimate
}

func (f *laterFake) ForecastAfter(_ time.Time, after, horizon time.Duration) (predictor.Estimate, error) {
	f.after, f.horizon = after, horizon
	return f.later, nil
}

func TestForecastAfterLeadWhenAvailable(t *testing.T) {
	f := &laterFake{fakeForecaster: fakeForecaster{est: predictor.Estimate{Upper: 1000}}, later: predictor.Estimate{Upper: 200, Quantile: 0.95, Model: "m"}}
	r := NewRole(baseParams(), nil, f)
	r.Observe(Sample{At: t0, Value: 40})
	rec := r.Decide(t0, nil)
	if f.after != 10*time.Minute || f.horizon != 11*time.Minute {
		t.Fatalf("asked for (%s, %s], want (10m, 11m]", f.after, f.horizon)
	}
	if rec.Desired != 5 || rec.Winner != "forecast" || !strings.Contains(rec.String(), "in 10m0s to 11m0s") {
		t.Fatalf("want 5 hosts for 200 after the lead:\n%s", rec)
	}
}
