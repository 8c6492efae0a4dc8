package forecast

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/trace"
)

func TestReadM4(t *testing.T) {
	in := `"V1","V2","V3","V4","V5"
"H1",1,2,3,4
"H2",5,6,"",""
`
	got, err := ReadM4(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "H1" || !slices.Equal(got[0].Values, []float64{1, 2, 3, 4}) ||
		got[1].ID != "H2" || !slices.Equal(got[1].Values, []float64{5, 6}) {
		t.Fatalf("got %+v", got)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"gap inside", "V1,V2,V3\nH1,,3\n"},
		{"not a number", "V1,V2\nH1,x\n"},
		{"no id", "V1,V2\n,1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadM4(strings.NewReader(tc.in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestWriteM4RoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteM4(&b, []string{"H1", "H2"}, [][]float64{{1.5, 2}, {3, 4.25}}, 2); err != nil {
		t.Fatal(err)
	}
	if want := "id,F1,F2\nH1,1.5,2\nH2,3,4.25\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	if err := WriteM4(&b, []string{"H1"}, [][]float64{{1}}, 2); err == nil {
		t.Error("wrong length: no error")
	}
}

func TestMetrics(t *testing.T) {
	in := []float64{1, 2, 3, 4, 2, 3, 4, 5} // lag-4 differences all 1
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"MASE perfect", MASE(in, []float64{1, 2}, []float64{1, 2}, 4), 0},
		{"MASE off by one", MASE(in, []float64{1, 2}, []float64{2, 3}, 4), 1},
		{"MASE off by two", MASE(in, []float64{1, 2}, []float64{3, 0}, 4), 2},
		{"sMAPE", SMAPE([]float64{100, 0}, []float64{50, 0}), 200 * (50.0 / 150) / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if math.Abs(tc.got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if !math.IsNaN(MASE([]float64{1, 1, 1}, []float64{1}, []float64{1}, 1)) {
		t.Error("MASE with zero scale is not NaN")
	}
	if h, n := Coverage([]float64{1, 2, 3}, []float64{2, 2, 2}); h != 2 || n != 3 {
		t.Errorf("coverage %d of %d, want 2 of 3", h, n)
	}
}

// repoRoot walks up to go.mod.
func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// sharedTrace opens a file of ../shared/traces; it skips when absent,
// except under CI where the file must exist.
func sharedTrace(t *testing.T, name string) *os.File {
	p := filepath.Join(repoRoot(t), "..", "shared", "traces", name)
	f, err := os.Open(p)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("trace absent: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestEvalM4Hourly evaluates on the real M4 Hourly training file, holding
// out the last 48 values, on every 8th series (every 32nd with -short) to
// keep the run time bounded under -race. The full run is `tide forecast m4
// --holdout 48 --eval`.
func TestEvalM4Hourly(t *testing.T) {
	series, err := ReadM4(sharedTrace(t, "M4-Hourly-train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 414 {
		t.Fatalf("%d series, want 414", len(series))
	}
	every := 8
	if testing.Short() {
		every = 32
	}
	var sub []Series
	for i := 0; i < len(series); i += every {
		sub = append(sub, series[i])
	}
	rep, err := EvalM4(context.Background(), sub, 48, 48, 2, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	ratio := rep.Tide.MASE() / rep.Naive.MASE()
	t.Logf("%d series: MASE tide %.3f naive %.3f (ratio %.3f), sMAPE tide %.3f naive %.3f, coverage %.3f",
		rep.Series, rep.Tide.MASE(), rep.Naive.MASE(), ratio, rep.Tide.SMAPE(), rep.Naive.SMAPE(), rep.Tide.Coverage())
	if ratio > 0.9 {
		t.Errorf("MASE ratio to seasonal naive %.3f, want <= 0.9", ratio)
	}
	if rep.Tide.SMAPE() > 0.85*rep.Naive.SMAPE() {
		t.Errorf("sMAPE %.3f not clearly below naive's %.3f", rep.Tide.SMAPE(), rep.Naive.SMAPE())
	}
	if c := rep.Tide.Coverage(); c < 0.7 || c > 0.99 {
		t.Errorf("p95 coverage %.3f, want within [0.7, 0.99]", c)
	}
	if rep.Upper.Hits != rep.Tide.Hits || rep.Upper.Seen != rep.Tide.Seen {
		t.Errorf("band counts %d of %d, score's %d of %d", rep.Upper.Hits, rep.Upper.Seen, rep.Tide.Hits, rep.Tide.Seen)
	}
	if w := rep.Upper.Width(); !(w > 0 && w < 0.5) {
		t.Errorf("band width %.3f, want within (0, 0.5)", w)
	}
	t.Logf("band width %.3f", rep.Upper.Width())
}

// syntheticTrace is 15-minute samples over three weeks and a half with
// daily and weekly cycles, noise and a two-day hole.
func syntheticTrace() *trace.Trace {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(5, 6))
	tr := &trace.Trace{Name: "synthetic", Step: 15 * time.Minute}
	for at := t0; at.Before(t0.Add(24 * 24 * time.Hour)); at = at.Add(15 * time.Minute) {
		if at.After(t0.Add(9*24*time.Hour)) && at.Before(t0.Add(11*24*time.Hour)) {
			continue
		}
		h := float64(at.Sub(t0)) / float64(time.Hour)
		v := 100 + 40*math.Sin(2*math.Pi*h/24) + 5*math.Sin(h*7.3) + 4*rng.NormFloat64()
		if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v -= 30
		}
		tr.Points = append(tr.Points, trace.Point{At: at, Value: v})
	}
	return tr
}

func TestEvalTrace(t *testing.T) {
	rep, err := EvalTrace(context.Background(), syntheticTrace(), TraceOptions{Horizon: time.Hour, Weeks: 1, Every: 5 * time.Hour, RefitEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Step != 15*time.Minute || rep.Origins < 30 {
		t.Fatalf("step %v origins %d", rep.Step, rep.Origins)
	}
	tide, daily := rep.Models[0], rep.Models[1]
	t.Logf("MASE tide %.3f daily naive %.3f weekly naive %.3f; coverage %.3f", tide.MASE(), daily.MASE(), rep.Models[2].MASE(), tide.Coverage())
	if tide.MASE() >= daily.MASE() {
		t.Errorf("tide MASE %.3f not below daily seasonal naive's %.3f", tide.MASE(), daily.MASE())
	}
	if tide.Seen == 0 || rep.Window.Seen == 0 || rep.PerStep.Seen != tide.Seen {
		t.Errorf("coverage recorded: per step %d (%d in the model score), window %d", rep.PerStep.Seen, tide.Seen, rep.Window.Seen)
	}
	if w := rep.Window.Width(); !(w > 0 && w < 1) {
		t.Errorf("window band width %.3f of the point, want in (0, 1)", w)
	}
}
