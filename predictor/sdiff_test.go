package predictor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSdiffAR(t *testing.T) {
	const p, n, h = 24, 24 * 30, 48
	shape := func(i int) float64 { return 10 * math.Sin(2*math.Pi*float64(i)/p) }
	for _, tc := range []struct {
		name  string
		y     func(i int) float64
		drift bool
		tol   float64 // largest absolute error allowed over h steps
	}{
		// A daily shape on a straight line: the seasonal differences are
		// the constant rise per day, which the intercept carries on.
		{"trend with drift", func(i int) float64 { return 100 + 0.05*float64(i) + shape(i) }, true, 0.01},
		// Without drift the differences revert to 0: the last day repeats.
		{"flat without drift", func(i int) float64 { return 100 + shape(i) }, false, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			y := make([]float64, n)
			for i := range y {
				y[i] = tc.y(i) + 1e-3*rng.NormFloat64()
			}
			m := fitSdiffAR(y, p, 3, tc.drift)
			if m == nil {
				t.Fatal("no fit")
			}
			f := m.forecast(h)
			for j, v := range f {
				if d := math.Abs(v - tc.y(n+j)); d > tc.tol {
					t.Fatalf("step %d: forecast %.6f, want %.6f", j+1, v, tc.y(n+j))
				}
			}
		})
	}
	t.Run("too short", func(t *testing.T) {
		if m := fitSdiffAR(make([]float64, p+5), p, 3, true); m != nil {
			t.Errorf("fitted %d values", p+5)
		}
	})
	t.Run("stationary", func(t *testing.T) {
		// A random walk's differences: the coefficients must be shrunk
		// so that the forecast does not explode.
		rng := rand.New(rand.NewPCG(3, 4))
		y := make([]float64, n)
		for i := 1; i < n; i++ {
			y[i] = y[i-1] + rng.NormFloat64()
		}
		m := fitSdiffAR(y, p, 3, false)
		if s := sumAbs(m.phi); s >= 1 {
			t.Errorf("sum of |phi| %.3f, want < 1", s)
		}
	})
}

func TestHoltLeads(t *testing.T) {
	for _, tc := range []struct {
		h    int
		want []int
	}{
		{0, nil}, {1, nil}, {2, []int{1, 2}}, {4, []int{1, 4}}, {48, []int{1, 12, 48}},
	} {
		if got := holtLeads(tc.h); !slices.Equal(got, tc.want) {
			t.Errorf("holtLeads(%d) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestFitHoltLeadsAvoidsTrend: on a series that wiggles around a flat
// level, one-step errors reward following each wiggle's slope; scored on
// the leads a day-ahead forecast serves, the fit extrapolates less.
func TestFitHoltLeadsAvoidsTrend(t *testing.T) {
	x := make([]float64, 600)
	for i := range x {
		x[i] = 50 + 5*math.Sin(2*math.Pi*float64(i)/37)
	}
	one, multi := fitHolt(x), fitHoltLeads(x, holtLeads(48))
	ext := func(h holt) float64 { return math.Abs(h.forecast(48) - h.forecast(1)) }
	if ext(multi) >= ext(one) {
		t.Errorf("48-step extrapolation %.3f (%+v), one-step fit's %.3f (%+v): want smaller", ext(multi), multi, ext(one), one)
	}
	if got := fitHoltLeads(x, nil); got != one {
		t.Errorf("without leads %+v, want fitHolt's %+v", got, one)
	}
}
