package predictor

import (
	"math"
	"slices"
)

// rankedRing keeps the last cap values pushed, both in arrival order (a
// ring) and sorted, so that any quantile of them is read without sorting.
// The sorted copy is a list of short sorted blocks: a push removes the
// oldest value from its block and inserts the new one into its block,
// moving at most a block's values, about 100 ns for 2048 values where
// sorting a copy for each quantile, as before, cost tens of microseconds.
//
// The sorted copy is built on the first quantile asked for and maintained
// from then on, so a ring whose quantiles nobody reads costs a store per
// push.
//
// NaN sorts before every number, as in sort.Float64s, so quantiles equal
// those of quantile on a copy of the same values.
type rankedRing struct {
	ring   []float64   // arrival order; ring[n%cap] is the oldest when full
	blocks [][]float64 // the same values but NaN, increasing; nil until asked for
	nans   int         // NaN values held, ranked before the others
	n      int         // values pushed in total
}

// rankBlock is the largest block; a block that grows past it splits in two.
const rankBlock = 64

func newRankedRing(capacity int) rankedRing {
	return rankedRing{ring: make([]float64, 0, capacity)}
}

// len is the number of values held.
func (r *rankedRing) len() int { return len(r.ring) }

// push adds v, dropping the oldest value once cap values are held.
func (r *rankedRing) push(v float64) {
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, v)
	} else {
		at := r.n % len(r.ring)
		old := r.ring[at]
		r.ring[at] = v
		if r.blocks != nil {
			if old != old {
				r.nans--
			} else {
				r.remove(old)
			}
		}
	}
	r.n++
	if r.blocks != nil {
		if v != v {
			r.nans++
		} else {
			r.insert(v)
		}
	}
}

// insert adds v to the sorted blocks.
func (r *rankedRing) insert(v float64) {
	if len(r.blocks) == 0 {
		r.blocks = append(r.blocks, make([]float64, 0, 2*rankBlock+rankBlock/4))
	}
	// The first block whose last value is above v, else the last block.
	j := 0
	for lo, hi := 0, len(r.blocks)-1; lo < hi; {
		m := int(uint(lo+hi) >> 1)
		if b := r.blocks[m]; b[len(b)-1] <= v {
			lo = m + 1
		} else {
			hi = m
		}
		j = lo
	}
	b := r.blocks[j]
	r.blocks[j] = slices.Insert(b, sortedUpper(b, v), v)
	r.split(j)
}

// remove drops one value equal to v (not NaN) from the sorted blocks; v is
// held.
func (r *rankedRing) remove(v float64) {
	// The first block whose last value is not below v.
	j := 0
	for lo, hi := 0, len(r.blocks)-1; lo < hi; {
		m := int(uint(lo+hi) >> 1)
		if b := r.blocks[m]; b[len(b)-1] < v {
			lo = m + 1
		} else {
			hi = m
		}
		j = lo
	}
	b := r.blocks[j]
	i := sortedLower(b, v)
	b = slices.Delete(b, i, i+1)
	r.blocks[j] = b
	if len(b) >= rankBlock/4 || len(r.blocks) == 1 {
		return
	}
	// Merge a small block into its neighbour, so that the blocks stay few.
	if j == len(r.blocks)-1 {
		j--
	}
	m := append(r.blocks[j], r.blocks[j+1]...)
	r.blocks = slices.Delete(r.blocks, j+1, j+2)
	r.blocks[j] = m
	r.split(j)
}

// split halves block j if it has grown past 2*rankBlock values.
func (r *rankedRing) split(j int) {
	b := r.blocks[j]
	if len(b) <= 2*rankBlock {
		return
	}
	h := len(b) / 2
	hiPart := make([]float64, len(b)-h, 2*rankBlock+rankBlock/4)
	copy(hiPart, b[h:])
	r.blocks[j] = b[:h]
	r.blocks = slices.Insert(r.blocks, j+1, hiPart)
}

// build sorts the values held into blocks.
func (r *rankedRing) build() {
	s := make([]float64, 0, len(r.ring))
	r.nans = 0
	for _, v := range r.ring {
		if v != v {
			r.nans++
		} else {
			s = append(s, v)
		}
	}
	slices.Sort(s)
	r.blocks = make([][]float64, 0, len(s)/rankBlock+1)
	for len(s) > 0 {
		k := min(len(s), rankBlock)
		b := make([]float64, k, 2*rankBlock+rankBlock/4)
		copy(b, s[:k])
		r.blocks = append(r.blocks, b)
		s = s[k:]
	}
	if len(r.blocks) == 0 {
		r.blocks = append(r.blocks, make([]float64, 0, 2*rankBlock+rankBlock/4))
	}
}

// at returns the value of rank k (0 the lowest).
func (r *rankedRing) at(k int) float64 {
	if k < r.nans {
		return math.NaN()
	}
	k -= r.nans
	for _, b := range r.blocks {
		if k < len(b) {
			return b[k]
		}
		k -= len(b)
	}
	return math.NaN()
}

// sorted returns the values held in increasing order (for tests).
func (r *rankedRing) sorted() []float64 {
	if r.blocks == nil {
		r.build()
	}
	s := make([]float64, r.nans)
	for i := range s {
		s[i] = math.NaN()
	}
	for _, b := range r.blocks {
		s = append(s, b...)
	}
	return s
}

// quantile is the q-quantile of the values held, interpolated as quantile
// does; NaN when empty.
func (r *rankedRing) quantile(q float64) float64 {
	n := len(r.ring)
	if n == 0 {
		return math.NaN()
	}
	if r.blocks == nil {
		r.build()
	}
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return r.at(n - 1)
	}
	fr := pos - float64(lo)
	return r.at(lo)*(1-fr) + r.at(lo+1)*fr
}

// sortedUpper is the index of the first value of s above v (no NaN in s
// or v). The loop has no data-dependent branch, which matters on errors
// that arrive in random order.
func sortedUpper(s []float64, v float64) int {
	if len(s) == 0 {
		return 0
	}
	base, n := 0, len(s)
	for n > 1 {
		half := n / 2
		if s[base+half-1] <= v {
			base += half
		}
		n -= half
	}
	if s[base] <= v {
		base++
	}
	return base
}

// sortedLower is the index of the first value of s not below v (no NaN in
// s or v).
func sortedLower(s []float64, v float64) int {
	if len(s) == 0 {
		return 0
	}
	base, n := 0, len(s)
	for n > 1 {
		half := n / 2
		if s[base+half-1] < v {
			base += half
		}
		n -= half
	}
	if s[base] < v {
		base++
	}
	return base
}

// sortedQuantile is the q-quantile of sorted values, with linear
// interpolation between ranks.
func sortedQuantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(v)-1)
	lo := int(math.Floor(pos))
	if lo >= len(v)-1 {
		return v[len(v)-1]
	}
	fr := pos - float64(lo)
	return v[lo]*(1-fr) + v[lo+1]*fr
}
