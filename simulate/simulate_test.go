package simulate

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/loadgen"
	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/trace"
)

var t0 = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// minutes builds a trace of 1-minute steps from values; a negative value
// leaves that step out (a gap).
func minutes(vals ...float64) *trace.Trace {
	tr := &trace.Trace{Name: "test", Step: time.Minute}
	for i, v := range vals {
		if v >= 0 {
			tr.Points = append(tr.Points, trace.Point{At: t0.Add(time.Duration(i) * time.Minute), Value: v})
		}
	}
	return tr
}

// plainRole is a load-driven role without headroom, stabilization or
// forecast: desired = ceil(load/capacity), so fleet effects are easy to see.
func plainRole(capacity float64) Role {
	return Role{Capacity: capacity, Params: scheduler.Params{Role: "web", Min: 1, Max: 100, LoadDriven: true, Target: capacity}}
}

func column(rows []Row, f func(Row) int) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadyAfterLead(t *testing.T) {
	desired := func(r Row) int { return r.Desired }
	ready := func(r Row) int { return r.Ready }
	tests := []struct {
		name        string
		lead        time.Duration
		loads       []float64
		wantDesired []int
		wantReady   []int
	}{
		{
			name:        "ready from the first step at or after t+lead",
			lead:        150 * time.Second, // 2.5 steps: ready 3 steps later
			loads:       []float64{10, 10, 50, 50, 50, 50, 50},
			wantDesired: []int{1, 1, 5, 5, 5, 5, 5},
			wantReady:   []int{1, 1, 1, 1, 1, 5, 5},
		},
		{
			name:        "lead of exactly two steps",
			lead:        2 * time.Minute,
			loads:       []float64{10, 50, 50, 50},
			wantDesired: []int{1, 5, 5, 5},
			wantReady:   []int{1, 1, 1, 5},
		},
		{
			name:        "zero lead serves at once",
			lead:        0,
			loads:       []float64{10, 50, 10},
			wantDesired: []int{1, 5, 1},
			wantReady:   []int{1, 5, 1},
		},
		{
			name:        "terminations are immediate",
			lead:        10 * time.Minute,
			loads:       []float64{50, 50, 20, 10},
			wantDesired: []int{5, 5, 2, 1},
			wantReady:   []int{5, 5, 2, 1},
		},
		{
			name: "scale-down cancels pending hosts first",
			lead: 3 * time.Minute,
			// step 1 asks for 4 more (ready at 4); step 2 keeps 2 of 5: one
			// pending host remains and is ready at step 4.
			loads:       []float64{10, 50, 20, 20, 20, 20},
			wantDesired: []int{1, 5, 2, 2, 2, 2},
			wantReady:   []int{1, 1, 1, 1, 2, 2},
		},
		{
			name: "pending hosts mature across a gap",
			lead: 5 * time.Minute,
			// rows at minutes 0, 1, 7, 8: hosts asked at 1 are ready at 6.
			loads:       []float64{10, 50, -1, -1, -1, -1, -1, 50, 50},
			wantDesired: []int{1, 5, 5, 5},
			wantReady:   []int{1, 1, 5, 5},
		},
		{
			name:        "warm start: the first decision's hosts are ready",
			lead:        time.Hour,
			loads:       []float64{70, 70},
			wantDesired: []int{7, 7},
			wantReady:   []int{7, 7},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(context.Background(), minutes(tc.loads...), plainRole(10), Options{Lead: tc.lead})
			if err != nil {
				t.Fatal(err)
			}
			rows := res.Tide.Rows
			if got := column(rows, desired); !equal(got, tc.wantDesired) {
				t.Errorf("desired = %v, want %v", got, tc.wantDesired)
			}
			if got := column(rows, ready); !equal(got, tc.wantReady) {
				t.Errorf("ready = %v, want %v", got, tc.wantReady)
			}
		})
	}
}

func TestMeasureHandChecked(t *testing.T) {
	// capacity 10, min 2, 15-minute steps.
	rows := []Row{
		{Load: 5, Desired: 2, Ready: 2},    // oracle 2 (min); fine
		{Load: 35, Desired: 4, Ready: 2},   // oracle 4; under: 15 unserved
		{Load: 40, Desired: 4, Ready: 4},   // oracle 4; fine
		{Load: 10, Desired: 4, Ready: 4},   // oracle 2; over
		{Load: 0, Desired: 3, Ready: 3},    // oracle 2; over
		{Load: 30.5, Desired: 3, Ready: 3}, // oracle 4; under: 0.5 unserved
	}
	m := Measure(rows, 15*time.Minute, 10, 2)
	want := Metrics{
		InstanceHours:         20 * 0.25,
		OracleInstanceHours:   18 * 0.25,
		CostRatio:             round(20.0/18, 6),
		UnderProvisionedShare: round(2.0/6, 6),
		OverProvisionedShare:  round(2.0/6, 6),
		UnservedFraction:      round(15.5/120.5, 6),
		ScaleEvents:           2, // 2->4, 4->3
		PeakHosts:             4,
	}
	if m.InstanceHours != want.InstanceHours || m.OracleInstanceHours != want.OracleInstanceHours ||
		m.CostRatio != want.CostRatio || m.UnderProvisionedShare != want.UnderProvisionedShare ||
		m.OverProvisionedShare != want.OverProvisionedShare || m.UnservedFraction != want.UnservedFraction ||
		m.ScaleEvents != want.ScaleEvents || m.PeakHosts != want.PeakHosts {
		t.Errorf("metrics\n got %+v\nwant %+v", m, want)
	}
}

func TestBaselines(t *testing.T) {
	loads := []float64{10, 30, 95, 30, 10, 10}
	role := plainRole(10)
	role.Params.Min = 2
	res, err := Run(context.Background(), minutes(loads...), role, Options{Lead: 0})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, b := range res.Baselines {
		names = append(names, b.Strategy)
	}
	if strings.Join(names, ",") != "static_peak,reactive,schedule_only" {
		t.Fatalf("baselines = %v", names)
	}
	desired := func(r Row) int { return r.Desired }
	check := func(name string, want []int) {
		t.Helper()
		b, ok := res.Baseline(name)
		if !ok {
			t.Fatalf("no %s baseline", name)
		}
		if got := column(b.Rows, desired); !equal(got, want) {
			t.Errorf("%s desired = %v, want %v", name, got, want)
		}
		if len(b.Rows) != len(loads) || b.Metrics.InstanceHours == 0 {
			t.Errorf("%s: %d rows, metrics %+v", name, len(b.Rows), b.Metrics)
		}
	}
	check(StaticPeak, []int{10, 10, 10, 10, 10, 10})
	// ceil(load*1.2/10), at least min 2: 12->2, 36->4, 114->12.
	check(Reactive, []int{2, 4, 12, 4, 2, 2})
	check(ScheduleOnly, []int{2, 2, 2, 2, 2, 2})
	if s := res.Summarize(); len(s.Baselines) != 3 || s.InstanceHours != res.Tide.Metrics.InstanceHours || s.Steps != len(loads) || s.Step != "1m0s" {
		t.Errorf("summary = %+v", s)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	tr := minutes(1, 2, 3)
	tests := map[string]struct {
		role Role
		o    Options
	}{
		"zero capacity": {Role{Params: scheduler.Params{Min: 1, Max: 2}}, Options{}},
		"negative lead": {plainRole(1), Options{Lead: -time.Second}},
		"min above max": {Role{Capacity: 1, Params: scheduler.Params{Min: 3, Max: 2}}, Options{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), tr, tc.role, tc.o); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestTimelineFormat(t *testing.T) {
	res := &Result{Role: "web", Tide: Outcome{Rows: []Row{
		{At: t0, Load: 42, Forecast: math.NaN(), Desired: 2, Ready: 2},
		{At: t0.Add(time.Minute), Load: 61.5, Forecast: 70.123, Desired: 3, Ready: 2},
	}}}
	var buf bytes.Buffer
	if err := WriteTimeline(&buf, res); err != nil {
		t.Fatal(err)
	}
	want := "timestamp,role,load,forecast,desired,ready\n" +
		"2024-03-04T00:00:00Z,web,42,,2,2\n" +
		"2024-03-04T00:01:00Z,web,61.5,70.12,3,2\n"
	if buf.String() != want {
		t.Errorf("timeline:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// dailyNaive is a small forecaster for tests: the highest load seen one day
// before the horizon's instants, plus 10%.
type dailyNaive struct {
	step time.Duration
	seen map[int64]float64
}

var _ scheduler.Forecaster = (*dailyNaive)(nil)

func (d *dailyNaive) Observe(at time.Time, v float64) { d.seen[at.Unix()] = v }

func (d *dailyNaive) Forecast(now time.Time, horizon time.Duration) (predictor.Estimate, error) {
	best, found := 0.0, false
	for t := now.Add(d.step); !t.After(now.Add(horizon)); t = t.Add(d.step) {
		if v, ok := d.seen[t.Add(-24*time.Hour).Unix()]; ok {
			best, found = max(best, v), true
		}
	}
	if !found {
		return predictor.Estimate{}, predictor.ErrInsufficientHistory
	}
	return predictor.Estimate{Point: best, Upper: best * 1.1, Quantile: 0.9, Horizon: horizon, Model: "daily-naive"}, nil
}

func newDailyNaive(step time.Duration) scheduler.Forecaster {
	return &dailyNaive{step: step, seen: map[int64]float64{}}
}

// TestNoLookahead proves that a decision at step t uses only trace values up
// to t: cutting the trace after t leaves every row up to t unchanged.
func TestNoLookahead(t *testing.T) {
	forecasters := map[string]func(time.Duration) scheduler.Forecaster{
		"predictor": func(step time.Duration) scheduler.Forecaster {
			return predictor.New(predictor.Options{Step: step, Quantile: 0.95})
		},
		"daily-naive": newDailyNaive,
	}
	for name, nf := range forecasters {
		t.Run(name, func(t *testing.T) { testNoLookahead(t, nf) })
	}
}

func testNoLookahead(t *testing.T, newForecaster func(time.Duration) scheduler.Forecaster) {
	g, err := loadgen.New("spike", loadgen.Options{Seed: 3, Peak: 800})
	if err != nil {
		t.Fatal(err)
	}
	full := g.Series(t0, t0.Add(4*24*time.Hour), 5*time.Minute)
	// Punch a gap so that the cut also lands around missing rows.
	full.Points = append(full.Points[:300:300], full.Points[340:]...)
	role := Role{Capacity: 40, NewForecaster: newForecaster, Params: scheduler.Params{
		Role: "web", Min: 1, Max: 100, LoadDriven: true, Target: 40, Headroom: 0.1,
		Stabilization: 30 * time.Minute, MaxStep: 2, Predict: true}}
	o := Options{Lead: 10 * time.Minute}
	ref, err := Run(context.Background(), full, role, o)
	if err != nil {
		t.Fatal(err)
	}
	forecasts := 0
	for _, r := range ref.Tide.Rows {
		if r.HasForecast() {
			forecasts++
		}
	}
	if forecasts < len(ref.Tide.Rows)/2 {
		t.Fatalf("only %d of %d decisions used a forecast: the test would prove little", forecasts, len(ref.Tide.Rows))
	}
	for _, cut := range []int{0, 1, 150, 299, 300, 700, len(full.Points) - 2} {
		at := full.Points[cut].At
		res, err := Run(context.Background(), full.Until(at), role, o)
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[string][2]Outcome{Tide: {ref.Tide, res.Tide}}
		for _, name := range []string{Reactive, ScheduleOnly} {
			a, _ := ref.Baseline(name)
			b, _ := res.Baseline(name)
			outcomes[name] = [2]Outcome{a, b}
		}
		for name, pair := range outcomes {
			got := pair[1].Rows
			if len(got) != cut+1 {
				t.Fatalf("cut at %d: %d rows", cut, len(got))
			}
			for i, r := range got {
				w := pair[0].Rows[i]
				same := r.Desired == w.Desired && r.Ready == w.Ready && r.Load == w.Load &&
					(r.Forecast == w.Forecast || (!r.HasForecast() && !w.HasForecast()))
				if !same {
					t.Fatalf("%s: cut after %s changed row %d (%s): %+v, full trace gave %+v", name, at.Format(time.RFC3339), i, r.At.Format(time.RFC3339), r, w)
				}
			}
		}
	}
}
