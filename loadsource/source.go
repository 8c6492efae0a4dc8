package loadsource

import (
	"context"
	"errors"
	"time"

	"github.com/tideops/tide/scheduler"
)

// ErrNoData says the load is missing: no sample, an empty or ambiguous
// query result, a NaN. Sources wrap it with the reason.
var ErrNoData = errors.New("no load data")

// Source gives one role's latest load. Consumers declare their own
// interface with this method set; Source is here to pin implementations.
type Source interface {
	// Latest returns the newest load at or before now. When the load is
	// missing it returns an error matching ErrNoData, never a zero sample.
	Latest(ctx context.Context, now time.Time) (scheduler.Sample, error)
}

// Backfiller gives a role's past load, to rebuild the predictor's history
// when the service starts.
type Backfiller interface {
	// Range returns the samples in [from, to] every step, oldest first.
	// Instants without a value are left out; no value at all is an error
	// matching ErrNoData.
	Range(ctx context.Context, from, to time.Time, step time.Duration) ([]scheduler.Sample, error)
}
