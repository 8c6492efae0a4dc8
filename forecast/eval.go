package forecast

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/trace"
)

// Score accumulates the accuracy of one model over many forecasts.
type Score struct {
	Name       string
	sumMASE    float64
	nMASE      int
	sumSMAPE   float64
	nSMAPE     int
	Hits, Seen int // upper-quantile coverage; Seen is 0 for models without one
}

// Add records one forecast f of actual y (NaN actuals are skipped) with the
// MASE scale of its in-sample part.
func (s *Score) Add(y, f []float64, scale float64) {
	var yy, ff []float64
	for i := range y {
		if !math.IsNaN(y[i]) && !math.IsNaN(f[i]) {
			yy, ff = append(yy, y[i]), append(ff, f[i])
		}
	}
	if len(yy) == 0 {
		return
	}
	if scale > 0 {
		e := 0.0
		for i := range yy {
			e += math.Abs(yy[i] - ff[i])
		}
		s.sumMASE += e / float64(len(yy)) / scale
		s.nMASE++
	}
	if v := SMAPE(yy, ff); !math.IsNaN(v) {
		s.sumSMAPE += v
		s.nSMAPE++
	}
}

// AddUpper records the coverage of upper bounds u of actuals y.
func (s *Score) AddUpper(y, u []float64) {
	for i := range y {
		if math.IsNaN(y[i]) || i >= len(u) {
			continue
		}
		s.Seen++
		if y[i] <= u[i] {
			s.Hits++
		}
	}
}

// MASE is the mean MASE over the forecasts recorded.
func (s *Score) MASE() float64 { return s.sumMASE / float64(s.nMASE) }

// SMAPE is the mean sMAPE over the forecasts recorded.
func (s *Score) SMAPE() float64 { return s.sumSMAPE / float64(s.nSMAPE) }

// Coverage is the share of actuals at or below their upper bound.
func (s *Score) Coverage() float64 { return float64(s.Hits) / float64(s.Seen) }

// M4Periods are the seasonal periods used for M4 Hourly: a day and a week.
var M4Periods = []int{24, 168}

// ForecastAll forecasts h steps after every series with
// predictor.ForecastSeries on the given number of workers.
func ForecastAll(ctx context.Context, series []Series, h, workers int, quantile float64) (point, upper [][]float64, err error) {
	point = make([][]float64, len(series))
	upper = make([][]float64, len(series))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				point[i], upper[i] = predictor.ForecastSeries(series[i].Values, M4Periods, h, quantile)
			}
		}()
	}
	for i := range series {
		select {
		case jobs <- i:
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return nil, nil, fmt.Errorf("forecasting series: %w", ctx.Err())
		}
	}
	close(jobs)
	wg.Wait()
	return point, upper, nil
}

// M4Report is the outcome of a holdout evaluation on M4-layout series.
type M4Report struct {
	Series   int
	Horizon  int
	Quantile float64
	Tide     Score
	Naive    Score // seasonal naive, period 24
	// Upper is the band of tide's upper bounds: its coverage (the same
	// as Tide's) and its width relative to the point forecast.
	Upper Band
}

// EvalM4 cuts the last holdout values off every series, forecasts
// min(h, holdout) steps and scores tide's forecasts and seasonal naive's
// (period 24) with MASE as in M4 (scale: in-sample mean absolute difference
// at lag 24) and sMAPE, and the upper quantile's coverage.
func EvalM4(ctx context.Context, series []Series, holdout, h, workers int, quantile float64) (M4Report, error) {
	h = min(h, holdout)
	rep := M4Report{Horizon: h, Quantile: quantile, Tide: Score{Name: "tide"}, Naive: Score{Name: "seasonal-naive"}}
	train := make([]Series, 0, len(series))
	var tests [][]float64
	for _, s := range series {
		n := len(s.Values) - holdout
		if n < 2 {
			return rep, fmt.Errorf("evaluating series %s: %d values, holdout %d", s.ID, len(s.Values), holdout)
		}
		train = append(train, Series{ID: s.ID, Values: s.Values[:n]})
		tests = append(tests, s.Values[n:n+h])
	}
	point, upper, err := ForecastAll(ctx, train, h, workers, quantile)
	if err != nil {
		return rep, err
	}
	for i, s := range train {
		scale := maseScale(s.Values, 24)
		rep.Tide.Add(tests[i], point[i], scale)
		rep.Tide.AddUpper(tests[i], upper[i])
		for j, v := range tests[i] {
			if !math.IsNaN(v) && j < len(upper[i]) {
				rep.Upper.add(v, point[i][j], upper[i][j])
			}
		}
		rep.Naive.Add(tests[i], predictor.SeasonalNaive(s.Values, 24, h), scale)
	}
	rep.Series = len(train)
	return rep, nil
}

// maseScale is the mean absolute difference at lag m over y, skipping NaN.
func maseScale(y []float64, m int) float64 {
	s, n := 0.0, 0
	for i := m; i < len(y); i++ {
		if d := y[i] - y[i-m]; !math.IsNaN(d) {
			s += math.Abs(d)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// TraceOptions configures a rolling-origin evaluation on a trace.
type TraceOptions struct {
	Horizon  time.Duration // forecast horizon
	Weeks    int           // origins over the last Weeks weeks, default 4
	Every    time.Duration // time between origins, default 1h
	Quantile float64       // default 0.95
	// RefitEvery is passed to predictor.Options (0: its default).
	RefitEvery time.Duration
}

// TraceReport is the outcome of a rolling-origin evaluation.
type TraceReport struct {
	Step     time.Duration
	Horizon  time.Duration
	Origins  int
	Quantile float64
	// Models scores per-step forecasts: tide's online forecaster and
	// seasonal naive with a daily and with a weekly period. Tide's Hits and
	// Seen count per-step coverage of its per-step upper bounds
	// (predictor.Online.Steps).
	Models []*Score
	// Window counts the origins where the highest actual over
	// (origin, origin+horizon] was at or below the Estimate's Upper
	// (predictor.Online.Forecast): the number that matters for scaling
	// ahead.
	Window Band
	// PerStep is the band of the per-step upper bounds.
	PerStep Band
	// InsufficientHistory counts origins where tide declined to forecast.
	InsufficientHistory int
	// ModelChanges counts the refits at which tide's forecaster changed
	// its model (predictor.Online.ModelChanges), over the whole run.
	ModelChanges int
}

// Band accumulates the coverage and the width of upper bounds.
type Band struct {
	Hits, Seen int
	sumUpper   float64
	sumPoint   float64
}

func (b *Band) add(actual, point, upper float64) {
	b.Seen++
	if actual <= upper {
		b.Hits++
	}
	b.sumUpper += upper
	b.sumPoint += point
}

// Coverage is the share of actuals at or below their upper bound.
func (b Band) Coverage() float64 { return float64(b.Hits) / float64(b.Seen) }

// Width is the band's mean width relative to the point forecast:
// sum(upper - point) / sum(point).
func (b Band) Width() float64 { return (b.sumUpper - b.sumPoint) / b.sumPoint }

// EvalTrace runs a rolling-origin evaluation: it feeds the trace to a
// predictor.Online sample by sample and, at each origin, forecasts every
// step of the horizon, compared with seasonal naive on the daily and weekly
// periods, and the maximum over the horizon. Run time is bounded: only the
// last Weeks weeks are origins, and the forecaster sees at most 8 weeks of
// history before the first origin.
func EvalTrace(ctx context.Context, tr *trace.Trace, opts TraceOptions) (TraceReport, error) {
	var rep TraceReport
	if tr == nil || len(tr.Points) < 2 {
		return rep, errors.New("evaluating trace: fewer than two samples")
	}
	step := tr.Step
	if opts.Horizon < step {
		return rep, fmt.Errorf("evaluating trace: horizon %v shorter than step %v", opts.Horizon, step)
	}
	if opts.Weeks <= 0 {
		opts.Weeks = 4
	}
	if opts.Every <= 0 {
		opts.Every = time.Hour
	}
	if opts.Quantile <= 0 || opts.Quantile >= 1 {
		opts.Quantile = 0.95
	}
	day, week := int(24*time.Hour/step), int(7*24*time.Hour/step)
	hSteps := int(opts.Horizon / step)
	// A regular grid with NaN in the gaps.
	start := tr.Start()
	n := int(tr.Points[len(tr.Points)-1].At.Sub(start)/step) + 1
	grid := make([]float64, n)
	for i := range grid {
		grid[i] = math.NaN()
	}
	for _, p := range tr.Points {
		grid[int(p.At.Sub(start)/step)] = p.Value
	}
	first := max(n-hSteps-opts.Weeks*week, day)
	o := predictor.New(predictor.Options{Step: step, Quantile: opts.Quantile, RefitEvery: opts.RefitEvery})
	feedFrom := max(0, first-int(8*7*24*time.Hour/step))
	rep = TraceReport{Step: step, Horizon: opts.Horizon, Quantile: opts.Quantile, Models: []*Score{
		{Name: "tide"}, {Name: "seasonal-naive-daily"}, {Name: "seasonal-naive-weekly"},
	}}
	every := max(int(opts.Every/step), 1)
	fed := feedFrom
	for origin := first; origin+hSteps < n; origin += every {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("evaluating trace: %w", err)
		}
		for ; fed < origin; fed++ {
			if !math.IsNaN(grid[fed]) {
				o.Observe(start.Add(time.Duration(fed)*step), grid[fed])
			}
		}
		actual := grid[origin : origin+hSteps]
		if allNaN(actual) {
			continue
		}
		hist := grid[max(0, origin-4*week):origin]
		scale := maseScale(hist, day)
		now := start.Add(time.Duration(origin-1) * step)
		est, err := o.Forecast(now, opts.Horizon)
		if err != nil {
			rep.InsufficientHistory++
			continue
		}
		rep.Origins++
		point, upper, err := o.Steps(now, opts.Horizon)
		if err != nil {
			return rep, fmt.Errorf("evaluating trace: %w", err)
		}
		rep.Models[0].Add(actual, point, scale)
		rep.Models[0].AddUpper(actual, upper)
		rep.Models[1].Add(actual, naiveAt(grid, origin, day, hSteps), scale)
		rep.Models[2].Add(actual, naiveAt(grid, origin, week, hSteps), scale)
		hi := math.Inf(-1)
		for j, v := range actual {
			if !math.IsNaN(v) {
				hi = math.Max(hi, v)
				rep.PerStep.add(v, point[j], upper[j])
			}
		}
		rep.Window.add(hi, est.Point, est.Upper)
	}
	rep.ModelChanges = o.ModelChanges()
	if rep.Origins == 0 {
		return rep, fmt.Errorf("evaluating trace: no origin with history and actuals (%d samples, step %v)", len(tr.Points), step)
	}
	return rep, nil
}

// naiveAt is seasonal naive at origin: the values one period earlier (NaN
// where that was a gap).
func naiveAt(grid []float64, origin, period, h int) []float64 {
	f := make([]float64, h)
	for j := range f {
		i := origin + j - period*(1+j/period)
		f[j] = math.NaN()
		if i >= 0 {
			f[j] = grid[i]
		}
	}
	return f
}

func allNaN(v []float64) bool {
	for _, x := range v {
		if !math.IsNaN(x) {
			return false
		}
	}
	return true
}
