package predictor

// SeasonalNaive forecasts h steps after y by repeating its last full season
// of the given period. With less than one period of history (or period < 1)
// it repeats the last value; with no history it returns zeros.
func SeasonalNaive(y []float64, period, h int) []float64 {
	f := make([]float64, max(h, 0))
	n := len(y)
	if n == 0 {
		return f
	}
	if period < 1 || n < period {
		for i := range f {
			f[i] = y[n-1]
		}
		return f
	}
	for i := range f {
		f[i] = y[n-period+i%period]
	}
	return f
}
