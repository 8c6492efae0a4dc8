package predictor

import (
	"testing"
	"time"
)

// BenchmarkObserve measures the per-sample update on minute data, refits
// included (amortised).
func BenchmarkObserve(b *testing.B) {
	o := New(Options{Step: time.Minute})
	feed(o, t0, t0.Add(14*24*time.Hour), time.Minute, load)
	at := t0.Add(14 * 24 * time.Hour)
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		o.Observe(at, load(at))
		at = at.Add(time.Minute)
	}
	stop()
}

// BenchmarkObserveNoRefit measures the per-sample update alone.
func BenchmarkObserveNoRefit(b *testing.B) {
	o := New(Options{Step: time.Minute, RefitEvery: -1})
	feed(o, t0, t0.Add(14*24*time.Hour), time.Minute, load)
	if err := o.Refit(); err != nil {
		b.Fatal(err)
	}
	at := t0.Add(14 * 24 * time.Hour)
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		o.Observe(at, load(at))
		at = at.Add(time.Minute)
	}
	stop()
}

// BenchmarkRefit8WeeksMinute measures a full refit on 8 weeks of minute
// data.
func BenchmarkRefit8WeeksMinute(b *testing.B) {
	o := New(Options{Step: time.Minute, RefitEvery: -1})
	feed(o, t0, t0.Add(8*7*24*time.Hour), time.Minute, load)
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		if err := o.Refit(); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
