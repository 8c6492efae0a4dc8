//go:build !unix

package simulate

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
