package forecast

import "math"

// MASE is the mean absolute scaled error of forecast f against actual y,
// scaled as in M4 by the in-sample mean absolute seasonal difference with
// period m of insample. It returns NaN when the scale is undefined or zero.
func MASE(insample, y, f []float64, m int) float64 {
	if m < 1 || len(insample) <= m || len(y) == 0 || len(y) != len(f) {
		return math.NaN()
	}
	scale := 0.0
	for i := m; i < len(insample); i++ {
		scale += math.Abs(insample[i] - insample[i-m])
	}
	scale /= float64(len(insample) - m)
	if scale == 0 {
		return math.NaN()
	}
	e := 0.0
	for i := range y {
		e += math.Abs(y[i] - f[i])
	}
	return e / float64(len(y)) / scale
}

// SMAPE is the symmetric mean absolute percentage error in percent, as
// defined by M4: 200/h * sum |y-f| / (|y|+|f|). Terms where both are zero
// count as zero error.
func SMAPE(y, f []float64) float64 {
	if len(y) == 0 || len(y) != len(f) {
		return math.NaN()
	}
	s := 0.0
	for i := range y {
		d := math.Abs(y[i]) + math.Abs(f[i])
		if d > 0 {
			s += math.Abs(y[i]-f[i]) / d
		}
	}
	return 200 * s / float64(len(y))
}

// Coverage counts how many actual values lie at or below their upper bound.
// It returns the hits and the number of comparisons.
func Coverage(y, upper []float64) (hits, n int) {
	for i := range y {
		if i >= len(upper) {
			break
		}
		n++
		if y[i] <= upper[i] {
			hits++
		}
	}
	return hits, n
}
