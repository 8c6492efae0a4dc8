package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tideops/tide/clock"
)

// LoadReader returns a role's newest load sample. An error means the metric
// is missing; the role then freezes (never a zero).
type LoadReader interface {
	Latest(ctx context.Context, role string, now time.Time) (Sample, error)
}

// Actuator converges the fleet to the desired counts (the deployer's launch
// pipeline, in the service).
type Actuator interface {
	Apply(ctx context.Context, desired map[string]int) error
}

// Recorder keeps decisions (the state store, in the service).
type Recorder interface {
	RecordDecision(rec Record) error
}

// OverrideSource lists the overrides in force.
type OverrideSource interface {
	Overrides(now time.Time) ([]Override, error)
}

// Plan is the set of roles the loop decides for; a reload replaces it.
type Plan struct {
	Roles    []*Role
	Interval time.Duration
}

// Loop is the service's control loop. Each tick is one synchronous step:
//
//	observe (load per role) -> decide (Role.Decide, pure) -> act (Actuator) -> record
//
// Run selects over cancellation, the next tick and plan reloads:
//
//	        +-----------+  tick   +------+
//	start ->|  waiting  |-------->| step |--+
//	        +-----------+<--------+------+  |
//	          |     ^   reload: swap plan,  |
//	          |     +-- keep role memory ---+
//	          v ctx done
//	        stopped
type Loop struct {
	clock     clock.Clock
	load      LoadReader
	act       Actuator
	record    Recorder
	overrides OverrideSource
	logger    *slog.Logger
	reloads   chan *Plan
	kick      chan struct{}

	mu       sync.Mutex
	plan     *Plan
	last     map[string]Record
	lastErr  error
	lastStep time.Time
}

// LoopDeps are the loop's collaborators; Load, Act, Record and Overrides may be nil.
type LoopDeps struct {
	Clock     clock.Clock
	Load      LoadReader
	Act       Actuator
	Record    Recorder
	Overrides OverrideSource
	Logger    *slog.Logger
}

// NewLoop returns a loop over plan.
func NewLoop(plan *Plan, d LoopDeps) *Loop {
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if plan.Interval <= 0 {
		plan.Interval = time.Minute
	}
	return &Loop{clock: d.Clock, load: d.Load, act: d.Act, record: d.Record, overrides: d.Overrides,
		logger: d.Logger.With("component", "loop"), reloads: make(chan *Plan, 1), kick: make(chan struct{}, 1),
		plan: plan, last: map[string]Record{}}
}

// Reload hands the loop a new plan; roles with the same name keep their
// memory (previous count, recent recommendations, latest sample, forecaster).
func (l *Loop) Reload(p *Plan) {
	select {
	case <-l.reloads:
	default:
	}
	l.reloads <- p
}

// Kick asks for a step now instead of at the next tick (after an override).
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run steps every interval until ctx ends.
func (l *Loop) Run(ctx context.Context) error {
	for {
		l.Step(ctx)
		l.mu.Lock()
		interval := l.plan.Interval
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.clock.After(interval):
		case <-l.kick:
		case p := <-l.reloads:
			l.swap(p)
		}
	}
}

func (l *Loop) swap(p *Plan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := map[string]*Role{}
	for _, r := range l.plan.Roles {
		old[r.params.Role] = r
	}
	for _, r := range p.Roles {
		if o, ok := old[r.params.Role]; ok {
			r.inherit(o)
		}
	}
	if p.Interval <= 0 {
		p.Interval = l.plan.Interval
	}
	l.plan = p
	l.logger.Info("plan reloaded", "roles", len(p.Roles))
}

// Step runs one observe-decide-act-record round and returns the decisions.
func (l *Loop) Step(ctx context.Context) []Record {
	recs, desired := l.decide(ctx)
	var err error
	if l.act != nil {
		// Acting may take minutes (launches, SSH); the lock is not held so
		// that Last stays responsive.
		if err = l.act.Apply(ctx, desired); err != nil {
			err = fmt.Errorf("applying desired counts: %w", err)
		}
	}
	l.mu.Lock()
	prev := l.lastErr
	l.lastErr = err
	l.mu.Unlock()
	// An error is logged when it appears or changes, not at every step
	// it lasts (a cloud refusing the credentials fails every step).
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		l.logger.Error("apply failed", "err", err)
	case err == nil && prev != nil:
		l.logger.Info("apply succeeded again", "after", prev.Error())
	}
	return recs
}

func (l *Loop) decide(ctx context.Context) ([]Record, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	var ovs []Override
	if l.overrides != nil {
		var err error
		if ovs, err = l.overrides.Overrides(now); err != nil {
			l.logger.Error("listing overrides failed", "err", err)
		}
	}
	desired := map[string]int{}
	recs := make([]Record, 0, len(l.plan.Roles))
	for _, r := range l.plan.Roles {
		name := r.params.Role
		if l.load != nil && r.params.LoadDriven {
			s, err := l.load.Latest(ctx, name, now)
			if err != nil {
				l.logger.Warn("load metric missing", "role", name, "err", err)
			} else {
				r.Observe(s)
			}
		}
		var ov *Override
		for i := range ovs {
			if ovs[i].Role == name {
				ov = &ovs[i]
			}
		}
		rec := r.Decide(now, ov)
		recs = append(recs, rec)
		desired[name] = rec.Desired
		l.last[name] = rec
		if l.record != nil {
			if err := l.record.RecordDecision(rec); err != nil {
				l.logger.Error("recording decision failed", "role", name, "err", err)
			}
		}
		if rec.Desired != rec.Previous {
			l.logger.Info("desired count changed", "role", name, "from", rec.Previous, "to", rec.Desired, "winner", rec.Winner)
		}
	}
	l.lastStep = now
	return recs, desired
}

// Last returns the latest decision of each role, sorted by role, the time
// of the last step and the error of its act phase.
func (l *Loop) Last() ([]Record, time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Record, 0, len(l.last))
	for _, r := range l.last {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out, l.lastStep, l.lastErr
}

// inherit takes over another Role's memory (after a reload).
func (r *Role) inherit(o *Role) {
	r.desired, r.latest, r.hasLatest = o.desired, o.latest, o.hasLatest
	r.recent, r.old, r.unordered = o.recent, o.old, o.unordered
	if r.forecaster == nil || o.forecaster != nil {
		r.forecaster = o.forecaster
	}
}
