package predictor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fitHoltReference is the plain grid search fitHolt must agree with: every
// parameter set run in turn, the first of equal losses kept.
func fitHoltReference(x []float64) holt {
	if len(x) == 0 {
		return holt{phi: 0.9}
	}
	x = x[max(0, len(x)-holtFitLen):]
	d := make([]float64, 0, len(x))
	for i := 1; i < len(x); i++ {
		d = append(d, math.Abs(x[i]-x[i-1]))
	}
	clip := math.Inf(1)
	if len(d) > 0 {
		if m := median(d); m > 0 {
			clip = 3 * 1.48 * m
		}
	}
	burn := min(len(x)/10, 24)
	best := holt{alpha: 0.5, phi: 0.9, level: x[0]}
	bestLoss := math.Inf(1)
	for _, a := range holtAlphas {
		for _, b := range holtBetas {
			for _, p := range holtPhis {
				h := holt{alpha: a, beta: b, phi: p, level: x[0]}
				if loss := h.run(x, burn, clip); loss < bestLoss {
					bestLoss, best = loss, h
				}
			}
		}
	}
	return best
}

// TestFitHoltMatchesGrid checks that the interleaved grid search chooses
// the same parameters and ends in the same state, bit for bit, as running
// each parameter set in turn.
func TestFitHoltMatchesGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name string
		x    func(n int) []float64
	}{
		{"trend", func(n int) []float64 {
			x := make([]float64, n)
			for i := range x {
				x[i] = 0.3*float64(i) + rng.NormFloat64()
			}
			return x
		}},
		{"noise with outliers", func(n int) []float64 {
			x := make([]float64, n)
			for i := range x {
				x[i] = 50 + 5*rng.NormFloat64()
				if rng.IntN(40) == 0 {
					x[i] += 200
				}
			}
			return x
		}},
		{"flat", func(n int) []float64 {
			x := make([]float64, n)
			for i := range x {
				x[i] = 7
			}
			return x
		}},
	} {
		for _, n := range []int{1, 3, 30, 999, 2500} {
			x := tc.x(n)
			got, want := fitHolt(x), fitHoltReference(x)
			if got != want {
				t.Errorf("%s, %d values: fitHolt = %+v, want %+v", tc.name, n, got, want)
			}
		}
	}
}

// TestMedian checks the selection-based median against sorting, with ties,
// odd and even counts, and NaN.
func TestMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 1; n <= 300; n++ {
		for _, ties := range []bool{false, true} {
			v := make([]float64, n)
			for i := range v {
				v[i] = rng.NormFloat64()
				if ties {
					v[i] = float64(rng.IntN(4))
				}
			}
			w := slices.Clone(v)
			slices.Sort(w)
			want := w[n/2]
			if n%2 == 0 {
				want = (w[n/2-1] + w[n/2]) / 2
			}
			if got := median(v); got != want {
				t.Fatalf("n %d ties %v: median %v, want %v", n, ties, got, want)
			}
		}
	}
	if got := median([]float64{3, math.NaN(), 1}); got != 1 {
		t.Errorf("median with NaN = %v, want 1 (NaN sorts first)", got)
	}
}

// TestQuantileSelect checks the selection-based quantile against
// interpolating in a sorted copy.
func TestQuantileSelect(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for n := 1; n <= 200; n++ {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Round(rng.NormFloat64() * 3)
		}
		w := slices.Clone(v)
		slices.Sort(w)
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.95, 0.975, 1} {
			if got, want := quantile(slices.Clone(v), q), sortedQuantile(w, q); got != want {
				t.Fatalf("n %d q %v: quantile %v, want %v", n, q, got, want)
			}
		}
	}
}
