package predictor

import "math"

// selection is the outcome of choosing a candidate by validation.
type selection struct {
	spec   spec
	errors []float64 // signed validation errors (actual - forecast)
}

// selectModel fits every applicable candidate to y without its last hv
// values, scores its forecast of them by MASE and returns the best, with
// its validation errors. Too short a series selects seasonal naive.
func selectModel(y []float64, periods []int, hv int) selection {
	return selectFrom(candidates, y, periods, hv, nil)
}

// selectFrom is selectModel over the given candidates.
func selectFrom(cands []spec, y []float64, periods []int, hv int, w0 []float64) selection {
	best := selection{spec: cands[0]}
	n := len(y)
	shortest := 1
	if ps := usablePeriods(periods, n); len(ps) > 0 {
		shortest = ps[0]
	}
	if hv < 1 || n-hv < 2*shortest || n-hv < 8 {
		return best
	}
	train, test := y[:n-hv], y[n-hv:]
	scale := seasonalScale(train, shortest)
	bestScore := math.Inf(1)
	for _, s := range cands {
		if !s.applicable(train) {
			continue
		}
		var w []float64
		if w0 != nil {
			w = w0[:n-hv]
		}
		f := s.fitW(train, periods, w).forecast(hv)
		score := 0.0
		for j := range f {
			score += math.Abs(test[j] - f[j])
		}
		score /= scale * float64(hv)
		if score < bestScore || math.IsNaN(bestScore) {
			bestScore = score
			errs := make([]float64, hv)
			for j := range f {
				errs[j] = test[j] - f[j]
			}
			best = selection{spec: s, errors: errs}
		}
	}
	return best
}

// ForecastSeries forecasts h steps after y (equally spaced values without
// timestamps) with the given seasonal periods in steps (e.g. 24 and 168 on
// hourly data). It returns the point forecast and the upper quantile per
// step.
//
// The model is chosen per series from a small family (seasonal naive and
// MSTL-style decompositions with damped-trend exponential smoothing of the
// seasonally adjusted series, additive or on logs) by its accuracy on the
// last h values, then refitted on all of y. The upper quantile adds the
// empirical quantile of that validation's errors to the point forecast.
func ForecastSeries(y []float64, periods []int, h int, quantile float64) (point, upper []float64) {
	if h <= 0 {
		return nil, nil
	}
	if quantile <= 0 || quantile >= 1 {
		quantile = 0.95
	}
	sel := selectModel(y, periods, h)
	point = sel.spec.fit(y, periods).forecast(h)
	upper = make([]float64, h)
	// The validation errors of the chosen model are optimistic (it won
	// because they were small): take the errors of the same model on the h
	// values before instead.
	errs := backtestErrors(sel.spec, y[:max(0, len(y)-h)], periods, h)
	errs = append(errs, backtestErrors(sel.spec, y[:max(0, len(y)-2*h)], periods, h)...)
	errs = append(errs, sel.errors...)
	// Errors of three past windows understate the next window's (the
	// series drift, and 144 errors hold few tail values): aim at half the
	// nominal exceedance, which on M4 Hourly holdouts brings coverage near
	// nominal.
	margin := upperMargin(errs, y, 1-(1-quantile)/2)
	for j := range point {
		upper[j] = point[j] + margin
	}
	return point, upper
}

// backtestErrors fits s to y without its last h values and returns the
// signed errors of its forecast of them; nil if y is too short.
func backtestErrors(s spec, y []float64, periods []int, h int) []float64 {
	n := len(y)
	shortest := 1
	if ps := usablePeriods(periods, n); len(ps) > 0 {
		shortest = ps[0]
	}
	if h < 1 || n-h < 2*shortest || n-h < 8 || !s.applicable(y[:n-h]) {
		return nil
	}
	f := s.fit(y[:n-h], periods).forecast(h)
	errs := make([]float64, h)
	for j := range f {
		errs[j] = y[n-h+j] - f[j]
	}
	return errs
}

// upperMargin is the amount to add to a point forecast to reach the given
// quantile, from signed errors; without errors it falls back to a multiple
// of the series' typical one-step change.
func upperMargin(errs, y []float64, q float64) float64 {
	if len(errs) >= 8 {
		e := append([]float64(nil), errs...)
		return math.Max(0, quantile(e, q))
	}
	if len(y) < 2 {
		return 0
	}
	d := make([]float64, 0, len(y)-1)
	for i := 1; i < len(y); i++ {
		d = append(d, math.Abs(y[i]-y[i-1]))
	}
	return 2 * quantile(d, q)
}
