package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/clock"
)

type fakeLoad struct {
	mu     sync.Mutex
	values map[string]float64
}

func (f *fakeLoad) Latest(_ context.Context, role string, now time.Time) (Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.values[role]
	if !ok {
		return Sample{}, errors.New("no data")
	}
	return Sample{At: now, Value: v}, nil
}

func (f *fakeLoad) set(role string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[role] = v
}

type fakeActuator struct {
	mu    sync.Mutex
	calls []map[string]int
}

func (f *fakeActuator) Apply(_ context.Context, desired map[string]int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := map[string]int{}
	for k, v := range desired {
		cp[k] = v
	}
	f.calls = append(f.calls, cp)
	return nil
}

func (f *fakeActuator) last() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return nil, 0
	}
	return f.calls[len(f.calls)-1], len(f.calls)
}

type fakeRecorder struct {
	mu   sync.Mutex
	recs []Record
}

func (f *fakeRecorder) RecordDecision(r Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, r)
	return nil
}

type fakeOverrides struct {
	mu  sync.Mutex
	ovs []Override
}

func (f *fakeOverrides) Overrides(now time.Time) ([]Override, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Override
	for _, o := range f.ovs {
		if o.Active(now) {
			out = append(out, o)
		}
	}
	return out, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoopStepsOnTheVirtualClock(t *testing.T) {
	vc := clock.NewVirtual(t0)
	load := &fakeLoad{values: map[string]float64{"web": 400}}
	act := &fakeActuator{}
	recd := &fakeRecorder{}
	ovs := &fakeOverrides{}
	p := baseParams()
	p.Predict = false
	l := NewLoop(&Plan{Roles: []*Role{NewRole(p, nil, nil)}, Interval: time.Minute},
		LoopDeps{Clock: vc, Load: load, Act: act, Record: recd, Overrides: ovs})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	waitFor(t, "first step", func() bool { _, n := act.last(); return n == 1 && vc.Waiters() == 1 })
	if d, _ := act.last(); d["web"] != 12 {
		t.Fatalf("first step desired %v, want web=12", d)
	}
	// An override, then a kick: the next step applies it without waiting a tick.
	ovs.mu.Lock()
	ovs.ovs = []Override{{Role: "web", Kind: Pin, Count: 3, Until: t0.Add(time.Hour), Reason: "test"}}
	ovs.mu.Unlock()
	l.Kick()
	waitFor(t, "kicked step", func() bool { d, n := act.last(); return n == 2 && d["web"] == 3 })
	// The tick.
	waitFor(t, "loop waiting", func() bool { return vc.Waiters() >= 1 })
	load.set("web", 800)
	vc.Advance(2 * time.Hour) // the override expired
	waitFor(t, "tick step", func() bool { d, n := act.last(); return n >= 3 && d["web"] == 20 })
	recs, at, err := l.Last()
	if len(recs) != 1 || recs[0].Desired != 20 || !at.Equal(t0.Add(2*time.Hour)) || err != nil {
		t.Fatalf("Last: %v %v %v", recs, at, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	recd.mu.Lock()
	defer recd.mu.Unlock()
	if len(recd.recs) < 3 {
		t.Fatalf("recorded %d decisions, want at least 3", len(recd.recs))
	}
}

func TestLoopReloadKeepsRoleMemory(t *testing.T) {
	vc := clock.NewVirtual(t0)
	load := &fakeLoad{values: map[string]float64{"web": 400}}
	p := baseParams()
	p.Predict = false
	l := NewLoop(&Plan{Roles: []*Role{NewRole(p, nil, nil)}}, LoopDeps{Clock: vc, Load: load})
	ctx := context.Background()
	if recs := l.Step(ctx); recs[0].Desired != 12 {
		t.Fatalf("desired %d, want 12", recs[0].Desired)
	}
	// A new plan with a lower max and a new role; web keeps its previous count
	// and its stabilization memory.
	p2 := p
	p2.Max = 30
	worker := Params{Role: "worker", Min: 2, Max: 4}
	l.swap(&Plan{Roles: []*Role{NewRole(p2, nil, nil), NewRole(worker, nil, nil)}})
	load.set("web", 40)
	vc.Advance(time.Minute)
	recs := l.Step(ctx)
	if recs[0].Previous != 12 || recs[0].Desired != 12 {
		t.Fatalf("after reload web went %d -> %d, want 12 held by stabilization\n%s", recs[0].Previous, recs[0].Desired, recs[0])
	}
	if recs[1].Desired != 2 {
		t.Fatalf("new role worker: %d, want 2", recs[1].Desired)
	}
}

func TestLoopMissingMetricFreezes(t *testing.T) {
	vc := clock.NewVirtual(t0)
	load := &fakeLoad{values: map[string]float64{"web": 400}}
	p := baseParams()
	p.Predict = false
	l := NewLoop(&Plan{Roles: []*Role{NewRole(p, nil, nil)}}, LoopDeps{Clock: vc, Load: load})
	l.Step(context.Background())
	load.mu.Lock()
	delete(load.values, "web")
	load.mu.Unlock()
	vc.Advance(time.Hour)
	recs := l.Step(context.Background())
	if !recs[0].Frozen || recs[0].Desired != 12 {
		t.Fatalf("missing metric: %s", recs[0])
	}
}

// failingActuator fails with the errors it is given, one per Apply.
type failingActuator struct{ errs []error }

func (f *failingActuator) Apply(context.Context, map[string]int) error {
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

// TestLoopLogsAnApplyErrorOnce: an error that lasts is logged when it
// appears and when it changes, not at every step; its end is logged too.
func TestLoopLogsAnApplyErrorOnce(t *testing.T) {
	vc := clock.NewVirtual(t0)
	load := &fakeLoad{values: map[string]float64{"web": 100}}
	denied := errors.New("ec2 authentication failed")
	act := &failingActuator{errs: []error{denied, denied, denied, nil, denied, errors.New("throttled"), nil}}
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	l := NewLoop(&Plan{Roles: []*Role{NewRole(baseParams(), nil, nil)}}, LoopDeps{Clock: vc, Load: load, Act: act, Logger: logger})
	for range 7 {
		l.Step(context.Background())
		vc.Advance(time.Minute)
	}
	out := logged.String()
	if n := strings.Count(out, `msg="apply failed"`); n != 3 {
		t.Errorf("apply failed logged %d times, want 3 (when it appears, again after a success, and when it changes):\n%s", n, out)
	}
	if n := strings.Count(out, `msg="apply succeeded again"`); n != 2 {
		t.Errorf("apply succeeded again logged %d times, want 2:\n%s", n, out)
	}
}
