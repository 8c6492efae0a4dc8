package simulate

import (
	"time"

	"github.com/tideops/tide/scheduler"
)

// newForecaster returns tide's forecaster for the tests.
func newForecaster() func(step time.Duration) scheduler.Forecaster { return newDailyNaive }
