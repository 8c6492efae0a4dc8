package predictor

import (
	"testing"
	"time"
)

// BenchmarkObserve measures the per-sample update on minute data with a
// full 8-week window, refits included (amortised: one every 6 hours of
// data, choosing the model once a day; the default benchtime feeds months
// of samples, so the figure includes hundreds of refits).
func BenchmarkObserve(b *testing.B) {
	o := New(Options{Step: time.Minute})
	end := t0.Add(8 * 7 * 24 * time.Hour)
	feed(o, t0, end, time.Minute, load)
	at := end
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
// data: choosing the model among the candidates by validation, then
// fitting it with its smoothing parameters.
func BenchmarkRefit8WeeksMinute(b *testing.B) {
	o := New(Options{Step: time.Minute, RefitEvery: -1, SelectEvery: -1})
	feed(o, t0, t0.Add(8*7*24*time.Hour), time.Minute, load)
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		if err := o.Refit(); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

// BenchmarkRefit8WeeksMinuteKeep measures a refit between two choices on 8
// weeks of minute data: the model and its smoothing parameters are kept,
// the seasonal profiles fitted again and the level replayed.
func BenchmarkRefit8WeeksMinuteKeep(b *testing.B) {
	o := New(Options{Step: time.Minute, RefitEvery: -1, SelectEvery: 1000 * time.Hour})
	feed(o, t0, t0.Add(8*7*24*time.Hour), time.Minute, load)
	if err := o.Refit(); err != nil { // the choice
		b.Fatal(err)
	}
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		if err := o.Refit(); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
