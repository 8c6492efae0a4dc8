package predictor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSeasonalNaive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		y      []float64
		period int
		h      int
		want   []float64
	}{
		{"repeats last season", []float64{1, 2, 3, 4, 5}, 2, 5, []float64{4, 5, 4, 5, 4}},
		{"short history repeats last value", []float64{1, 2}, 3, 2, []float64{2, 2}},
		{"no history", nil, 24, 2, []float64{0, 0}},
		{"no steps", []float64{1}, 1, 0, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SeasonalNaive(tc.y, tc.period, tc.h); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// synthetic is hourly data with a daily and a weekly cycle, a trend and
// noise, and a few outliers.
func synthetic(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	y := make([]float64, n)
	for i := range y {
		y[i] = 500 + 0.2*float64(i) + 100*math.Sin(2*math.Pi*float64(i)/24)
		if d := (i / 24) % 7; d >= 5 {
			y[i] -= 80
		}
		y[i] += rng.NormFloat64() * 5
		if i%97 == 50 {
			y[i] += 400 // outlier
		}
	}
	return y
}

func TestForecastSeriesRecoversStructure(t *testing.T) {
	const h = 48
	all := synthetic(24*7*5+h, 1)
	y, test := all[:len(all)-h], all[len(all)-h:]
	point, upper := ForecastSeries(y, []int{24, 168}, h, 0.95)
	if len(point) != h || len(upper) != h {
		t.Fatalf("lengths %d, %d, want %d", len(point), len(upper), h)
	}
	mae := func(f []float64) float64 {
		s := 0.0
		for i := range f {
			s += math.Abs(f[i] - test[i])
		}
		return s / float64(len(f))
	}
	naive := SeasonalNaive(y, 24, h)
	t.Logf("MAE tide %.2f, seasonal naive %.2f", mae(point), mae(naive))
	if mae(point) > 10 {
		t.Errorf("MAE %.2f, want <= 10 (noise sd 5)", mae(point))
	}
	if mae(point) > 0.5*mae(naive) {
		t.Errorf("MAE %.2f not clearly below seasonal naive's %.2f", mae(point), mae(naive))
	}
	for j := range point {
		if upper[j] < point[j] {
			t.Fatalf("step %d: upper %.1f below point %.1f", j, upper[j], point[j])
		}
	}
}

func TestForecastSeriesShortAndDegenerate(t *testing.T) {
	for _, tc := range []struct {
		name string
		y    []float64
	}{
		{"empty", nil},
		{"one value", []float64{3}},
		{"shorter than a season", []float64{1, 2, 3, 4, 5}},
		{"constant", make([]float64, 400)},
		{"zeros and spikes", func() []float64 {
			y := make([]float64, 400)
			y[100], y[300] = 50, 80
			return y
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, u := ForecastSeries(tc.y, []int{24, 168}, 12, 0.9)
			if len(p) != 12 || len(u) != 12 {
				t.Fatalf("lengths %d, %d, want 12", len(p), len(u))
			}
			for j := range p {
				if math.IsNaN(p[j]) || math.IsInf(p[j], 0) || math.IsNaN(u[j]) || u[j] < p[j] {
					t.Fatalf("step %d: point %v upper %v", j, p[j], u[j])
				}
			}
		})
	}
}
