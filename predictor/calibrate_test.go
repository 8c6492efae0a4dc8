package predictor

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestConformalBoundCoverage feeds scores of known distribution to a
// conformalBound and counts how often each score is at or below the bound
// in force before it: the p95 bound must cover 0.94 to 0.97 of them. With
// noise that grows (the past errors understate the next ones) the rule
// before it, the plain 95th percentile of the ring, covers under 0.94.
func TestConformalBoundCoverage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		sd       func(i int) float64
		oldBelow bool // the old rule covers under 0.94
	}{
		{"steady", 20000, func(int) float64 { return 1 }, false},
		{"growing", 20000, func(i int) float64 { return math.Exp(float64(i) / 12000) }, true},
		{"few scores", 300, func(int) float64 { return 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			hits, oldHits, seen := 0, 0, 0
			// Many short runs for the small-sample case, one long run
			// otherwise.
			for range max(1, 20000/tc.n) {
				c := newConformalBound(0.05)
				for i := range tc.n {
					s := rng.NormFloat64() * tc.sd(i)
					if q, ok := c.bound(); ok {
						seen++
						if s <= q {
							hits++
						}
						if s <= c.scores.quantile(0.95) {
							oldHits++
						}
					}
					c.add(s)
				}
			}
			cov, old := float64(hits)/float64(seen), float64(oldHits)/float64(seen)
			t.Logf("coverage %.4f (old rule %.4f) of %d", cov, old, seen)
			if cov < 0.94 || cov > 0.97 {
				t.Errorf("coverage %.4f, want 0.94 to 0.97", cov)
			}
			if tc.oldBelow && old >= 0.94 {
				t.Errorf("old rule covers %.4f: the case does not tell the rules apart", old)
			}
		})
	}
}

// TestOnlineStepCoverage runs Online on a daily and weekly load with
// noise of known distribution and checks that the per-step p95 bounds of
// Steps, one to six steps ahead, cover 0.94 to 0.97 of the values.
func TestOnlineStepCoverage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noise func(rng *rand.Rand, v float64) float64
	}{
		{"additive", func(rng *rand.Rand, v float64) float64 { return v + 8*rng.NormFloat64() }},
		{"proportional", func(rng *rand.Rand, v float64) float64 { return v * (1 + 0.08*rng.NormFloat64()) }},
		{"heavy tails", func(rng *rand.Rand, v float64) float64 { return v + 4*rng.NormFloat64()/math.Sqrt(rng.ExpFloat64()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, 14))
			vals := map[time.Time]float64{}
			noisy := func(at time.Time) float64 {
				v, ok := vals[at]
				if !ok {
					v = tc.noise(rng, load(at))
					vals[at] = v
				}
				return v
			}
			step := 10 * time.Minute
			o := New(Options{Step: step, RefitEvery: 24 * time.Hour})
			start := t0.Add(15 * 24 * time.Hour)
			feed(o, t0, start, step, noisy)
			const h = 6
			hits, n := 0, 0
			for now := start; now.Before(start.Add(6 * 24 * time.Hour)); now = now.Add(step) {
				_, upper, err := o.Steps(now.Add(-step), h*step)
				if err != nil {
					t.Fatal(err)
				}
				for j, u := range upper {
					n++
					if noisy(now.Add(time.Duration(j)*step)) <= u {
						hits++
					}
				}
				o.Observe(now, noisy(now))
			}
			cov := float64(hits) / float64(n)
			t.Logf("per-step p95 coverage %.4f of %d", cov, n)
			if cov < 0.94 || cov > 0.97 {
				t.Errorf("per-step p95 coverage %.4f, want 0.94 to 0.97", cov)
			}
		})
	}
}
