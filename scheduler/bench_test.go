package scheduler

import (
	"math"
	"testing"
	"time"

	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/predictor"
)

// BenchmarkDecide is one decision of a role with a schedule window, a load
// policy and a forecaster (a fake: the forecaster's own cost is not
// measured here), on minute steps whose load swings over an hour, so that
// the count rises, is held by stabilization and steps down.
func BenchmarkDecide(b *testing.B) {
	p := baseParams()
	p.Max = 100
	ws := policies.Set{fixedWindow{name: "business-hours", from: t0, until: t0.Add(24 * time.Hour), count: 3, mode: policies.Floor}}
	f := &laterFake{later: predictor.Estimate{Upper: 900, Quantile: 0.95, Model: "hw(day)"}}
	r := NewRole(p, ws, f)
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		load := 500 + 450*math.Sin(float64(i%60)*2*math.Pi/60)
		f.later.Upper = load * 1.1
		r.Observe(Sample{At: now, Value: load})
		if rec := r.Decide(now, nil); rec.Desired < 3 {
			b.Fatalf("desired %d under the window's 3", rec.Desired)
		}
		now = now.Add(time.Minute)
		i++
	}
}
