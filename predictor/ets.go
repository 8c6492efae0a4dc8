package predictor

import "math"

// holt is additive damped-trend exponential smoothing, ETS(A,Ad,N), used on
// seasonally adjusted data.
type holt struct {
	alpha, beta, phi float64
	level, trend     float64
}

// forecast returns the k-step-ahead forecast (k >= 1).
func (h holt) forecast(k int) float64 {
	s, f := 0.0, 1.0
	for i := 0; i < k; i++ {
		f *= h.phi
		s += f
	}
	return h.level + s*h.trend
}

// update feeds one observation.
func (h *holt) update(x float64) {
	pred := h.level + h.phi*h.trend
	e := x - pred
	newLevel := pred + h.alpha*e
	h.trend = h.phi*h.trend + h.beta*h.alpha*e
	h.level = newLevel
}

// run smooths x from the given start state and returns the sum of
// squared one-step errors after a burn-in, with errors clipped at clip (a
// Huber-like loss that keeps outliers from choosing the parameters).
func (h *holt) run(x []float64, burn int, clip float64) float64 {
	sse := 0.0
	for i, v := range x {
		pred := h.level + h.phi*h.trend
		e := v - pred
		if i >= burn {
			a := math.Abs(e)
			if a > clip {
				sse += clip * (2*a - clip)
			} else {
				sse += e * e
			}
		}
		h.level = pred + h.alpha*e
		h.trend = h.phi*h.trend + h.beta*h.alpha*e
	}
	return sse
}

const holtFitLen = 1000

var (
	holtAlphas = []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9}
	holtBetas  = []float64{0, 0.02, 0.1}
	holtPhis   = []float64{0.8, 0.9, 0.95}
)

// fitHolt chooses the smoothing parameters on a small grid by the robust
// one-step loss and returns the model with its state after the last value.
func fitHolt(x []float64) holt {
	if len(x) == 0 {
		return holt{phi: 0.9}
	}
	// The parameters are chosen on the last holtFitLen values only, which
	// bounds the cost on long histories.
	x = x[max(0, len(x)-holtFitLen):]
	level0 := x[0]
	// Scale for the Huber clip: median absolute first difference.
	d := make([]float64, 0, len(x))
	for i := 1; i < len(x); i++ {
		d = append(d, math.Abs(x[i]-x[i-1]))
	}
	clip := math.Inf(1)
	if len(d) > 0 {
		if m := median(d); m > 0 {
			clip = 3 * 1.48 * m
		}
	}
	burn := min(len(x)/10, 24)
	best := holt{alpha: 0.5, phi: 0.9, level: level0}
	bestLoss := math.Inf(1)
	for _, a := range holtAlphas {
		for _, b := range holtBetas {
			for _, p := range holtPhis {
				h := holt{alpha: a, beta: b, phi: p, level: level0}
				if loss := h.run(x, burn, clip); loss < bestLoss {
					bestLoss = loss
					best = h
				}
			}
		}
	}
	return best
}

// oneStepScale replays the model on x and returns a robust scale (1.48
// times the median absolute value) of its one-step errors over the last
// quarter of x.
func (h holt) oneStepScale(x []float64) float64 {
	if len(x) < 8 {
		return 0
	}
	r := holt{alpha: h.alpha, beta: h.beta, phi: h.phi, level: x[0]}
	from := len(x) - len(x)/4
	abs := make([]float64, 0, len(x)-from)
	for i, v := range x {
		e := v - (r.level + r.phi*r.trend)
		if i >= from {
			abs = append(abs, math.Abs(e))
		}
		r.update(v)
	}
	return 1.48 * median(abs)
}
