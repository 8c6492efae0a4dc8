package predictor

import "math"

// windowLeads are the window lengths, in steps, whose window-maximum
// forecast errors Online tracks to calibrate Forecast's Upper.
var windowLeads = []int{1, 2, 4, 8, 16, 32, 64, 128}

// windowTrack calibrates the upper bound of the maximum load over the h
// steps after an origin, conformal-style: at every stride-th sample it
// records the forecast of that maximum (the highest point forecast over the
// window) and the scale at the time; once the window has passed it stores
// the realised score (actual maximum - predicted maximum) / scale. The
// upper bound of a new window is its predicted maximum plus the conformal
// bound of the last errCap scores (see conformalBound) times the current
// scale.
type windowTrack struct {
	h, stride int64
	pend      []pendingMax   // origins in increasing order
	scores    conformalBound // the bound of the scores
}

type pendingMax struct {
	origin int64
	pred   float64 // predicted maximum over (origin, origin+h]
	scale  float64
}

// scaleTau is the time constant, in model steps, of the smoothed absolute
// one-step error that scales window scores: an hour on minute data (model
// step 15 minutes), four hours on hourly data.
const scaleTau = 4

// bandScale is the scale of a window score at the time of its origin: the
// smoothed absolute one-step error, which follows day and night (quieter
// hours have smaller errors) and calm and busy periods, floored at a small
// share of the predicted maximum so that a flat stretch does not make the
// band vanish. Scores relative to the predicted maximum, or to its square
// root, or not scaled at all, gave wider bands for the same coverage on
// the NASA and app-server traces.
func (o *Online) bandScale(pred float64) float64 {
	return math.Max(o.scale, 0.01*math.Abs(pred)) + 1e-9
}

// pathMax returns the highest model-space forecast from state s over the
// step indices (from, to], as a value.
func (o *Online) pathMax(s state, from, to int64) float64 {
	r := o.fit.r // per-step damping
	pw := math.Pow(r, float64(from-s.idx))
	hi := math.Inf(-1)
	for i := from + 1; i <= to; i++ {
		pw *= r
		hi = math.Max(hi, o.pathPoint(s, i, pw))
	}
	return math.Max(o.fit.fromModel(hi), 0)
}

// pathPoint is the model-space forecast from state s at step i; pw is
// r^(i-s.idx), the damping its callers carry along the path step by step.
func (o *Online) pathPoint(s state, i int64, pw float64) float64 {
	phi := o.fit.m.ets.phi
	var tr float64
	if phi >= 1 {
		tr = s.trend * float64(i-s.idx) / float64(o.k)
	} else {
		tr = s.trend * phi * (1 - pw) / (1 - phi)
	}
	return s.level + tr + o.fit.seasonalAt(i, o.k)
}

// pathPrefixMax is pathMax(s, s.idx, s.idx+j+1) for each j in out, in one
// pass: out[j] is the highest model-space forecast over the first j+1
// steps after s.idx (before fromModel and the floor at 0).
func (o *Online) pathPrefixMax(s state, out []float64) {
	r := o.fit.r
	pw := 1.0
	hi := math.Inf(-1)
	for j := range out {
		pw *= r
		hi = math.Max(hi, o.pathPoint(s, s.idx+1+int64(j), pw))
		out[j] = hi
	}
}

// trackWindows resolves the windows that end at or before step i and opens
// one starting at i where due. It runs after the level has taken the
// sample at i. o.mu is held.
func (o *Online) trackWindows(i int64) {
	s := state{idx: i, level: o.level, trend: o.trend}
	// The windows opening at i share the forecast path from i: its prefix
	// maxima give each one's predicted maximum.
	var hmax int64
	for wi := range o.wins {
		if w := &o.wins[wi]; i%w.stride == 0 {
			hmax = max(hmax, w.h)
		}
	}
	if int64(cap(o.pathBuf)) < hmax {
		o.pathBuf = make([]float64, hmax)
	}
	path := o.pathBuf[:hmax]
	o.pathPrefixMax(s, path)
	for wi := range o.wins {
		w := &o.wins[wi]
		done := 0
		for _, p := range w.pend {
			if p.origin+w.h > i {
				break
			}
			done++
			hi, cnt := math.Inf(-1), int64(0)
			sl := o.slot(p.origin + 1)
			for range w.h {
				if o.has[sl] {
					hi = math.Max(hi, o.vals[sl])
					cnt++
				}
				if sl++; sl == o.w {
					sl = 0
				}
			}
			// A window mostly in a gap says little about the maximum.
			if 2*cnt < w.h {
				continue
			}
			w.scores.add((hi - p.pred) / p.scale)
		}
		if done > 0 {
			w.pend = append(w.pend[:0], w.pend[done:]...)
		}
		if i%w.stride == 0 {
			pred := math.Max(o.fit.fromModel(path[w.h-1]), 0)
			w.pend = append(w.pend, pendingMax{origin: i, pred: pred, scale: o.bandScale(pred)})
		}
	}
}

// windowQuantile returns the calibrated score quantile for a window of h
// steps from the last sample, interpolated in log h between the tracked
// lengths; ok is false while too few scores are tracked. o.mu is held.
func (o *Online) windowQuantile(h int64) (q float64, ok bool) {
	at := func(wi int) (float64, bool) { return o.wins[wi].scores.bound() }
	if h <= o.wins[0].h {
		return at(0)
	}
	for j := 1; j < len(o.wins); j++ {
		if h <= o.wins[j].h {
			lo, ok1 := at(j - 1)
			hi, ok2 := at(j)
			if !ok1 || !ok2 {
				return 0, false
			}
			fr := math.Log(float64(h)/float64(o.wins[j-1].h)) / math.Log(float64(o.wins[j].h)/float64(o.wins[j-1].h))
			return (1-fr)*lo + fr*hi, true
		}
	}
	return at(len(o.wins) - 1)
}
