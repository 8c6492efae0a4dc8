package predictor

import "math"

// errCap is the number of scores (forecast errors, scaled or not) kept per
// tracked lead or window.
const errCap = 2048

// missShare is the share of the nominal miss rate (1 - quantile) that the
// bounds aim at: p95 bounds are set at the 96th percentile of past errors.
//
// Conformal bounds assume the next error is exchangeable with the past
// ones. Forecast errors are not: the series drift, the model changes at
// refits, and a new regime (a surge, a drop in load) brings errors the
// past never held. On the parts of the traces used to choose it (the
// app-server trace's year to March 2019, the NASA trace's July), bounds
// aimed at the nominal rate covered 0.949 and 0.944 per step and 0.954
// and 0.938 of window maxima; aimed at 0.8 of it, 0.959 and 0.955 per
// step, 0.963 and 0.948 of window maxima, for bands 14% and 9% wider.
//
// Adapting the level to the misses seen instead (adaptive conformal
// inference, Gibbs and Candès 2021: a <- a + gamma*(alpha - miss)) did
// worse on the same data: symmetric, it narrowed the bands in calm weeks
// just before the surges (p95 coverage per step 0.943 and 0.939 with
// gamma 0.02); kept from narrowing below the nominal level, it covered
// 0.97 for bands wider than the fixed share's.
const missShare = 0.8

// conformalBound is the upper bound of the next score from the scores
// held: their empirical quantile at the finite-sample conformal level
// (n+1)(1-a)/n, a = missShare*alpha, computed again after boundRefresh
// new scores.
type conformalBound struct {
	scores rankedRing // the last errCap scores
	alpha  float64    // the nominal miss rate
	q      float64    // cached bound
	qN     int        // scores.n when q was computed
	qOK    bool
}

// boundRefresh is how many new scores make the cached bound stale: a
// quantile read walks the ring's sorted blocks, which per sample of every
// tracked lead would cost more than the rest of Observe.
const boundRefresh = 16

func newConformalBound(alpha float64) conformalBound {
	return conformalBound{scores: newRankedRing(errCap), alpha: alpha}
}

// level is the quantile of n scores that bounds the next one at the miss
// rate aimed at.
func conformalLevel(alpha float64, n int) float64 {
	return math.Min(1, (1-missShare*alpha)*(1+1/float64(n)))
}

// bound returns the upper bound of the next score; ok is false while
// fewer than minErrs scores are held.
func (c *conformalBound) bound() (q float64, ok bool) {
	n := c.scores.len()
	if n < minErrs {
		return 0, false
	}
	if !c.qOK || c.scores.n-c.qN >= boundRefresh {
		c.q = c.scores.quantile(conformalLevel(c.alpha, n))
		c.qN, c.qOK = c.scores.n, true
	}
	return c.q, true
}

// add records score s.
func (c *conformalBound) add(s float64) { c.scores.push(s) }

// len is the number of scores held.
func (c *conformalBound) len() int { return c.scores.len() }
