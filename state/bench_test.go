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
