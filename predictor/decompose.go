package predictor

import (
	"math"
	"slices"
	"sort"
)

// decomposition is an MSTL-style split of a series into one seasonal profile
// per period and a seasonally adjusted rest (level, trend and remainder).
type decomposition struct {
	periods  []int
	profiles [][]float64 // profiles[k][i%periods[k]] is the seasonal of index i
	adjusted []float64   // y minus all seasonals
}

// scratch holds the working arrays of fits, so that a caller that fits
// again and again (Online's refits) reuses them instead of allocating
// them each time. A scratch is used by one fit at a time.
type scratch struct {
	seas             [][]float64
	x, det, w, cs, z []float64
	abs              []float64
	valid            []bool
}

// grow returns buf resliced to n values, reallocated with room to spare
// when too short (histories grow refit after refit).
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n, n+n/4)
	}
	return (*buf)[:n]
}

// seasonal returns the sum of the seasonal profiles at absolute index i.
func (d *decomposition) seasonal(i int) float64 {
	s := 0.0
	for k, p := range d.periods {
		s += d.profiles[k][((i%p)+p)%p]
	}
	return s
}

// decays gives the per-cycle weight decay of the seasonal profiles: the
// shortest period uses Short, longer ones Long. Recent cycles weigh more so
// that a profile follows changes of shape; a decay near 1 averages more
// cycles and so more noise out.
type decays struct{ Short, Long float64 }

func (d decays) of(k int) float64 {
	if k == 0 {
		return d.Short
	}
	return d.Long
}

// usablePeriods keeps the periods with at least two full cycles in n values,
// sorted ascending and deduplicated.
func usablePeriods(periods []int, n int) []int {
	var out []int
	for _, p := range periods {
		if p >= 2 && n >= 2*p && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// decompose estimates seasonal profiles for the usable periods of y by
// iterating, per period, a centred moving average to remove the trend and
// recency-weighted per-phase means of the detrended values. Two outer
// passes derive bisquare robustness weights from the remainder, so that
// outliers do not bend the profiles.
//
// w0, if not nil, gives prior weights per value (0 for imputed values).
//
// sc, if not nil, provides the working arrays.
func decompose(y []float64, periods []int, dec decays, w0 []float64, sc *scratch) decomposition {
	n := len(y)
	d := decomposition{periods: usablePeriods(periods, n)}
	if sc == nil {
		sc = new(scratch)
	}
	weights := grow(&sc.w, n)
	for i := range weights {
		weights[i] = 1
		if w0 != nil {
			weights[i] = w0[i]
		}
	}
	for len(sc.seas) < len(d.periods) {
		sc.seas = append(sc.seas, nil)
	}
	seas := sc.seas[:len(d.periods)]
	for k := range seas {
		seas[k] = grow(&seas[k], n)
		clear(seas[k])
	}
	d.profiles = make([][]float64, len(d.periods))
	x := grow(&sc.x, n)
	det := grow(&sc.det, n)
	valid := grow(&sc.valid, n)
	cs := grow(&sc.cs, n+1)
	for outer := 0; outer < 2; outer++ {
		for inner := 0; inner < 2; inner++ {
			for k, p := range d.periods {
				copy(x, y)
				for k2 := range seas {
					if k2 != k {
						sub(x, seas[k2])
					}
				}
				centredMA(x, p, det, valid, cs)
				extendEnds(det, valid)
				for i := range det {
					if valid[i] {
						det[i] = x[i] - det[i]
					}
				}
				prof := phaseMeans(det, valid, weights, p, dec.of(k))
				// Keep the periods apart: a long period that is a multiple
				// of a shorter one must not carry the shorter one's shape.
				for _, q := range d.periods[:k] {
					if p%q == 0 {
						removeSubperiod(prof, q)
					}
				}
				d.profiles[k] = prof
				tile(seas[k], prof)
			}
		}
		if outer == 1 || len(d.periods) == 0 {
			break
		}
		// Robustness weights from the remainder around a moving-average trend.
		copy(x, y)
		for k := range seas {
			sub(x, seas[k])
		}
		centredMA(x, d.periods[0], det, valid, cs)
		abs := sc.abs[:0]
		for i := range x {
			if valid[i] {
				det[i] = x[i] - det[i]
				abs = append(abs, math.Abs(det[i]))
			}
		}
		sc.abs = abs
		if len(abs) == 0 {
			break
		}
		h := 6 * median(abs)
		if h == 0 {
			break
		}
		for i := range weights {
			if !valid[i] {
				continue
			}
			u := det[i] / h
			if u >= 1 || u <= -1 {
				weights[i] = 0
			} else {
				weights[i] = (1 - u*u) * (1 - u*u)
			}
			if w0 != nil {
				weights[i] *= w0[i]
			}
		}
	}
	// adjusted = y - (0 + seas[0] + seas[1] + ...): the seasonal summed in
	// the order seasonal sums it.
	d.adjusted = make([]float64, n)
	for k := range seas {
		add(d.adjusted, seas[k])
	}
	for i := range y {
		d.adjusted[i] = y[i] - d.adjusted[i]
	}
	return d
}

// sub subtracts b from a, element by element.
func sub(a, b []float64) {
	b = b[:len(a)]
	for i := range a {
		a[i] -= b[i]
	}
}

// add adds b to a, element by element.
func add(a, b []float64) {
	b = b[:len(a)]
	for i := range a {
		a[i] += b[i]
	}
}

// tile fills dst with repeats of prof: dst[i] = prof[i%len(prof)].
func tile(dst, prof []float64) {
	for i := 0; i < len(dst); i += len(prof) {
		copy(dst[i:], prof)
	}
}

// centredMA writes into out the centred moving average of x with window p
// (a 2xp average when p is even) and marks in valid the indices where the
// full window fits. cs is scratch space for len(x)+1 values.
func centredMA(x []float64, p int, out []float64, valid []bool, cs []float64) {
	n := len(x)
	clear(valid)
	cs = cs[:n+1]
	cs[0] = 0
	for i, v := range x {
		cs[i+1] = cs[i] + v
	}
	if p%2 == 1 {
		h := p / 2
		for i := h; i < n-h; i++ {
			out[i] = (cs[i+h+1] - cs[i-h]) / float64(p)
			valid[i] = true
		}
		return
	}
	h := p / 2
	for i := h; i < n-h; i++ {
		// Average of the windows [i-h, i+h) and [i-h+1, i+h].
		a := cs[i+h] - cs[i-h]
		b := cs[i+h+1] - cs[i-h+1]
		out[i] = (a + b) / float64(2*p)
		valid[i] = true
	}
}

// extendEnds fills the half windows at both ends of a centred moving
// average with the nearest full-window value and marks them valid, so that
// the most recent values take part in the seasonal profile.
func extendEnds(ma []float64, valid []bool) {
	first, last := -1, -1
	for i, ok := range valid {
		if ok {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return
	}
	for i := 0; i < first; i++ {
		ma[i], valid[i] = ma[first], true
	}
	for i := last + 1; i < len(ma); i++ {
		ma[i], valid[i] = ma[last], true
	}
}

// phaseMeans returns, for each phase of period p, the weighted mean of the
// valid values of det at that phase, where a value's weight is its robustness
// weight times decay^(cycles before the end). The profile is centred to sum
// to zero.
func phaseMeans(det []float64, valid []bool, w []float64, p int, decay float64) []float64 {
	n := len(det)
	sum := make([]float64, p)
	wt := make([]float64, p)
	cycleW := 1.0
	// From the end backwards: ph is i%p, c counts the values since the
	// last cycle boundary (n-1-i modulo p).
	ph, c := 0, 0
	if n > 0 {
		ph = (n - 1) % p
	}
	for i := n - 1; i >= 0; i-- {
		if c == p {
			c = 0
			cycleW *= decay
		}
		if valid[i] {
			cw := w[i] * cycleW
			sum[ph] += cw * det[i]
			wt[ph] += cw
		}
		c++
		if ph--; ph < 0 {
			ph = p - 1
		}
	}
	prof := make([]float64, p)
	mean := 0.0
	for j := range prof {
		if wt[j] > 0 {
			prof[j] = sum[j] / wt[j]
		}
		mean += prof[j]
	}
	mean /= float64(p)
	for j := range prof {
		prof[j] -= mean
	}
	return prof
}

// removeSubperiod subtracts from prof (of a period that is a multiple of q)
// its mean shape with period q.
func removeSubperiod(prof []float64, q int) {
	m := make([]float64, q)
	for j := 0; j < len(prof); j += q {
		add(m, prof[j:j+q])
	}
	c := float64(len(prof) / q)
	for j := 0; j < len(prof); j += q {
		seg := prof[j : j+q]
		for i := range seg {
			seg[i] -= m[i] / c
		}
	}
}

// median returns the median of v, reordering v.
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	m := n / 2
	if !selectRank(v, m) {
		sort.Float64s(v)
		if n%2 == 1 {
			return v[m]
		}
		return (v[m-1] + v[m]) / 2
	}
	if n%2 == 1 {
		return v[m]
	}
	// v[:m] holds the m lowest values: the highest of them is next below.
	lo := v[0]
	for _, x := range v[1:m] {
		lo = math.Max(lo, x)
	}
	return (lo + v[m]) / 2
}

// selectRank reorders v so that v[k] is the value of rank k (0 the lowest),
// with no higher value before it and no lower value after it, in expected
// linear time. It reports false, leaving v in some order, when v holds NaN
// or the partitioning degenerates; the caller then sorts.
func selectRank(v []float64, k int) bool {
	for _, x := range v {
		if x != x {
			return false
		}
	}
	lo, hi := 0, len(v)-1
	for budget := 64; lo < hi; budget-- {
		if budget == 0 {
			return false
		}
		// Median of three as the pivot, then a Hoare partition.
		mid := int(uint(lo+hi) >> 1)
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for pivot < v[j] {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		// Now v[lo..j] <= pivot <= v[i..hi], and v[j+1..i-1] == pivot.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return true
		}
	}
	return true
}
