package scheduler

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestRememberKeepsTheWindow checks remember against the plain filter it
// replaced (keep what was wanted after now minus the stabilization, in
// order, then add now) on runs of decisions in time order, with restores,
// and with decisions out of order.
func TestRememberKeepsTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backStep float64 // chance that a decision is for an earlier now
		restore  float64 // chance of a Restore instead of a decision
	}{
		{name: "in time order"},
		{name: "with restores", restore: 0.1},
		{name: "out of order", backStep: 0.2},
		{name: "out of order with restores", backStep: 0.2, restore: 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			r := NewRole(Params{Stabilization: 10 * time.Minute}, nil, nil)
			var want []recommendation
			now, most := t0, 0
			for i := range 5000 {
				switch {
				case rng.Float64() < tc.backStep:
					now = now.Add(-time.Duration(rng.IntN(5)) * time.Minute)
				default:
					now = now.Add(time.Duration(rng.IntN(3)) * time.Minute)
				}
				count := rng.IntN(50)
				if rng.Float64() < tc.restore {
					at := now.Add(-time.Duration(rng.IntN(20)) * time.Minute)
					r.Restore(count, at)
					want = append(want, recommendation{at: at, count: count})
				} else {
					r.remember(now, count)
					cut := now.Add(-10 * time.Minute)
					want = append(slices.DeleteFunc(want, func(rc recommendation) bool { return !rc.at.After(cut) }),
						recommendation{at: now, count: count})
				}
				if got := r.recent[r.old:]; !slices.Equal(got, want) {
					t.Fatalf("step %d: kept %v, want %v", i, got, want)
				}
				most = max(most, len(want))
				h := -1
				for _, rc := range want {
					h = max(h, rc.count)
				}
				if got := r.highestRecent(); got != h {
					t.Fatalf("step %d: highest %d, want %d", i, got, h)
				}
			}
			if cap(r.recent) > 4*most {
				t.Errorf("the window's room grew to %d for at most %d recommendations", cap(r.recent), most)
			}
		})
	}
}
