//go:build !unix

package predictor

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
