package scheduler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/predictor"
)

// Forecaster predicts a role's load. predictor.Online implements it; the
// simulator's baselines use simpler ones.
type Forecaster interface {
	// Observe feeds one load sample.
	Observe(at time.Time, value float64)
	// Forecast returns the highest load expected in (now, now+horizon]. It
	// returns predictor.ErrInsufficientHistory while it cannot forecast yet.
	Forecast(now time.Time, horizon time.Duration) (predictor.Estimate, error)
}

// laterForecaster is a Forecaster that can bound the load of a stretch
// that starts later than now; predictor.Online is one. A Role uses it when
// the forecaster has it.
type laterForecaster interface {
	// ForecastAfter is Forecast restricted to (now+after, now+horizon].
	ForecastAfter(now time.Time, after, horizon time.Duration) (predictor.Estimate, error)
}

// Params are the limits and load settings of one role.
type Params struct {
	Role     string
	Min, Max int
	// LoadDriven is set when the role has a load policy.
	LoadDriven bool
	// Target is the load one host should carry.
	Target float64
	// Headroom is the fraction kept above the current load (0.2 = 20%).
	Headroom float64
	// Lead is how long a new host takes to become ready; Interval is the
	// time between decisions. The forecast looks Lead+Interval ahead.
	Lead, Interval time.Duration
	// MaxAge is how old the newest sample may be before it is stale.
	MaxAge time.Duration
	// Predict turns the forecast input on.
	Predict bool
	// Stabilization is how long a lower count must be wanted before it is applied.
	Stabilization time.Duration
	// MaxStep bounds how many hosts one decision removes (0: no bound).
	MaxStep int
}

// Sample is one load observation.
type Sample struct {
	At    time.Time
	Value float64
}

type recommendation struct {
	at    time.Time
	count int
}

// Role decides one role's desired count, decision after decision. It keeps
// the memory the limits need (previous count, recent recommendations, the
// latest sample). It is not safe for concurrent use.
type Role struct {
	params     Params
	windows    policies.Set
	forecaster Forecaster
	latest     Sample
	hasLatest  bool
	desired    int
	// recent[old:] are the counts wanted within the stabilization window,
	// recent[:old] expired ones whose room is reused. unordered is set
	// when recent[old:] may not be in time order.
	recent    []recommendation
	old       int
	unordered bool
	// words are the settings the records' details quote.
	words *roleWords
}

// NewRole returns a decider for one role. windows may be empty and
// forecaster nil (then the load input is reactive only).
func NewRole(p Params, windows policies.Set, f Forecaster) *Role {
	w := &roleWords{target: p.Target, headroom: p.Headroom, stabilization: p.Stabilization,
		lead: p.Lead, horizon: p.Lead + p.Interval}
	return &Role{params: p, windows: windows, forecaster: f, words: w}
}

// Params returns the role's parameters.
func (r *Role) Params() Params { return r.params }

// Desired returns the count of the last decision.
func (r *Role) Desired() int { return r.desired }

// Restore sets the previous desired count, as after a service restart: the
// count counts as wanted at, so stabilization holds it as it would have.
func (r *Role) Restore(desired int, at time.Time) {
	r.desired = desired
	r.add(recommendation{at: at, count: desired})
	// A restored time has no monotonic clock reading, unlike the service's
	// decisions: it is compared with them on the wall clock, with the cut
	// on the monotonic one, so order is not assumed.
	r.unordered = true
}

// Observe records a load sample and feeds it to the forecaster. Samples
// older than the latest one still reach the forecaster but do not replace
// the latest. NaN and infinite values are dropped: to the role they are
// missing samples (the metric goes stale), not a load.
func (r *Role) Observe(s Sample) {
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		// Not a load: a metric that only reports these is missing, and
		// goes stale.
		return
	}
	if r.forecaster != nil {
		r.forecaster.Observe(s.At, s.Value)
	}
	if !r.hasLatest || !s.At.Before(r.latest.At) {
		r.latest, r.hasLatest = s, true
	}
}

// need is the hosts needed to carry load at the role's target.
func (r *Role) need(load float64) int {
	if r.params.Target <= 0 || load <= 0 || math.IsNaN(load) {
		return 0
	}
	return int(math.Ceil(load/r.params.Target - 1e-9))
}

// ScheduledCount is what the schedule alone asks for at now (min and
// windows, clamped), with the proposals in force: the figure `tide plan
// --week` shows.
func ScheduledCount(p Params, windows policies.Set, now time.Time) (int, []policies.Proposal) {
	props := windows.At(now)
	count, exact := p.Min, -1
	for _, pr := range props {
		if pr.Mode == policies.Exact {
			exact = max(exact, pr.Count)
		} else {
			count = max(count, pr.Count)
		}
	}
	if exact >= 0 {
		count = exact
	}
	return min(max(count, p.Min), p.Max), props
}

// Decide makes the decision at now. ov may be nil or expired.
func (r *Role) Decide(now time.Time, ov *Override) Record {
	p := r.params
	prev := r.desired
	rec := Record{Role: p.Role, At: now, Previous: prev}
	if !ov.Active(now) {
		ov = nil
	}

	// Inputs, in order of precedence for ties. An override, floor or pin,
	// comes first.
	props := r.windows.At(now)
	n := len(props) + 1 // the windows and min
	if ov != nil {
		n++
	}
	if p.LoadDriven {
		n += 2 // load and forecast
	}
	inputs := make([]Input, 0, n)
	exact, exactSource := -1, ""
	if ov != nil {
		inputs = append(inputs, Input{Source: "override", Count: ov.Count, Detail: Text(ov.describe())})
	}
	for _, pr := range props {
		src := "policy:" + pr.Policy
		inputs = append(inputs, Input{Source: src, Count: pr.Count, Detail: Text(pr.Reason)})
		if pr.Mode == policies.Exact && pr.Count > exact {
			exact, exactSource = pr.Count, src
		}
	}
	frozen := false
	if p.LoadDriven {
		in, fin, upper, f := r.loadInputs(now, prev)
		frozen = f
		inputs = append(inputs, in)
		if fin.Source != "" {
			inputs = append(inputs, fin)
			// Load and forecast share one allocation.
			v := &[2]float64{r.latest.Value, upper}
			rec.Load, rec.Forecast = &v[0], &v[1]
		} else if !frozen {
			v := r.latest.Value
			rec.Load = &v
		}
	}
	inputs = append(inputs, Input{Source: "min", Count: p.Min, Detail: Text("role minimum")})

	// Combine.
	raw, winner := -1, ""
	if exact >= 0 {
		raw, winner = exact, exactSource
	} else {
		for _, in := range inputs {
			if in.Source == "override" {
				continue
			}
			if in.Count > raw {
				raw, winner = in.Count, in.Source
			}
		}
	}
	if ov != nil && ov.Kind == FloorOverride && ov.Count > raw {
		raw, winner = ov.Count, "override"
	}
	if ov != nil && ov.Kind == Pin {
		raw, winner = ov.Count, "override"
		rec.Steps = append(rec.Steps, Step{Kind: "pin", From: raw, To: raw, Detail: Text("pinned by an operator: policies and load are ignored")})
	}
	for i := range inputs {
		inputs[i].Won = inputs[i].Source == winner
	}
	rec.Inputs, rec.Winner, rec.Frozen = inputs, winner, frozen

	// Limits.
	desired := raw
	ignoreLimits := ov != nil && ov.IgnoreLimits && winner == "override"
	if !ignoreLimits {
		if desired < p.Min {
			rec.Steps = append(rec.Steps, Step{Kind: "clamp-min", From: desired, To: p.Min, Detail: Detail{form: formMin, n: p.Min}})
			desired = p.Min
		}
		if desired > p.Max {
			rec.Steps = append(rec.Steps, Step{Kind: "clamp-max", From: desired, To: p.Max, Detail: Detail{form: formMax, n: p.Max}})
			desired = p.Max
		}
	}
	immediate := (ov != nil && ov.Kind == Pin) || (exact >= 0 && winner == exactSource)
	if frozen && desired < prev && !immediate {
		rec.Steps = append(rec.Steps, Step{Kind: "freeze", From: desired, To: prev, Detail: Text("load metric missing or stale: capacity is not lowered")})
		desired = prev
	}
	r.remember(now, desired)
	if desired < prev && !immediate {
		if held := r.highestRecent(); held > desired {
			to := min(held, prev)
			rec.Steps = append(rec.Steps, Step{Kind: "stabilization", From: desired, To: to,
				Detail: Detail{form: formStabilization, n: held, role: r.words}})
			desired = to
		}
		if p.MaxStep > 0 && prev-desired > p.MaxStep {
			rec.Steps = append(rec.Steps, Step{Kind: "step-limit", From: desired, To: prev - p.MaxStep,
				Detail: Detail{form: formStepLimit, n: p.MaxStep}})
			desired = prev - p.MaxStep
		}
	}
	if immediate && exact >= 0 && winner == exactSource && desired != raw {
		// An exact window still respects min/max; say so.
		rec.Steps = append(rec.Steps, Step{Kind: "exact", From: raw, To: desired, Detail: Text("exact window limited by min/max")})
	}
	rec.Desired = desired
	r.desired = desired
	return rec
}

// loadInputs builds the load input (reactive) and the forecast input,
// with the forecast's upper bound; the forecast input's Source is empty
// when there is none. frozen is set when the load input only holds the
// count because the metric is missing or stale.
func (r *Role) loadInputs(now time.Time, prev int) (load, forecast Input, upper float64, frozen bool) {
	p := r.params
	if !r.hasLatest {
		return Input{Source: "load", Count: prev, Detail: Text("no load sample yet: holding the current count")}, Input{}, 0, true
	}
	age := now.Sub(r.latest.At)
	if p.MaxAge > 0 && age > p.MaxAge {
		return Input{Source: "load", Count: prev, Detail: Text(fmt.Sprintf("load metric stale: newest sample is %s old (max %s): holding the current count", age.Round(time.Second), p.MaxAge))}, Input{}, 0, true
	}
	v := r.latest.Value
	reactive := Input{Source: "load", Count: r.need(v * (1 + p.Headroom)), Detail: Detail{form: formReactive, x: v, role: r.words}}
	if !p.Predict || r.forecaster == nil {
		return reactive, Input{}, 0, false
	}
	horizon := p.Lead + p.Interval
	var est predictor.Estimate
	var err error
	form := formForecast
	if lf, ok := r.forecaster.(laterForecaster); ok {
		// Hosts asked for now serve once ready, from now+lead on: size them
		// for that stretch; the stretch before it was provided for by the
		// decisions of one lead time ago.
		est, err = lf.ForecastAfter(now, p.Lead, horizon)
		form = formForecastAfter
	} else {
		est, err = r.forecaster.Forecast(now, horizon)
	}
	switch {
	case errors.Is(err, predictor.ErrInsufficientHistory):
		reactive.Detail.text = "; no forecast yet (less than one season of history): reactive scaling with headroom"
		return reactive, Input{}, 0, false
	case err == nil && (math.IsNaN(est.Upper) || math.IsInf(est.Upper, 0)):
		err = fmt.Errorf("upper bound %v", est.Upper)
		fallthrough
	case err != nil:
		reactive.Detail.text = fmt.Sprintf("; forecast failed (%v): reactive scaling with headroom", err)
		return reactive, Input{}, 0, false
	}
	// With a forecast, its upper quantile is the margin: the load input
	// only makes sure the load seen now is carried (scale-up on a surge the
	// forecast missed), without stacking the headroom on top.
	load = Input{Source: "load", Count: r.need(v), Detail: Detail{form: formCarried, x: v, role: r.words}}
	q := est.Quantile
	if q == 0 {
		q = 0.95
	}
	n := r.need(est.Upper)
	forecast = Input{Source: "forecast", Count: n,
		Detail: Detail{form: form, x: est.Upper, q: q, n: n, text: est.Model, role: r.words}}
	return load, forecast, est.Upper, false
}

// remember adds the count wanted at now to the recent recommendations
// and forgets those made at or before now minus the stabilization.
func (r *Role) remember(now time.Time, count int) {
	cut := now.Add(-r.params.Stabilization)
	expired := func(rc recommendation) bool { return !rc.at.After(cut) }
	// Decisions come in time order, as a rule: the oldest expire first and
	// are left behind, not copied over, and the others need no look. When
	// the order is not known (a restore, a decision for an earlier now),
	// every one is looked at, and expired ones are dropped in place.
	for r.old < len(r.recent) && expired(r.recent[r.old]) {
		r.old++
	}
	if r.unordered {
		live := slices.DeleteFunc(r.recent[r.old:], expired)
		r.recent = r.recent[:r.old+len(live)]
		r.unordered = len(live) > 0
	}
	r.add(recommendation{at: now, count: count})
}

// add appends to the recent recommendations, moving the live ones to the
// front of their room rather than growing it while expired ones fill it.
func (r *Role) add(rc recommendation) {
	if len(r.recent) > r.old && rc.at.Before(r.recent[len(r.recent)-1].at) {
		r.unordered = true
	}
	if len(r.recent) == cap(r.recent) && r.old > 0 {
		n := copy(r.recent, r.recent[r.old:])
		r.recent, r.old = r.recent[:n], 0
	}
	r.recent = append(r.recent, rc)
}

func (r *Role) highestRecent() int {
	h := -1
	for _, rc := range r.recent[r.old:] {
		h = max(h, rc.count)
	}
	return h
}
