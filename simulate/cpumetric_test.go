package simulate

import "testing"

// cpuPerOp resets the benchmark timer and returns a function to call after
// the timed loop: it reports the process CPU time per op (all threads, the
// garbage collector's included) as the cpu-ns/op metric, which varies much
// less than ns/op on a shared machine.
func cpuPerOp(b *testing.B) (stop func()) {
	b.Helper()
	b.ResetTimer()
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
