package predictor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRankedRing checks that the ring's quantiles equal those of quantile
// on a copy of the last cap values, through filling and wrapping, with ties,
// NaN and infinities.
func TestRankedRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		name string
		gen  func() float64
	}{
		{"normal", func() float64 { return rng.NormFloat64() }},
		{"ties", func() float64 { return float64(rng.IntN(5)) }},
		{"special", func() float64 {
			switch rng.IntN(10) {
			case 0:
				return math.NaN()
			case 1:
				return math.Inf(1)
			case 2:
				return math.Inf(-1)
			}
			return rng.NormFloat64()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const c = 300 // several blocks
			r := newRankedRing(c)
			var all []float64
			for n := 1; n <= 2000; n++ {
				v := tc.gen()
				r.push(v)
				all = append(all, v)
				last := all[max(0, len(all)-c):]
				if r.len() != len(last) {
					t.Fatalf("push %d: len %d, want %d", n, r.len(), len(last))
				}
				want := slices.Clone(last)
				slices.SortFunc(want, func(a, b float64) int { return cmpNaNFirst(a, b) })
				got := r.sorted()
				for i := range want {
					if g := got[i]; !(g == want[i] || math.IsNaN(g) && math.IsNaN(want[i])) {
						t.Fatalf("push %d: sorted[%d] = %v, want %v", n, i, g, want[i])
					}
				}
				for _, q := range []float64{0, 0.5, 0.9, 0.95, 0.999, 1} {
					g, w := r.quantile(q), quantile(slices.Clone(last), q)
					if !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
						t.Fatalf("push %d: quantile(%v) = %v, want %v", n, q, g, w)
					}
				}
			}
		})
	}
}

func cmpNaNFirst(a, b float64) int {
	switch {
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a) || a < b:
		return -1
	case math.IsNaN(b) || a > b:
		return 1
	}
	return 0
}

// BenchmarkRankedRingPush measures one push into a full ring of errCap
// values whose quantiles are read (so the sorted copy is maintained).
func BenchmarkRankedRingPush(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRankedRing(errCap)
	for range errCap {
		r.push(rng.NormFloat64())
	}
	_ = r.quantile(0.95)
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = rng.NormFloat64()
	}
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		r.push(vals[i%len(vals)])
	}
	stop()
}
