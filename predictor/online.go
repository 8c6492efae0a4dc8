package predictor

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Options configures an online forecaster.
type Options struct {
	// Step is the sample interval (1m, 1h, ...). Samples arrive at roughly
	// this step, with gaps; a sample is placed in the step nearest its time.
	Step time.Duration
	// Quantile is the upper quantile to report, default 0.95.
	Quantile float64
	// Periods are the seasonal periods, default one day and one week.
	Periods []time.Duration
	// ModelStep is the step of the seasonal model, a multiple of Step. It
	// defaults to Step, or to 15 minutes when Step is shorter, which keeps a
	// refit on weeks of minute data cheap; within a model step the seasonal
	// is interpolated.
	ModelStep time.Duration
	// Window is how much history is kept and fitted, default 8 weeks.
	Window time.Duration
	// RefitEvery is how much new data triggers a refit inside Observe,
	// default 6 hours. A negative value never refits inside Observe: the
	// caller then calls Refit, e.g. from a background goroutine.
	RefitEvery time.Duration
	// SelectEvery is how much new data there is between two choices of
	// the model among the candidates and of its smoothing parameters,
	// default one day. The refits in between keep both: they fit the
	// seasonal profiles again and replay the level and trend, a fraction
	// of the cost of a refit that chooses (see BenchmarkRefit8WeeksMinute).
	// A negative value chooses at every refit.
	SelectEvery time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Step <= 0 {
		return o, fmt.Errorf("predictor: step %v must be positive", o.Step)
	}
	if o.Quantile <= 0 || o.Quantile >= 1 {
		o.Quantile = 0.95
	}
	if len(o.Periods) == 0 {
		o.Periods = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	}
	if o.ModelStep <= 0 {
		o.ModelStep = o.Step
		if o.Step < 15*time.Minute {
			o.ModelStep = 15 * time.Minute
		}
	}
	if k := (o.ModelStep + o.Step/2) / o.Step; k < 1 {
		o.ModelStep = o.Step
	} else {
		o.ModelStep = k * o.Step
	}
	if o.Window <= 0 {
		o.Window = 8 * 7 * 24 * time.Hour
	}
	if o.RefitEvery == 0 {
		o.RefitEvery = 6 * time.Hour
	}
	if o.SelectEvery == 0 {
		o.SelectEvery = 24 * time.Hour
	}
	return o, nil
}

// leads are the forecast leads, in steps, whose errors the forecaster
// tracks to calibrate its upper quantile.
var leads = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}

const (
	minErrs     = 50 // errors needed before a lead's quantile is trusted
	shiftRun    = 3  // consecutive large same-sign errors that move the level
	shiftSigmas = 4.0
)

// Online is a forecaster fed one sample at a time. Observe costs amortised
// O(1): it stores the sample, updates the level (with a level-shift
// detector that follows a step change within a few samples) and tracks
// forecast errors; every RefitEvery of new data it refits the seasonal
// model synchronously on at most Window of history, a bounded cost (see
// BenchmarkRefit8WeeksMinute). With RefitEvery < 0 the caller runs Refit
// itself. Online is safe for concurrent use.
type Online struct {
	opts    Options
	k       int64 // steps per model step
	periods []int // in model steps
	w       int64 // ring length in steps

	mu         sync.Mutex
	vals       []float64
	has        []bool
	started    bool
	first      int64 // oldest step index seen (within the window)
	newest     int64
	sinceRefit int64 // steps of data since the last refit
	refitting  bool
	refits     int
	changes    int     // refits that changed the model
	sel        *choice // the model last chosen
	selAt      int64   // newest step index when it was chosen
	cands      []spec  // the candidates chosen from (onlineCandidates)
	// scratch is the working arrays of the refit in progress: used
	// without the lock, by the one Refit that set refitting.
	scratch scratch

	fit   *onlineFit
	level float64 // in model space
	trend float64
	last  int64   // step index the level refers to
	run   int     // consecutive large errors of the same sign
	runE  float64 // their sum
	hist  [512]state
	errs  []conformalBound // per lead, the bound of the signed errors
	err   error

	// Window-maximum calibration (see windowTrack).
	wins    []windowTrack
	pathBuf []float64 // scratch for trackWindows
	scale   float64   // smoothed absolute one-step error, value space
}

type state struct {
	idx          int64
	level, trend float64
}

// onlineFit is the seasonal model of one refit.
type onlineFit struct {
	spec     spec
	m        *model
	cb0      int64   // coarse index of the fitted series' first value
	logFloor float64 // values are floored here before the log
	sigma    float64 // robust scale of one-step errors, model space
	fallback float64 // margin used while too few errors are tracked (0 once every lead has enough: unused)

	// Powers of the damping the per-sample paths use, computed once per
	// fit exactly as they would be per call.
	damp  []float64 // damp[d] = phi^(d/k), the damping after d steps
	alpha float64   // the level's smoothing per step: 1 - (1-alpha)^(1/k)
	r     float64   // phi^(1/k), the damping per step

	// The seasonal at the step indices asked for lately: each sample asks
	// for the same few, and the window tracker for the next h again and
	// again. Read and written with Online.mu held, once installed.
	seas []seasEntry
}

type seasEntry struct {
	i  int64
	v  float64
	ok bool
}

// seasCacheLen is a power of two above the longest tracked window.
const seasCacheLen = 512

// seasonalAt is seasonal(i, k), from the cache when there.
func (f *onlineFit) seasonalAt(i, k int64) float64 {
	if f.seas == nil {
		return f.seasonal(i, k)
	}
	e := &f.seas[i&(seasCacheLen-1)]
	if !e.ok || e.i != i {
		*e = seasEntry{i: i, v: f.seasonal(i, k), ok: true}
	}
	return e.v
}

// dampLen covers the steps between a level and the forecasts made from it
// in Observe and in forecasts of a few hours.
const dampLen = 1024

// prepare computes the fit's powers for k steps per model step; damp is
// filled as asked for.
func (f *onlineFit) prepare(k int64) {
	phi := f.m.ets.phi
	f.damp = make([]float64, dampLen)
	for d := range f.damp {
		f.damp[d] = math.NaN()
	}
	f.alpha = 1 - math.Pow(1-f.m.ets.alpha, 1/float64(k))
	f.r = math.Pow(phi, 1/float64(k))
	f.seas = make([]seasEntry, seasCacheLen)
}

// dampAfter is phi^(d/k). Once the fit is installed, Online.mu is held.
func (f *onlineFit) dampAfter(d, k int64) float64 {
	if d < 0 || d >= int64(len(f.damp)) {
		return math.Pow(f.m.ets.phi, float64(d)/float64(k))
	}
	p := f.damp[d]
	if p != p {
		p = math.Pow(f.m.ets.phi, float64(d)/float64(k))
		f.damp[d] = p
	}
	return p
}

// New returns an online forecaster. An invalid Step makes every Forecast
// fail with the reason.
func New(opts Options) *Online {
	o, err := opts.withDefaults()
	f := &Online{opts: o, err: err, errs: make([]conformalBound, len(leads)), cands: onlineCandidates}
	if err != nil {
		return f
	}
	f.k = int64(o.ModelStep / o.Step)
	f.w = max(int64(o.Window/o.Step), 1)
	for _, p := range o.Periods {
		if n := int(p / o.ModelStep); n >= 2 {
			f.periods = append(f.periods, n)
		}
	}
	f.vals = make([]float64, f.w)
	f.has = make([]bool, f.w)
	alpha := 1 - o.Quantile
	for i := range f.errs {
		f.errs[i] = newConformalBound(alpha)
	}
	for _, h := range windowLeads {
		f.wins = append(f.wins, windowTrack{h: int64(h), stride: int64(max(1, h/8)), scores: newConformalBound(alpha)})
	}
	return f
}

func (o *Online) index(t time.Time) int64 {
	ns, st := t.UnixNano(), int64(o.opts.Step)
	return floorDiv(ns+st/2, st)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (o *Online) slot(i int64) int64 { return ((i % o.w) + o.w) % o.w }

// Observe records the value at the given time. Duplicates overwrite, late
// samples within the window fill history for the next refit (without moving
// the level), samples older than the window are dropped. NaN and infinite
// values are ignored.
func (o *Online) Observe(at time.Time, value float64) {
	if o.err != nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	o.mu.Lock()
	i := o.index(at)
	switch {
	case !o.started:
		o.started, o.first, o.newest = true, i, i
	case i > o.newest:
		for j := o.newest + 1; j < i && j <= o.newest+o.w; j++ {
			o.has[o.slot(j)] = false
		}
		o.sinceRefit += i - o.newest
		o.newest = i
		if o.first < o.newest-o.w+1 {
			o.first = o.newest - o.w + 1
		}
	case i <= o.newest-o.w:
		o.mu.Unlock()
		return
	case i < o.first:
		for j := i + 1; j < o.first; j++ {
			o.has[o.slot(j)] = false
		}
		o.first = i
	}
	o.vals[o.slot(i)], o.has[o.slot(i)] = value, true
	if o.fit != nil && i > o.last {
		o.update(i, value)
	}
	due := o.opts.RefitEvery > 0 && !o.refitting &&
		(o.fit == nil || o.sinceRefit*int64(o.opts.Step) >= int64(o.opts.RefitEvery)) &&
		o.historySteps() >= o.minHistory()
	if !due {
		o.mu.Unlock()
		return
	}
	o.mu.Unlock()
	o.Refit()
}

func (o *Online) historySteps() int64 {
	if !o.started {
		return 0
	}
	return o.newest - o.first + 1
}

// minHistory is one season of the shortest period, in steps.
func (o *Online) minHistory() int64 {
	p := 24 * time.Hour
	if len(o.opts.Periods) > 0 {
		p = o.opts.Periods[0]
		for _, q := range o.opts.Periods {
			p = min(p, q)
		}
	}
	return max(int64(p/o.opts.Step), 2)
}

// Refits returns how many refits have run.
func (o *Online) Refits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refits
}

// ModelChanges returns how many refits have changed the model (a choice
// among the candidates that differed from the model in use).
func (o *Online) ModelChanges() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changes
}

// Refit fits the seasonal model again on the history kept. It holds the
// lock only to copy the history and to install the result, so that Observe
// and Forecast proceed meanwhile. It returns ErrInsufficientHistory with
// less than one season of history.
func (o *Online) Refit() error {
	if o.err != nil {
		return o.err
	}
	o.mu.Lock()
	if o.historySteps() < o.minHistory() {
		o.mu.Unlock()
		return ErrInsufficientHistory
	}
	if o.refitting {
		o.mu.Unlock()
		return nil
	}
	o.refitting = true
	cb0 := floorDiv(o.first, o.k)
	cb1 := floorDiv(o.newest, o.k)
	coarse := make([]float64, cb1-cb0+1)
	cnt := make([]int, len(coarse))
	// Walk the ring from the oldest sample: s is i's slot, b its model
	// step's index in coarse and r its place in that model step.
	s, b, r := o.slot(o.first), 0, o.first-cb0*o.k
	for i := o.first; i <= o.newest; i++ {
		if o.has[s] {
			coarse[b] += o.vals[s]
			cnt[b]++
		}
		if s++; s == o.w {
			s = 0
		}
		if r++; r == o.k {
			r, b = 0, b+1
		}
	}
	// The last two days of raw samples, to size the error fallback.
	rs := max(o.first, o.newest-int64(48*time.Hour/o.opts.Step))
	recent := make([]sample, 0, o.newest-rs+1)
	for i := rs; i <= o.newest; i++ {
		if s := o.slot(i); o.has[s] {
			recent = append(recent, sample{i, o.vals[s]})
		}
	}
	newest := o.newest
	// The errors tracked per lead only grow in number: once every lead has
	// enough, the fallback margin is never used again.
	fallback := false
	for li := range o.errs {
		fallback = fallback || o.errs[li].len() < minErrs
	}
	prev, last := o.sel, o.sel
	if prev != nil && (o.opts.SelectEvery < 0 || (newest-o.selAt)*int64(o.opts.Step) >= int64(o.opts.SelectEvery)) {
		prev = nil
	}
	o.mu.Unlock()

	fit, sel := o.fitCoarse(coarse, cnt, cb0, recent, prev, last, fallback)

	o.mu.Lock()
	defer o.mu.Unlock()
	o.refitting = false
	o.refits++
	if o.fit != nil && o.fit.spec != fit.spec {
		o.forgetModelStates()
		o.changes++
	}
	if sel != prev {
		o.sel, o.selAt = sel, newest
	}
	o.sinceRefit = o.newest - newest
	o.fit = fit
	o.level, o.trend, o.last = fit.m.ets.level, fit.m.ets.trend, newest
	o.run, o.runE = 0, 0
	for i := newest + 1; i <= o.newest; i++ {
		if s := o.slot(i); o.has[s] {
			o.update(i, o.vals[s])
		}
	}
	return nil
}

// forgetModelStates drops what Observe would measure errors from that the
// previous model forecast: the states the per-lead errors are measured
// from (hist) and the windows still open. Resolved against the new model
// they compared one model's level with another's seasonal, on another
// scale when one of them is on logs: on the app-server trace (hourly, the
// model changing at 60% of the daily choices) these errors had widened
// the per-step band threefold (0.31 of the point where 0.11 covers 0.94).
// The errors already resolved stay: they are each model's own, and a band
// from an empty ring (kept per model, tried) came out wider, not better
// covered. o.mu is held.
func (o *Online) forgetModelStates() {
	for wi := range o.wins {
		o.wins[wi].pend = o.wins[wi].pend[:0]
	}
	for i := range o.hist {
		o.hist[i].idx = math.MinInt64
	}
}

// choice is a model chosen by validation, kept between choices.
type choice struct {
	sel selection
	ets holt // the smoothing parameters chosen with it
}

type sample struct {
	idx int64
	v   float64
}

// fitCoarse imputes the missing model steps, chooses the model (or keeps
// prev, when not nil and still applicable) and fits it. It returns the fit
// and the choice. The fallback margin is computed only when asked for.
func (o *Online) fitCoarse(coarse []float64, cnt []int, cb0 int64, recent []sample, prev, last *choice, fallback bool) (*onlineFit, *choice) {
	p0 := 1
	if len(o.periods) > 0 {
		p0 = o.periods[0]
	}
	lastOK := -1
	w0 := make([]float64, len(coarse))
	for b := range coarse {
		switch {
		case cnt[b] > 0:
			coarse[b] /= float64(cnt[b])
			lastOK = b
			w0[b] = 1
		case b >= p0:
			coarse[b] = coarse[b-p0]
		case lastOK >= 0:
			coarse[b] = coarse[lastOK]
		}
	}
	hv := max(2, p0)
	ch := prev
	if ch != nil && !ch.sel.spec.applicable(coarse) {
		ch = nil
	}
	var keep *holt
	if ch != nil {
		keep = &ch.ets
	} else {
		var inc *spec
		if last != nil {
			inc = &last.sel.spec
		}
		ch = &choice{sel: selectFrom(o.cands, coarse, o.periods, hv, w0, &o.scratch, inc, switchMargin)}
	}
	sel := &ch.sel
	f := &onlineFit{spec: sel.spec, cb0: cb0}
	y := coarse
	if sel.spec.log {
		f.logFloor = math.Inf(1)
		for _, v := range coarse {
			f.logFloor = math.Min(f.logFloor, v)
		}
		f.logFloor /= 2
	}
	f.m = sel.spec.fitWith(y, o.periods, w0, keep, &o.scratch, 0)
	if keep == nil {
		ch.ets = f.m.ets
	}
	// Robust scale of raw samples around the fitted model (model space),
	// and a fallback margin (value space) from those residuals and the
	// validation errors.
	abs, res := make([]float64, 0, len(recent)), []float64(nil)
	if fallback {
		res = make([]float64, 0, len(recent))
	}
	for _, s := range recent {
		b := floorDiv(s.idx, o.k) - cb0
		if b < 0 || int(b) >= len(f.m.dec.adjusted) {
			continue
		}
		z := f.toModel(s.v)
		fz := f.m.dec.adjusted[b] + f.seasonal(s.idx, o.k)
		r := z - fz
		abs = append(abs, math.Abs(r))
		if fallback {
			res = append(res, s.v-f.fromModel(fz))
		}
	}
	if len(abs) > 0 {
		f.sigma = 1.48 * median(abs)
	}
	if s := f.m.ets.oneStepScale(f.m.dec.adjusted); s > f.sigma {
		f.sigma = s
	}
	if len(res) > 0 {
		f.fallback = math.Max(0, quantile(res, o.opts.Quantile))
	}
	if fallback && len(sel.errors) > 0 {
		e := append([]float64(nil), sel.errors...)
		f.fallback += math.Max(0, quantile(e, o.opts.Quantile))
	}
	f.prepare(o.k)
	return f, ch
}

// switchMargin is how much better (in validation MASE, relative) than the
// model in use a challenger must be to replace it at a daily choice. The
// choice is made on one day of validation: without a margin the model
// changed at 46% of the choices on the app-server trace (16 weeks), each
// change forgetting the states the errors are measured from. With 5%:
// 1072 -> 897 changes over the app-server trace's five years, 51 -> 39
// over 16 weeks, 23 -> 13 over NASA's two months; MASE 0.435 either way
// over five years, 0.469 both over the last year, NASA's July 0.535 ->
// 0.545 and its August 0.583 both; coverage within 0.001; 10% cut more
// changes but raised the app-server's last-year MASE to 0.474.
const switchMargin = 0.05

// onlineCandidates are the decomposition models using all periods, whose
// level can be updated sample by sample; few, to keep refits cheap.
var onlineCandidates = []spec{
	{name: "mstl+ets", dec: decays{0.3, 1}},
	{name: "mstl+ets", dec: decays{0.6, 1}},
	{name: "log-mstl+ets", log: true, dec: decays{0.6, 1}},
}

func (f *onlineFit) toModel(v float64) float64 {
	if !f.spec.log {
		return v
	}
	return math.Log(math.Max(v, f.logFloor))
}

func (f *onlineFit) fromModel(z float64) float64 {
	if !f.spec.log {
		return z
	}
	return math.Exp(z)
}

// seasonal interpolates the model-step seasonal at step index i.
func (f *onlineFit) seasonal(i, k int64) float64 {
	x := (float64(i) - float64(k-1)/2) / float64(k)
	b := math.Floor(x)
	fr := x - b
	rel := int(int64(b) - f.cb0)
	return (1-fr)*f.m.dec.seasonal(rel) + fr*f.m.dec.seasonal(rel+1)
}

// trendSum is the damped trend's contribution after d steps.
func (o *Online) trendSum(trend float64, d int64) float64 {
	phi := o.fit.m.ets.phi
	c := float64(d) / float64(o.k)
	if phi >= 1 {
		return trend * c
	}
	return trend * phi * (1 - o.fit.dampAfter(d, o.k)) / (1 - phi)
}

func (o *Online) predictFrom(s state, i int64) float64 {
	return o.fit.fromModel(s.level + o.trendSum(s.trend, i-s.idx) + o.fit.seasonalAt(i, o.k))
}

// update feeds an in-order sample at step i to the level and the error
// tracker. o.mu is held.
func (o *Online) update(i int64, v float64) {
	f := o.fit
	for li, l := range leads {
		h := o.hist[(i-int64(l))&511]
		if h.idx != i-int64(l) {
			continue
		}
		o.errs[li].add(v - o.predictFrom(h, i))
	}
	// The smoothed absolute one-step error scales the window scores.
	if i-o.last <= o.k {
		a := 1 / (scaleTau * float64(o.k))
		e1 := math.Abs(v - o.predictFrom(state{idx: o.last, level: o.level, trend: o.trend}, i))
		if o.scale == 0 {
			o.scale = e1
		}
		o.scale += a * (e1 - o.scale)
	}
	d := i - o.last
	o.level += o.trendSum(o.trend, d)
	o.trend *= f.dampAfter(d, o.k)
	o.last = i
	e := f.toModel(v) - (o.level + f.seasonalAt(i, o.k))
	alpha := f.alpha
	o.level += alpha * e
	// A run of large errors of one sign is a level shift: jump to it.
	if f.sigma > 0 && math.Abs(e) > shiftSigmas*f.sigma && (o.run == 0 || (e > 0) == (o.runE > 0)) {
		o.run++
		o.runE += e
		if o.run >= shiftRun {
			o.level += (1 - alpha) * o.runE / float64(o.run)
			o.run, o.runE = 0, 0
		}
	} else {
		o.run, o.runE = 0, 0
	}
	o.hist[i&511] = state{idx: i, level: o.level, trend: o.trend}
	o.trackWindows(i)
}

// margin is the amount to add to a point forecast d steps ahead to reach
// the upper quantile: the conformal bound of the errors tracked at the
// leads around d (see conformalBound), or the fit's fallback while they
// are too few. o.mu is held.
func (o *Online) margin(d int64) float64 {
	at := func(li int) float64 {
		if q, ok := o.errs[li].bound(); ok {
			return math.Max(0, q)
		}
		return o.fit.fallback
	}
	if d <= int64(leads[0]) {
		return at(0)
	}
	for j := 1; j < len(leads); j++ {
		if d <= int64(leads[j]) {
			// Interpolate in log lead between the tracked leads.
			fr := math.Log(float64(d)/float64(leads[j-1])) / math.Log(float64(leads[j])/float64(leads[j-1]))
			return (1-fr)*at(j-1) + fr*at(j)
		}
	}
	return at(len(leads) - 1)
}

// Forecast returns the highest point forecast over the steps in
// (now, now+horizon] and an upper bound of the highest load over those
// steps at the configured quantile. The bound is calibrated on the
// forecaster's own realised errors of the window maximum (see
// windowTrack); until enough are tracked it adds the per-step margins. With
// less than one season of history it returns ErrInsufficientHistory; the
// caller then scales reactively and says so.
func (o *Online) Forecast(now time.Time, horizon time.Duration) (Estimate, error) {
	if err := o.ensureFit(); err != nil {
		return Estimate{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.index(now)
	steps := max(int64(horizon/o.opts.Step), 1)
	s := state{idx: o.last, level: o.level, trend: o.trend}
	est := Estimate{Point: math.Inf(-1), Upper: math.Inf(-1), Quantile: o.opts.Quantile, Horizon: horizon, Model: o.fit.spec.name}
	est.Point = o.pathMax(s, n, n+steps)
	// The window is measured from the last sample: a forecast made later
	// than it covers (last, now+horizon], which holds (now, now+horizon].
	from := min(n, o.last)
	if q, ok := o.windowQuantile(n + steps - from); ok {
		full := o.pathMax(s, from, n+steps)
		est.Upper = math.Max(est.Point, full+q*o.bandScale(full))
		return est, nil
	}
	for i := n + 1; i <= n+steps; i++ {
		p := math.Max(o.predictFrom(s, i), 0)
		est.Upper = math.Max(est.Upper, p+o.margin(i-o.last))
	}
	est.Upper = math.Max(est.Upper, est.Point)
	return est, nil
}

// Steps returns the point forecast and the upper quantile of each step in
// (now, now+horizon], each calibrated on its own (a marginal bound per
// step, unlike Forecast's bound of the maximum).
func (o *Online) Steps(now time.Time, horizon time.Duration) (point, upper []float64, err error) {
	if err := o.ensureFit(); err != nil {
		return nil, nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.index(now)
	steps := max(int64(horizon/o.opts.Step), 1)
	point, upper = make([]float64, steps), make([]float64, steps)
	for j := range point {
		point[j], upper[j] = o.step(n + 1 + int64(j))
	}
	return point, upper, nil
}

// step is the point forecast and the upper quantile of step index i, as
// Steps gives them. o.mu is held.
func (o *Online) step(i int64) (point, upper float64) {
	s := state{idx: o.last, level: o.level, trend: o.trend}
	point = math.Max(o.predictFrom(s, i), 0)
	return point, point + o.margin(i-o.last)
}

// ensureFit fits the model on first use once there is enough history.
func (o *Online) ensureFit() error {
	if o.err != nil {
		return o.err
	}
	o.mu.Lock()
	fitted, enough := o.fit != nil, o.historySteps() >= o.minHistory()
	o.mu.Unlock()
	switch {
	case fitted:
		return nil
	case !enough:
		return ErrInsufficientHistory
	}
	return o.Refit()
}

// ForecastAfter is Forecast restricted to the steps in
// (now+lead, now+horizon]: the load that hosts asked for now will serve
// once ready. Its Upper is the highest per-step upper quantile over those
// steps (as Steps), which bounds their maximum at the quantile when the
// window is one step (lead + one decision interval) and a little less
// tightly for longer windows. A lead at or beyond the horizon is taken as
// the last step.
func (o *Online) ForecastAfter(now time.Time, lead, horizon time.Duration) (Estimate, error) {
	if err := o.ensureFit(); err != nil {
		return Estimate{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.index(now)
	steps := max(int64(horizon/o.opts.Step), 1)
	skip := min(max(int64(lead/o.opts.Step), 0), steps-1)
	est := Estimate{Point: math.Inf(-1), Upper: math.Inf(-1), Quantile: o.opts.Quantile, Horizon: horizon, Model: o.fit.spec.name}
	// Only the steps after the lead: the errors of the shorter leads are
	// not sorted for nothing.
	for j := skip; j < steps; j++ {
		p, u := o.step(n + 1 + j)
		est.Point = math.Max(est.Point, p)
		est.Upper = math.Max(est.Upper, u)
	}
	return est, nil
}
