package predictor

import (
	"errors"
	"time"
)

// ErrInsufficientHistory is returned by forecasters that have seen less than
// one season of history; callers fall back to reactive scaling and say so.
var ErrInsufficientHistory = errors.New("insufficient history for a forecast")

// Estimate is the load expected within a horizon: the highest point forecast
// and the highest upper-quantile forecast over the steps from now to
// now+Horizon.
type Estimate struct {
	Point    float64       `json:"point"`
	Upper    float64       `json:"upper"`
	Quantile float64       `json:"quantile"` // e.g. 0.95
	Horizon  time.Duration `json:"horizon"`
	Model    string        `json:"model"`
}
