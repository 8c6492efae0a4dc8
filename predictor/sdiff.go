package predictor

import "math"

// sdiffAR is an autoregression on the seasonal differences of a series,
// z[t] = y[t] - y[t-p], with an intercept (the drift per cycle), in the
// manner of SARIMA(q,0,0)(0,1,0)p with drift: the seasonal naive forecast
// corrected by the autocorrelated change of the series since a cycle ago.
type sdiffAR struct {
	p    int       // seasonal period
	c    float64   // intercept
	phi  []float64 // AR coefficients, phi[0] for lag 1
	tail []float64 // the last values of y (at least p)
	z    []float64 // the last len(phi) seasonal differences
}

// sdiffFitLen bounds the values the regression is fitted on.
const sdiffFitLen = 24 * 7 * 3

// fitSdiffAR fits an AR(q) with intercept to the seasonal differences of y
// by least squares (ridge-damped); nil when y is too short.
func fitSdiffAR(y []float64, p, q int, drift bool) *sdiffAR {
	n := len(y)
	if p < 1 || n < p+q+3*(q+1)+8 {
		return nil
	}
	from := max(p, n-sdiffFitLen-q)
	z := make([]float64, n-from)
	for i := range z {
		z[i] = y[from+i] - y[from+i-p]
	}
	// Normal equations for [1, z[t-1], ..., z[t-q]] -> z[t].
	k := q + 1
	a := make([]float64, k*k)
	b := make([]float64, k)
	x := make([]float64, k)
	for t := q; t < len(z); t++ {
		x[0] = 1
		for j := 1; j <= q; j++ {
			x[j] = z[t-j]
		}
		for r := 0; r < k; r++ {
			b[r] += x[r] * z[t]
			for c := 0; c < k; c++ {
				a[r*k+c] += x[r] * x[c]
			}
		}
	}
	for r := 1; r < k; r++ {
		a[r*k+r] *= 1.001
	}
	if !drift {
		// Pin the intercept at 0.
		for c := 0; c < k; c++ {
			a[c], a[c*k] = 0, 0
		}
		a[0], b[0] = 1, 0
	}
	coef, ok := solve(a, b, k)
	if !ok {
		return nil
	}
	m := &sdiffAR{p: p, c: coef[0], phi: coef[1:]}
	// Keep the process stationary: shrink the coefficients until their
	// absolute sum is below 1.
	if s := sumAbs(m.phi); s >= 0.98 {
		for j := range m.phi {
			m.phi[j] *= 0.98 / s
		}
	}
	m.tail = append([]float64(nil), y[n-p:]...)
	m.z = append([]float64(nil), z[len(z)-q:]...)
	return m
}

func sumAbs(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += math.Abs(x)
	}
	return s
}

// forecast returns h steps after the fitted values.
func (m *sdiffAR) forecast(h int) []float64 {
	q := len(m.phi)
	z := append([]float64(nil), m.z...) // z[len(z)-1] is the latest
	ys := append([]float64(nil), m.tail...)
	f := make([]float64, h)
	for j := range f {
		zj := m.c
		for l := 1; l <= q; l++ {
			zj += m.phi[l-1] * z[len(z)-l]
		}
		z = append(z, zj)
		v := ys[len(ys)-m.p] + zj
		ys = append(ys, v)
		f[j] = v
	}
	return f
}

// solve solves the k x k system a x = b by Gaussian elimination with
// partial pivoting; ok is false when a is singular.
func solve(a, b []float64, k int) ([]float64, bool) {
	a = append([]float64(nil), a...)
	b = append([]float64(nil), b...)
	for c := 0; c < k; c++ {
		piv := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r*k+c]) > math.Abs(a[piv*k+c]) {
				piv = r
			}
		}
		if math.Abs(a[piv*k+c]) < 1e-12 {
			return nil, false
		}
		if piv != c {
			for j := 0; j < k; j++ {
				a[c*k+j], a[piv*k+j] = a[piv*k+j], a[c*k+j]
			}
			b[c], b[piv] = b[piv], b[c]
		}
		for r := c + 1; r < k; r++ {
			f := a[r*k+c] / a[c*k+c]
			for j := c; j < k; j++ {
				a[r*k+j] -= f * a[c*k+j]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, k)
	for r := k - 1; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < k; j++ {
			s -= a[r*k+j] * x[j]
		}
		x[r] = s / a[r*k+r]
	}
	return x, true
}
