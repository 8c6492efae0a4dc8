package predictor

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // a Monday

// load is a synthetic request rate with a daily and a weekly cycle.
func load(t time.Time) float64 {
	h := float64(t.Sub(t0)) / float64(time.Hour)
	v := 100 + 40*math.Sin(2*math.Pi*h/24)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		v -= 30
	}
	return v
}

func feed(o *Online, from, to time.Time, step time.Duration, f func(time.Time) float64) {
	for t := from; t.Before(to); t = t.Add(step) {
		o.Observe(t, f(t))
	}
}

func TestOnlineInsufficientHistory(t *testing.T) {
	o := New(Options{Step: time.Hour})
	if _, err := o.Forecast(t0, time.Hour); !errors.Is(err, ErrInsufficientHistory) {
		t.Fatalf("empty: err = %v, want ErrInsufficientHistory", err)
	}
	feed(o, t0, t0.Add(20*time.Hour), time.Hour, load)
	if _, err := o.Forecast(t0.Add(20*time.Hour), time.Hour); !errors.Is(err, ErrInsufficientHistory) {
		t.Fatalf("20h: err = %v, want ErrInsufficientHistory", err)
	}
	feed(o, t0.Add(20*time.Hour), t0.Add(25*time.Hour), time.Hour, load)
	if _, err := o.Forecast(t0.Add(25*time.Hour), time.Hour); err != nil {
		t.Fatalf("25h: %v", err)
	}
}

func TestOnlineInvalidStep(t *testing.T) {
	o := New(Options{})
	o.Observe(t0, 1)
	if _, err := o.Forecast(t0, time.Hour); err == nil || errors.Is(err, ErrInsufficientHistory) {
		t.Fatalf("err = %v, want an options error", err)
	}
}

// TestOnlineSeasonal checks that daily and weekly structure are recovered:
// the forecast at each hour from Friday to Monday follows the known load,
// weekend dip included.
func TestOnlineSeasonal(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration
	}{{"hourly", time.Hour}, {"minute", time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			noisy := func(t time.Time) float64 { return load(t) + rng.NormFloat64()*2 }
			o := New(Options{Step: tc.step, RefitEvery: 24 * time.Hour})
			start := t0
			end := t0.Add(2*7*24*time.Hour + 4*24*time.Hour + 12*time.Hour)
			feed(o, start, end, tc.step, noisy)
			// From Friday noon to Monday noon: the weekend's edges.
			worst, sum, n := 0.0, 0.0, 0
			for now := end; now.Before(end.Add(3 * 24 * time.Hour)); now = now.Add(time.Hour) {
				est, err := o.Forecast(now, tc.step)
				if err != nil {
					t.Fatal(err)
				}
				want := load(now.Add(tc.step))
				worst = math.Max(worst, math.Abs(est.Point-want))
				sum += math.Abs(est.Point - want)
				n++
				if est.Upper < est.Point {
					t.Fatalf("upper %.1f below point %.1f", est.Upper, est.Point)
				}
				feed(o, now, now.Add(time.Hour), tc.step, noisy)
			}
			// Amplitude is 40 plus a weekend step of 30; seasonal naive
			// on the daily period would miss two of these three days by
			// 30. On minute data the model step is 15 minutes, so the step
			// at midnight is smoothed.
			mae := sum / float64(n)
			t.Logf("mean absolute error %.2f, worst %.1f", mae, worst)
			if mae > 3 || worst > 20 {
				t.Errorf("one-step errors over a week: mean %.2f (want <= 3), worst %.1f (want <= 20)", mae, worst)
			}
		})
	}
}

// TestOnlineGaps feeds minute data with a multi-day hole (as in the NASA
// trace) and checks that forecasts after the hole are still seasonal.
func TestOnlineGaps(t *testing.T) {
	o := New(Options{Step: time.Minute, RefitEvery: 24 * time.Hour})
	feed(o, t0, t0.Add(17*24*time.Hour), time.Minute, load)
	resume := t0.Add(20*24*time.Hour + 17*time.Hour)
	feed(o, resume, resume.Add(2*time.Hour), time.Minute, load)
	now := resume.Add(2 * time.Hour)
	for _, ahead := range []time.Duration{10 * time.Minute, 3 * time.Hour, 9 * time.Hour} {
		est, err := o.Forecast(now.Add(ahead-time.Minute), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := load(now.Add(ahead)); math.Abs(est.Point-want) > 10 {
			t.Errorf("%v ahead: point %.1f, want %.1f", ahead, est.Point, want)
		}
	}
}

// TestOnlineLevelShift doubles the load abruptly and checks that the
// forecast follows within a bounded number of samples.
func TestOnlineLevelShift(t *testing.T) {
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			o := New(Options{Step: step, RefitEvery: 24 * time.Hour})
			shiftAt := t0.Add(15*24*time.Hour + 7*time.Hour)
			shifted := func(t time.Time) float64 {
				if t.Before(shiftAt) {
					return load(t)
				}
				return load(t) + 200
			}
			feed(o, t0, shiftAt, step, shifted)
			const within = 6
			feed(o, shiftAt, shiftAt.Add(within*step), step, shifted)
			now := shiftAt.Add((within - 1) * step)
			est, err := o.Forecast(now, step)
			if err != nil {
				t.Fatal(err)
			}
			if want := shifted(now.Add(step)); math.Abs(est.Point-want) > 20 {
				t.Errorf("%d steps after the shift: point %.1f, want about %.1f", within, est.Point, want)
			}
		})
	}
}

// TestOnlineCoverage checks that the upper quantile of one-step and
// ten-step forecasts covers noisy data near the nominal rate.
func TestOnlineCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := map[time.Time]float64{}
	noisy := func(t time.Time) float64 {
		v, ok := vals[t]
		if !ok {
			v = load(t) + rng.NormFloat64()*10
			vals[t] = v
		}
		return v
	}
	step := 5 * time.Minute
	o := New(Options{Step: step, Quantile: 0.9, RefitEvery: 24 * time.Hour})
	start := t0.Add(15 * 24 * time.Hour)
	feed(o, t0, start, step, noisy)
	for _, h := range []int{1, 10} {
		hits, n := 0, 0
		for now := start; now.Before(start.Add(3 * 24 * time.Hour)); now = now.Add(step) {
			// The upper bound of the single step h ahead: the window of
			// one step that starts h-1 steps after the last sample.
			est, err := o.Forecast(now.Add(time.Duration(h-2)*step), step)
			if err != nil {
				t.Fatal(err)
			}
			if noisy(now.Add(time.Duration(h-1)*step)) <= est.Upper {
				hits++
			}
			n++
			o.Observe(now, noisy(now))
		}
		cov := float64(hits) / float64(n)
		t.Logf("lead %d: coverage %.3f of %d", h, cov, n)
		if cov < 0.85 || cov > 0.96 {
			t.Errorf("lead %d: coverage %.3f, want near 0.90", h, cov)
		}
	}
}

// TestObserveRefitIsBounded checks the amortised cost structurally: a refit
// runs once per RefitEvery of data, not per sample.
func TestObserveRefitIsBounded(t *testing.T) {
	o := New(Options{Step: time.Minute, RefitEvery: 6 * time.Hour})
	feed(o, t0, t0.Add(4*24*time.Hour), time.Minute, load)
	// The first refit runs after one day, then one every 6 hours.
	if r := o.Refits(); r < 12 || r > 14 {
		t.Errorf("refits = %d after 4 days of minute samples, want 12 to 14", r)
	}
	m := New(Options{Step: time.Minute, RefitEvery: -1})
	feed(m, t0, t0.Add(2*24*time.Hour), time.Minute, load)
	if r := m.Refits(); r != 0 {
		t.Errorf("manual: refits = %d before Refit, want 0", r)
	}
	if err := m.Refit(); err != nil {
		t.Fatal(err)
	}
	if r := m.Refits(); r != 1 {
		t.Errorf("manual: refits = %d, want 1", r)
	}
}

// TestOnlineOutOfOrder checks that duplicates and late samples are taken
// sensibly: a duplicate overwrites, a late sample fills the hole, a sample
// older than the window is dropped, and none moves the level backwards.
func TestOnlineOutOfOrder(t *testing.T) {
	o := New(Options{Step: time.Hour, Window: 14 * 24 * time.Hour})
	end := t0.Add(10 * 24 * time.Hour)
	for ti := t0; ti.Before(end); ti = ti.Add(time.Hour) {
		if ti.Hour() == 5 {
			continue // arrives late below
		}
		o.Observe(ti, load(ti))
		o.Observe(ti.Add(-time.Second), load(ti)) // jittered duplicate
	}
	for ti := t0.Add(5 * time.Hour); ti.Before(end); ti = ti.Add(24 * time.Hour) {
		o.Observe(ti, load(ti))
	}
	o.Observe(t0.Add(-30*24*time.Hour), 1e9) // older than the window
	if err := o.Refit(); err != nil {
		t.Fatal(err)
	}
	est, err := o.Forecast(end.Add(-time.Hour), 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for i := 1; i <= 6; i++ {
		want = math.Max(want, load(end.Add(time.Duration(i-1)*time.Hour)))
	}
	if math.Abs(est.Point-want) > 8 {
		t.Errorf("point %.1f, want %.1f", est.Point, want)
	}
}

// TestOnlineConcurrent runs Observe, Forecast and Refit from different
// goroutines (meaningful under -race).
func TestOnlineConcurrent(t *testing.T) {
	o := New(Options{Step: time.Minute, RefitEvery: -1})
	feed(o, t0, t0.Add(26*time.Hour), time.Minute, load)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(done)
		feed(o, t0.Add(26*time.Hour), t0.Add(30*time.Hour), time.Minute, load)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := o.Refit(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		if _, err := o.Forecast(t0.Add(26*time.Hour), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestOnlineWindowMaxCoverage checks that Forecast's Upper bounds the
// highest load over the horizon near the nominal rate, on data whose noise
// grows with the load (quiet nights, noisy days), and that it is tighter at
// night than by day.
func TestOnlineWindowMaxCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	step := 5 * time.Minute
	vals := map[time.Time]float64{}
	noisy := func(t time.Time) float64 {
		v, ok := vals[t]
		if !ok {
			v = math.Max(0, load(t)*(1+0.15*rng.NormFloat64()))
			vals[t] = v
		}
		return v
	}
	o := New(Options{Step: step, Quantile: 0.9, RefitEvery: 24 * time.Hour})
	start := t0.Add(15 * 24 * time.Hour)
	feed(o, t0, start, step, noisy)
	const h = 6 // steps
	hits, n := 0, 0
	var dayW, nightW []float64
	for now := start; now.Before(start.Add(4 * 24 * time.Hour)); now = now.Add(step) {
		o.Observe(now, noisy(now))
		est, err := o.Forecast(now, h*step)
		if err != nil {
			t.Fatal(err)
		}
		if est.Upper < est.Point {
			t.Fatalf("upper %.1f below point %.1f", est.Upper, est.Point)
		}
		hi := 0.0
		for j := 1; j <= h; j++ {
			hi = math.Max(hi, noisy(now.Add(time.Duration(j)*step)))
		}
		n++
		if hi <= est.Upper {
			hits++
		}
		if ph := now.Hour(); ph >= 3 && ph < 9 { // the daily peak of load
			dayW = append(dayW, est.Upper-est.Point)
		} else if ph >= 15 && ph < 21 { // the daily trough
			nightW = append(nightW, est.Upper-est.Point)
		}
	}
	cov := float64(hits) / float64(n)
	t.Logf("window max coverage %.3f of %d; band by day %.1f, at night %.1f", cov, n, mean(dayW), mean(nightW))
	if cov < 0.85 || cov > 0.96 {
		t.Errorf("window max coverage %.3f, want near 0.90", cov)
	}
	if mean(nightW) >= mean(dayW) {
		t.Errorf("band at night %.1f not below the band by day %.1f", mean(nightW), mean(dayW))
	}
}

// TestForecastAfter checks that the bound after a lead covers only the
// steps after it: it is at most Forecast's bound of the whole window, and
// it matches the per-step bounds of those steps.
func TestForecastAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	noisy := func(t time.Time) float64 { return load(t) + 5*rng.NormFloat64() }
	step := 5 * time.Minute
	o := New(Options{Step: step, RefitEvery: 24 * time.Hour})
	end := t0.Add(10 * 24 * time.Hour)
	feed(o, t0, end, step, noisy)
	now := end.Add(-step)
	whole, err := o.Forecast(now, 12*step)
	if err != nil {
		t.Fatal(err)
	}
	after, err := o.ForecastAfter(now, 10*step, 12*step)
	if err != nil {
		t.Fatal(err)
	}
	_, upper, err := o.Steps(now, 12*step)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Max(upper[10], upper[11]); after.Upper != want {
		t.Errorf("upper after the lead %.2f, want the per-step bounds' %.2f", after.Upper, want)
	}
	if after.Upper > whole.Upper || after.Point > whole.Point {
		t.Errorf("after the lead (point %.1f, upper %.1f) above the whole window's (%.1f, %.1f)", after.Point, after.Upper, whole.Point, whole.Upper)
	}
	if after.Upper < after.Point || after.Model == "" {
		t.Errorf("estimate %+v", after)
	}
}

// TestOnlineSelectEvery checks that the model is chosen once per
// SelectEvery of data, the refits in between keeping the choice and its
// smoothing parameters, and at every refit with a negative SelectEvery.
func TestOnlineSelectEvery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		selectEvery time.Duration
		minC, maxC  int // choices over the run
	}{
		{"daily", 24 * time.Hour, 4, 5},
		{"every refit", -1, 13, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := New(Options{Step: 5 * time.Minute, RefitEvery: 6 * time.Hour, SelectEvery: tc.selectEvery})
			var choices []*choice
			refits := 0
			for at := t0; at.Before(t0.Add(4 * 24 * time.Hour)); at = at.Add(5 * time.Minute) {
				o.Observe(at, load(at))
				o.mu.Lock()
				if o.refits != refits {
					refits = o.refits
					if len(choices) == 0 || choices[len(choices)-1] != o.sel {
						choices = append(choices, o.sel)
					} else if h := o.fit.m.ets; h.alpha != o.sel.ets.alpha || h.beta != o.sel.ets.beta || h.phi != o.sel.ets.phi {
						t.Errorf("refit %d kept the choice but not its parameters: %+v, chosen %+v", refits, h, o.sel.ets)
					}
				}
				o.mu.Unlock()
			}
			if refits != 13 {
				t.Errorf("refits = %d, want 13", refits)
			}
			if n := len(choices); n < tc.minC || n > tc.maxC {
				t.Errorf("%d choices in %d refits, want %d to %d", n, refits, tc.minC, tc.maxC)
			}
		})
	}
}

// TestOnlineModelChangeErrors changes the model from one on logs to an
// additive one at a refit and checks that the errors tracked afterwards
// are the new model's: measured from states the old model left (a level
// on logs), they were about the size of the load itself.
func TestOnlineModelChangeErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to spec
	}{
		{"logs to additive", onlineCandidates[2], onlineCandidates[0]},
		{"additive to logs", onlineCandidates[0], onlineCandidates[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := New(Options{Step: time.Hour, RefitEvery: -1, SelectEvery: -1})
			o.cands = []spec{tc.from}
			end := t0.Add(21 * 24 * time.Hour)
			feed(o, t0, end, time.Hour, load)
			if err := o.Refit(); err != nil {
				t.Fatal(err)
			}
			feed(o, end, end.Add(24*time.Hour), time.Hour, load)
			o.cands = []spec{tc.to}
			if err := o.Refit(); err != nil {
				t.Fatal(err)
			}
			if got := o.fit.spec; got != tc.to {
				t.Fatalf("model %+v after the change, want %+v", got, tc.to)
			}
			if n := o.ModelChanges(); n != 1 {
				t.Errorf("ModelChanges() = %d, want 1", n)
			}
			pushed := make([]int, len(leads))
			for li := range leads {
				pushed[li] = o.errs[li].scores.n
			}
			end = end.Add(24 * time.Hour)
			feed(o, end, end.Add(12*time.Hour), time.Hour, load)
			for li, l := range leads {
				r := &o.errs[li].scores
				for k := pushed[li]; k < r.n; k++ {
					// The load swings by 40 around 100 (70 at weekends):
					// an error of 20 is already a poor forecast.
					if e := r.ring[k%cap(r.ring)]; math.Abs(e) > 20 {
						t.Errorf("lead %d: error %.1f tracked after the change", l, e)
						break
					}
				}
			}
		})
	}
}
