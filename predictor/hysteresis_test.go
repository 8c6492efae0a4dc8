package predictor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// validationScore is selectFrom's score of s on y: the MASE of its
// forecast of the last hv values, fitted on those before.
func validationScore(s spec, y []float64, periods []int, hv int) float64 {
	n := len(y)
	train, test := y[:n-hv], y[n-hv:]
	f := s.fitWith(train, periods, nil, nil, nil, 0).forecast(hv)
	e := 0.0
	for j := range f {
		e += math.Abs(test[j] - f[j])
	}
	return e / (seasonalScale(train, usablePeriods(periods, n)[0]) * float64(hv))
}

// TestSelectHysteresis checks that the model in use is kept unless a
// challenger's validation score beats its own by more than the margin.
func TestSelectHysteresis(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	periods := []int{24, 168}
	y := make([]float64, 4*168)
	for i := range y {
		y[i] = 100 + 40*math.Sin(2*math.Pi*float64(i)/24) + 15*math.Sin(2*math.Pi*float64(i)/168) + 6*rng.NormFloat64()
	}
	hv := 24
	cands := onlineCandidates
	best, worst := cands[0], cands[0]
	for _, s := range cands {
		if validationScore(s, y, periods, hv) < validationScore(best, y, periods, hv) {
			best = s
		}
		if validationScore(s, y, periods, hv) > validationScore(worst, y, periods, hv) {
			worst = s
		}
	}
	gain := 1 - validationScore(best, y, periods, hv)/validationScore(worst, y, periods, hv)
	if gain < 0.01 {
		t.Fatalf("the candidates score within %.3f of each other: the data tell nothing apart", gain)
	}
	t.Logf("best %+v beats worst %+v by %.1f%%", best, worst, 100*gain)
	withZero := append([]float64(nil), y...)
	withZero[len(y)/2] = 0 // the log model does not apply
	for _, tc := range []struct {
		name      string
		y         []float64
		incumbent *spec
		margin    float64
		want      spec
	}{
		{"no incumbent", y, nil, 0.05, best},
		{"challenger beyond the margin", y, &worst, gain / 2, best},
		{"challenger within the margin", y, &worst, gain * 1.1, worst},
		{"no margin", y, &worst, 0, best},
		{"incumbent is best", y, &best, gain * 1.1, best},
		{"incumbent not applicable", withZero, &cands[2], 1, selectFrom(cands[:2], withZero, periods, hv, nil, nil, nil, 0).spec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := selectFrom(cands, tc.y, periods, hv, nil, nil, tc.incumbent, tc.margin)
			if got.spec != tc.want {
				t.Errorf("chose %+v, want %+v", got.spec, tc.want)
			}
			if len(got.errors) != hv {
				t.Errorf("%d validation errors, want %d", len(got.errors), hv)
			}
		})
	}
}
