package scheduler

import (
	"errors"
	"fmt"
	"math"
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
	latest     *Sample
	desired    int
	recent     []recommendation
}

// NewRole returns a decider for one role. windows may be empty and
// forecaster nil (then the load input is reactive only).
func NewRole(p Params, windows policies.Set, f Forecaster) *Role {
	return &Role{params: p, windows: windows, forecaster: f}
}

// Params returns the role's parameters.
func (r *Role) Params() Params { return r.params }

// Desired returns the count of the last decision.
func (r *Role) Desired() int { return r.desired }

// Restore sets the previous desired count, as after a service restart: the
// count counts as wanted at, so stabilization holds it as it would have.
func (r *Role) Restore(desired int, at time.Time) {
	r.desired = desired
	r.recent = append(r.recent, recommendation{at: at, count: desired})
}

// Observe records a load sample and feeds it to the forecaster. Samples
// older than the latest one still reach the forecaster but do not replace
// the latest.
func (r *Role) Observe(s Sample) {
	if r.forecaster != nil {
		r.forecaster.Observe(s.At, s.Value)
	}
	if r.latest == nil || !s.At.Before(r.latest.At) {
		cp := s
		r.latest = &cp
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

	// Inputs, in order of precedence for ties.
	var inputs []Input
	exact, exactSource := -1, ""
	if ov != nil && ov.Kind == FloorOverride {
		inputs = append(inputs, Input{Source: "override", Count: ov.Count, Detail: ov.describe()})
	}
	for _, pr := range r.windows.At(now) {
		src := "policy:" + pr.Policy
		inputs = append(inputs, Input{Source: src, Count: pr.Count, Detail: pr.Reason})
		if pr.Mode == policies.Exact && pr.Count > exact {
			exact, exactSource = pr.Count, src
		}
	}
	frozen := false
	if p.LoadDriven {
		in, fin, f := r.loadInputs(now, prev)
		frozen = f
		inputs = append(inputs, in)
		if !frozen {
			v := r.latest.Value
			rec.Load = &v
		}
		if fin != nil {
			inputs = append(inputs, fin.Input)
			u := fin.upper
			rec.Forecast = &u
		}
	}
	inputs = append(inputs, Input{Source: "min", Count: p.Min, Detail: "role minimum"})

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
		inputs = append([]Input{{Source: "override", Count: ov.Count, Detail: ov.describe()}}, inputs...)
		raw, winner = ov.Count, "override"
		rec.Steps = append(rec.Steps, Step{Kind: "pin", From: raw, To: raw, Detail: "pinned by an operator: policies and load are ignored"})
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
			rec.Steps = append(rec.Steps, Step{Kind: "clamp-min", From: desired, To: p.Min, Detail: fmt.Sprintf("role minimum is %d", p.Min)})
			desired = p.Min
		}
		if desired > p.Max {
			rec.Steps = append(rec.Steps, Step{Kind: "clamp-max", From: desired, To: p.Max, Detail: fmt.Sprintf("role maximum is %d", p.Max)})
			desired = p.Max
		}
	}
	immediate := (ov != nil && ov.Kind == Pin) || (exact >= 0 && winner == exactSource)
	if frozen && desired < prev && !immediate {
		rec.Steps = append(rec.Steps, Step{Kind: "freeze", From: desired, To: prev, Detail: "load metric missing or stale: capacity is not lowered"})
		desired = prev
	}
	r.remember(now, desired)
	if desired < prev && !immediate {
		if held := r.highestRecent(); held > desired {
			to := min(held, prev)
			rec.Steps = append(rec.Steps, Step{Kind: "stabilization", From: desired, To: to,
				Detail: fmt.Sprintf("%d hosts were wanted within the last %s", held, p.Stabilization)})
			desired = to
		}
		if p.MaxStep > 0 && prev-desired > p.MaxStep {
			rec.Steps = append(rec.Steps, Step{Kind: "step-limit", From: desired, To: prev - p.MaxStep,
				Detail: fmt.Sprintf("at most %d hosts removed per decision", p.MaxStep)})
			desired = prev - p.MaxStep
		}
	}
	if immediate && exact >= 0 && winner == exactSource && desired != raw {
		// An exact window still respects min/max; say so.
		rec.Steps = append(rec.Steps, Step{Kind: "exact", From: raw, To: desired, Detail: "exact window limited by min/max"})
	}
	rec.Desired = desired
	r.desired = desired
	return rec
}

// loadInputs builds the load input (reactive) and the forecast input.
type forecastInput struct {
	Input
	upper float64
}

func (r *Role) loadInputs(now time.Time, prev int) (Input, *forecastInput, bool) {
	p := r.params
	if r.latest == nil {
		return Input{Source: "load", Count: prev, Detail: "no load sample yet: holding the current count"}, nil, true
	}
	age := now.Sub(r.latest.At)
	if p.MaxAge > 0 && age > p.MaxAge {
		return Input{Source: "load", Count: prev, Detail: fmt.Sprintf("load metric stale: newest sample is %s old (max %s): holding the current count", age.Round(time.Second), p.MaxAge)}, nil, true
	}
	v := r.latest.Value
	reactive := func() Input {
		return Input{Source: "load", Count: r.need(v * (1 + p.Headroom)),
			Detail: fmt.Sprintf("load %.4g + %.0f%% headroom at %.4g per host", v, p.Headroom*100, p.Target)}
	}
	if !p.Predict || r.forecaster == nil {
		return reactive(), nil, false
	}
	horizon := p.Lead + p.Interval
	var est predictor.Estimate
	var err error
	window := fmt.Sprintf("within %s", horizon)
	if lf, ok := r.forecaster.(laterForecaster); ok {
		// Hosts asked for now serve once ready, from now+lead on: size them
		// for that stretch; the stretch before it was provided for by the
		// decisions of one lead time ago.
		est, err = lf.ForecastAfter(now, p.Lead, horizon)
		window = fmt.Sprintf("in %s to %s", p.Lead, horizon)
	} else {
		est, err = r.forecaster.Forecast(now, horizon)
	}
	switch {
	case errors.Is(err, predictor.ErrInsufficientHistory):
		in := reactive()
		in.Detail += "; no forecast yet (less than one season of history): reactive scaling with headroom"
		return in, nil, false
	case err != nil:
		in := reactive()
		in.Detail += fmt.Sprintf("; forecast failed (%v): reactive scaling with headroom", err)
		return in, nil, false
	}
	// With a forecast, its upper quantile is the margin: the load input
	// only makes sure the load seen now is carried (scale-up on a surge the
	// forecast missed), without stacking the headroom on top.
	in := Input{Source: "load", Count: r.need(v),
		Detail: fmt.Sprintf("load %.4g at %.4g per host (the forecast's upper bound is the headroom)", v, p.Target)}
	q := est.Quantile
	if q == 0 {
		q = 0.95
	}
	fin := &forecastInput{upper: est.Upper, Input: Input{Source: "forecast", Count: r.need(est.Upper),
		Detail: fmt.Sprintf("forecast p%.0f %.4g %s: %d hosts needed at %.4g per host (%s)", q*100, est.Upper, window, r.need(est.Upper), p.Target, est.Model)}}
	return in, fin, false
}

func (r *Role) remember(now time.Time, count int) {
	cut := now.Add(-r.params.Stabilization)
	kept := r.recent[:0]
	for _, rc := range r.recent {
		if rc.at.After(cut) {
			kept = append(kept, rc)
		}
	}
	r.recent = append(kept, recommendation{at: now, count: count})
}

func (r *Role) highestRecent() int {
	h := -1
	for _, rc := range r.recent {
		h = max(h, rc.count)
	}
	return h
}
