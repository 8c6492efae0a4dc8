package simulate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/trace"
)

// Strategy names, as they appear in the timeline and the summary.
const (
	Tide         = "tide"
	StaticPeak   = "static_peak"
	Reactive     = "reactive"
	ScheduleOnly = "schedule_only"
)

// ReactiveHeadroom is the headroom of the reactive baseline: target
// tracking that keeps 20% above the current load.
const ReactiveHeadroom = 0.2

// Role is one role to simulate.
type Role struct {
	// Params are the role's decision parameters. Params.Interval and
	// Params.Lead are set by Run from the trace step and Options.Lead.
	Params scheduler.Params
	// Windows are the role's schedule windows (may be empty).
	Windows policies.Set
	// Capacity is the load one ready host serves during a step, in the
	// trace's unit.
	Capacity float64
	// NewForecaster returns tide's forecaster for a trace of the given
	// step; nil means tide decides without a forecast.
	NewForecaster func(step time.Duration) scheduler.Forecaster
}

// Options are the simulation's settings.
type Options struct {
	// Lead is how long a host takes from being asked for to being ready.
	Lead time.Duration
}

// Row is one step of one strategy's timeline.
type Row struct {
	At   time.Time
	Load float64
	// Forecast is the load forecast the decision used; NaN when none.
	Forecast float64
	// Desired is the count decided at this step; Ready the hosts able to
	// serve during it.
	Desired, Ready int
}

// HasForecast reports whether the decision used a forecast.
func (r Row) HasForecast() bool { return !math.IsNaN(r.Forecast) }

// Outcome is what one strategy did on the trace.
type Outcome struct {
	Strategy string
	Rows     []Row
	Metrics  Metrics
}

// Result is a simulation of one role: tide and the baselines on one trace.
type Result struct {
	Role     string
	Trace    string
	Step     time.Duration
	Lead     time.Duration
	Capacity float64
	Min, Max int
	Gaps     []trace.Gap
	Tide     Outcome
	// Baselines are static_peak, reactive and schedule_only, in that order.
	Baselines []Outcome
}

// Baseline returns the baseline outcome with the given strategy name.
func (r *Result) Baseline(name string) (Outcome, bool) {
	for _, b := range r.Baselines {
		if b.Strategy == name {
			return b, true
		}
	}
	return Outcome{}, false
}

// decider makes one strategy's decisions, one row after another.
type decider interface {
	// decide is called once per row, in order; it returns the desired
	// count and the forecast used (NaN if none).
	decide(p trace.Point) (int, float64)
}

// roleDecider runs scheduler.Role: the same decision code as the service.
type roleDecider struct {
	role    *scheduler.Role
	winners map[string]int
}

func (d *roleDecider) decide(p trace.Point) (int, float64) {
	d.role.Observe(scheduler.Sample{At: p.At, Value: p.Value})
	rec := d.role.Decide(p.At, nil)
	d.winners[rec.Winner]++
	f := math.NaN()
	if rec.Forecast != nil {
		f = *rec.Forecast
	}
	return rec.Desired, f
}

type staticDecider int

func (d staticDecider) decide(trace.Point) (int, float64) { return int(d), math.NaN() }

// ErrBadOptions is wrapped by errors about the simulation's inputs.
var ErrBadOptions = errors.New("bad simulation options")

// Run simulates the role on the trace: tide (the role's own parameters and
// windows, with its forecaster) and the baselines. ctx is checked between
// strategies.
func Run(ctx context.Context, tr *trace.Trace, role Role, o Options) (*Result, error) {
	if tr == nil || len(tr.Points) == 0 || tr.Step <= 0 {
		return nil, fmt.Errorf("%w: the trace is empty or has no step", ErrBadOptions)
	}
	if role.Capacity <= 0 || math.IsNaN(role.Capacity) || math.IsInf(role.Capacity, 0) {
		return nil, fmt.Errorf("%w: capacity per instance must be positive, got %g", ErrBadOptions, role.Capacity)
	}
	if o.Lead < 0 {
		return nil, fmt.Errorf("%w: lead must not be negative, got %s", ErrBadOptions, o.Lead)
	}
	p := role.Params
	if p.Min < 0 || p.Max < p.Min {
		return nil, fmt.Errorf("%w: want 0 <= min <= max, got min %d, max %d", ErrBadOptions, p.Min, p.Max)
	}
	p.Interval, p.Lead = tr.Step, o.Lead
	res := &Result{Role: p.Role, Trace: tr.Name, Step: tr.Step, Lead: o.Lead, Capacity: role.Capacity,
		Min: p.Min, Max: p.Max, Gaps: tr.Gaps()}

	var f scheduler.Forecaster
	if role.NewForecaster != nil && p.Predict {
		f = role.NewForecaster(tr.Step)
	}
	tide := &roleDecider{role: scheduler.NewRole(p, role.Windows, f), winners: map[string]int{}}

	rp := p
	// Target tracking on the host's capacity: ceil(load*1.2/capacity).
	rp.LoadDriven, rp.Predict, rp.Headroom, rp.Target = true, false, ReactiveHeadroom, role.Capacity
	reactive := &roleDecider{role: scheduler.NewRole(rp, nil, nil), winners: map[string]int{}}

	sp := p
	sp.LoadDriven, sp.Predict = false, false
	sched := &roleDecider{role: scheduler.NewRole(sp, role.Windows, nil), winners: map[string]int{}}

	static := max(p.Min, need(tr.Max(), role.Capacity))

	runs := []struct {
		name string
		d    decider
	}{{Tide, tide}, {StaticPeak, staticDecider(static)}, {Reactive, reactive}, {ScheduleOnly, sched}}
	for _, r := range runs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := replay(tr, o.Lead, r.d)
		out := Outcome{Strategy: r.name, Rows: rows, Metrics: Measure(rows, tr.Step, role.Capacity, p.Min)}
		if rd, ok := r.d.(*roleDecider); ok {
			out.Metrics.Winners = rd.winners
		}
		if r.name == Tide {
			res.Tide = out
		} else {
			res.Baselines = append(res.Baselines, out)
		}
	}
	return res, nil
}

// need is the hosts needed to serve load at capacity per host.
func need(load, capacity float64) int {
	if load <= 0 {
		return 0
	}
	return int(math.Ceil(load/capacity - 1e-9))
}

// replay runs one decider over the trace with the simulated fleet.
func replay(tr *trace.Trace, lead time.Duration, d decider) []Row {
	leadSteps := time.Duration(math.Ceil(float64(lead) / float64(tr.Step)))
	delay := leadSteps * tr.Step
	rows := make([]Row, len(tr.Points))
	var (
		ready   int
		pending []time.Time // ready-at instants, in launch order
	)
	mature := func(t time.Time) {
		n := 0
		for n < len(pending) && !pending[n].After(t) {
			n++
		}
		ready += n
		pending = pending[n:]
	}
	for i, pt := range tr.Points {
		mature(pt.At)
		desired, fc := d.decide(pt)
		if i == 0 {
			ready = desired // warm start
		}
		if n := ready + len(pending); desired > n {
			at := pt.At.Add(delay)
			for range desired - n {
				pending = append(pending, at)
			}
		} else if desired < n {
			cut := n - desired
			drop := min(cut, len(pending))
			pending = pending[:len(pending)-drop]
			ready -= cut - drop
		}
		mature(pt.At) // a zero lead serves at once
		rows[i] = Row{At: pt.At, Load: pt.Value, Forecast: fc, Desired: desired, Ready: ready}
	}
	return rows
}
