package state

import (
	"testing"
	"time"

	"github.com/tideops/tide/scheduler"
)

func benchOptions(b *testing.B, sync bool) *Store {
	return openTest(b, Options{NoSync: !sync})
}

// BenchmarkAppendDecision measures one decision appended (one transaction,
// retention included), with and without fsync.
func BenchmarkAppendDecision(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			s := benchOptions(b, sync)
			rec := decision("web", t0, 6)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rec.At = t0.Add(time.Duration(i) * 30 * time.Second)
				if err := s.AppendDecision(rec); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAppendSamples measures one transaction of 60 samples (a
// minute's worth at 1 s or an hour's at 1 min), per transaction.
func BenchmarkAppendSamples(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			s := benchOptions(b, sync)
			batch := make([]scheduler.Sample, 60)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for j := range batch {
					batch[j] = scheduler.Sample{At: t0.Add(time.Duration(i*60+j) * time.Second), Value: float64(j)}
				}
				if err := s.AppendSamples("web", batch); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkSamplesWeek measures reading back a week of one-minute samples,
// as the service does per role to rebuild its predictor at start.
func BenchmarkSamplesWeek(b *testing.B) {
	s := benchOptions(b, false)
	week := make([]scheduler.Sample, 7*24*60)
	for i := range week {
		week[i] = scheduler.Sample{At: t0.Add(time.Duration(i) * time.Minute), Value: float64(i)}
	}
	if err := s.AppendSamples("web", week); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Samples("web", time.Time{})
		if err != nil || len(got) != len(week) {
			b.Fatalf("%d samples, %v", len(got), err)
		}
	}
}
