//go:build unix

package simulate

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system, all threads) the test
// process has used: on a shared machine wall time per op varies with the
// other load, CPU time much less.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
