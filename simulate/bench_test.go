package simulate

import (
	"context"
	"testing"
	"time"

	"github.com/tideops/tide/loadgen"
	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/scheduler"
)

// BenchmarkSimulate30DaysMinute simulates 30 days of 1-minute steps for one
// role with the predictor, plus the three baselines.
func BenchmarkSimulate30DaysMinute(b *testing.B) {
	g, err := loadgen.New("office", loadgen.Options{Seed: 1, Peak: 2000})
	if err != nil {
		b.Fatal(err)
	}
	tr := g.Series(t0, t0.Add(30*24*time.Hour), time.Minute)
	role := Role{Capacity: 100, NewForecaster: func(step time.Duration) scheduler.Forecaster {
		return predictor.New(predictor.Options{Step: step, Quantile: 0.95})
	}, Params: scheduler.Params{Role: "web", Min: 1, Max: 1000, LoadDriven: true, Target: 100, Headroom: 0.2,
		Stabilization: 15 * time.Minute, Predict: true}}
	b.ReportAllocs()
	stop := cpuPerOp(b)
	for b.Loop() {
		if _, err := Run(context.Background(), tr, role, Options{Lead: 10 * time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

// BenchmarkSimulate30DaysMinuteNoForecast is the same simulation without a
// forecaster: the cost of the simulator and the decision code alone.
func BenchmarkSimulate30DaysMinuteNoForecast(b *testing.B) {
	g, err := loadgen.New("office", loadgen.Options{Seed: 1, Peak: 2000})
	if err != nil {
		b.Fatal(err)
	}
	tr := g.Series(t0, t0.Add(30*24*time.Hour), time.Minute)
	role := Role{Capacity: 100, Params: scheduler.Params{Role: "web", Min: 1, Max: 1000, LoadDriven: true, Target: 100,
		Headroom: 0.2, Stabilization: 15 * time.Minute}}
	b.ReportAllocs()
	stop := cpuPerOp(b)
	for b.Loop() {
		if _, err := Run(context.Background(), tr, role, Options{Lead: 10 * time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
