package deployer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

// TestReconcileFailedStartReplacedOrRetried: a stopped host whose start
// fails (an error, or it stops again before it is labelled) is reported
// failed and the failure is remembered in the label cache. At the next
// reconcile a stateless role's host is terminated and its label launched
// anew, without another start; a stateful role's host is started again,
// its error counting the failed starts and naming `tide replace`. A start
// that then goes through forgets the failures.
func TestReconcileFailedStartReplacedOrRetried(t *testing.T) {
	errBoot := errors.New("Server.InternalError")
	tests := []struct {
		name     string
		role     string
		stateful bool
		// fail makes the first starts fail: "error" (Start returns one) or
		// "dies" (the started host stops again while it boots).
		fail       string
		firstErr   string   // in the first failed start's error
		second     []string // the second reconcile's actions
		secondErr  string   // in its failed host's error
		starts     int      // start calls after both reconciles
		replaced   bool     // the label is on a new instance after the second
		thirdStart bool     // a third reconcile starts the first instance
	}{
		{
			name: "stateless start error: terminated and launched anew", role: "web", fail: "error",
			firstErr: "the next reconcile terminates {id} and launches web-1 anew",
			second:   []string{"web-1:removed", "web-1:launched"}, starts: 1, replaced: true,
		},
		{
			name: "stateless host dies while it boots: terminated and launched anew", role: "web", fail: "dies",
			firstErr: "is stopped",
			second:   []string{"web-1:removed", "web-1:launched"}, starts: 1, replaced: true,
		},
		{
			name: "stateful start error: started again, the failures counted", role: "db", stateful: true, fail: "error",
			firstErr:  "1 failed starts in a row",
			second:    []string{"db-1:failed(start)"},
			secondErr: "starting db-1 ({id}): Server.InternalError (2 failed starts in a row: {id} holds the role's data and is started again at each reconcile; to give its data up, `tide replace db-1 --discard-data --reason …`)",
			starts:    2, thirdStart: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.Deployer, h.opts.Drainer = h.dep, h.dep
			if tt.stateful {
				h.opts.Roles[1].Stateful = true
				h.dep.stateful = map[string]bool{"db": true}
			}
			desired := map[string]int{tt.role: 1}
			if rep := h.reconcile(t.Context(), desired); rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			first := h.cloud.live()[0]
			label := first.Label
			h.cloud.stop(first.ID)
			switch tt.fail {
			case "error":
				h.cloud.inject("start", errBoot)
				h.cloud.inject("start", errBoot)
			case "dies":
				h.cloud.mu.Lock()
				h.cloud.dies[label] = dying{lists: 0, as: fleet.StateStopped}
				h.cloud.mu.Unlock()
			}

			rep := h.reconcile(t.Context(), desired)
			if got := actions(rep); len(got) != 1 || !strings.HasPrefix(got[0], label+":failed(") {
				t.Fatalf("first reconcile = %q, want %s failed", got, label)
			}
			if want := strings.ReplaceAll(tt.firstErr, "{id}", first.ID); !strings.Contains(rep.Hosts[0].Err.Error(), want) {
				t.Errorf("first error %q, want it to contain %q", rep.Hosts[0].Err, want)
			}
			if got := h.cache().Starts[first.ID]; got.Failures != 1 || got.At.IsZero() {
				t.Errorf("cache start record %+v, want 1 failure", got)
			}
			if n := len(h.cloud.callsLike("launch")); n != 1 {
				t.Errorf("%d launch calls after the failed start, want the first only", n)
			}

			if tt.stateful {
				// Within the backoff the host is not tried again.
				rep = h.reconcile(t.Context(), desired)
				if got := actions(rep); len(got) != 1 || !strings.HasPrefix(got[0], label+":failed(") ||
					!strings.Contains(rep.Hosts[0].Err.Error(), "1 failed starts in a row, the next try at") {
					t.Fatalf("reconcile within the backoff = %q (%v), want %s failed, waiting", got, rep.Hosts[0].Err, label)
				}
				if n := len(h.cloud.callsLike("start ")); n != 1 {
					t.Errorf("%d start calls within the backoff, want the first only", n)
				}
				h.clk.Advance(startBackoff(1))
			}
			rep = h.reconcile(t.Context(), desired)
			if got := actions(rep); !slices.Equal(got, tt.second) {
				t.Fatalf("second reconcile = %q, want %q", got, tt.second)
			}
			for _, r := range rep.Hosts {
				if r.Action == ActionRemoved && (r.InstanceID != first.ID || r.Reason != ReasonStartFailed) {
					t.Errorf("removed %s (%s), want %s (%s)", r.InstanceID, r.Reason, first.ID, ReasonStartFailed)
				}
				if r.Action == ActionFailed {
					if want := strings.ReplaceAll(tt.secondErr, "{id}", first.ID); !strings.Contains(r.Err.Error(), want) {
						t.Errorf("second error %q, want it to contain %q", r.Err, want)
					}
				}
			}
			if n := len(h.cloud.callsLike("start ")); n != tt.starts {
				t.Errorf("%d start calls, want %d: %q", n, tt.starts, h.cloud.callsLike("start "))
			}
			if tt.replaced {
				h.checkFleet(label)
				if now := h.cloud.live()[0]; now.ID == first.ID {
					t.Errorf("%s still on %s, want a new instance", label, first.ID)
				}
				if got := h.cache().Starts; len(got) != 0 {
					t.Errorf("cache still records failed starts %+v after the termination", got)
				}
				return
			}
			if got := h.cache().Starts[first.ID]; got.Failures != 2 {
				t.Errorf("cache start record %+v, want 2 failures", got)
			}
			if !tt.thirdStart {
				return
			}
			h.clk.Advance(startBackoff(2))
			rep = h.reconcile(t.Context(), desired)
			if got := actions(rep); !slices.Equal(got, []string{label + ":started"}) || rep.Hosts[0].InstanceID != first.ID {
				t.Fatalf("third reconcile = %q on %s, want %s started on %s", got, rep.Hosts[0].InstanceID, label, first.ID)
			}
			if got := h.cache().Starts; len(got) != 0 {
				t.Errorf("cache still records failed starts %+v after a start that went through", got)
			}
			h.checkFleet(label)
		})
	}
}

// TestMakePlanStartFailures: a stateless role's stopped host with failed
// starts is replaced, a stateful one's started again.
func TestMakePlanStartFailures(t *testing.T) {
	roles := []Role{{Name: "web", Zones: []string{"a"}}, {Name: "db", Zones: []string{"a"}, Stateful: true}}
	failed := func(s string) Observed { o := host(s); o.StartFailures = 1; return o }
	hosts := []Observed{failed("web-1/i-1/stopped/0"), host("web-2/i-2/stopped/0"), failed("db-1/i-3/stopped/0")}
	p := MakePlan(roles, map[string]int{"web": 2, "db": 1}, hosts, PlanOptions{CanStart: true})
	launch, keep, remove := summarize(p)
	var start []string
	for _, h := range p.Start {
		start = append(start, h.Label+"/"+h.Instance.ID)
	}
	if !slices.Equal(launch, []string{"web-1@a"}) || len(keep) != 0 || !slices.Equal(start, []string{"db-1/i-3", "web-2/i-2"}) ||
		!slices.Equal(remove, []string{"web-1/i-1:start-failed"}) {
		t.Errorf("plan: launch %q keep %q start %q remove %q", launch, keep, start, remove)
	}
}

// duplicateDrainer is a recordingDeployer that drains duplicates apart.
type duplicateDrainer struct {
	*recordingDeployer
	mu   sync.Mutex
	dups []string // label/id, host given or "nil"
}

var _ DuplicateDrainer = (*duplicateDrainer)(nil)

func (d *duplicateDrainer) BeforeTerminateDuplicate(ctx context.Context, h Host, inst fleet.Instance) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := instanceLabel(inst) + "/" + inst.ID
	if h == nil {
		s += "/nil"
	}
	d.dups = append(d.dups, s)
	return nil
}

// TestReconcileDuplicateOfLiveHost: a stateful label's duplicate beside
// its live holder goes to BeforeTerminateDuplicate (not BeforeTerminate,
// whose backup would become the role's latest), a stopped one without
// being started; a Drainer that is no DuplicateDrainer gets the old call.
func TestReconcileDuplicateOfLiveHost(t *testing.T) {
	tests := []struct {
		name      string
		dupDrain  bool
		state     fleet.State // the duplicate's
		dups      []string    // BeforeTerminateDuplicate calls; {id} is the duplicate
		drained   []string    // BeforeTerminate calls with a host
		startCall int
	}{
		{name: "stopped duplicate: not started, no backup", dupDrain: true, state: fleet.StateStopped, dups: []string{"db-1/{id}/nil"}},
		{name: "running duplicate: drained without a backup", dupDrain: true, state: fleet.StateRunning, dups: []string{"db-1/{id}"}},
		{name: "plain Drainer: started and drained as before", state: fleet.StateStopped, drained: []string{"db-1"}, startCall: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.Roles[1].Stateful = true
			h.dep.stateful = map[string]bool{"db": true}
			dd := &duplicateDrainer{recordingDeployer: h.dep}
			h.opts.Drainer = h.dep
			if tt.dupDrain {
				h.opts.Drainer = dd
			}
			h.reconcile(t.Context(), map[string]int{"db": 1})
			live := h.cloud.live()[0]
			// Left by an older tide: a second db-1, newer, stopped or not.
			dup := h.cloud.add(fleet.Instance{Fleet: "office", Role: "db", Label: "db-1", State: tt.state,
				LaunchedAt: live.LaunchedAt.Add(1), Tags: map[string]string{fleet.TagLabel: "db-1"}})
			h.dep.drained, h.dep.nilHost = nil, nil

			rep := h.reconcile(t.Context(), map[string]int{"db": 1})
			if got := actions(rep); !slices.Equal(got, []string{"db-1:kept", "db-1:removed"}) {
				t.Fatalf("report = %q", got)
			}
			for _, r := range rep.Hosts {
				if r.Action == ActionRemoved && (r.InstanceID != dup.ID || r.Reason != ReasonDuplicate) {
					t.Errorf("removed %s (%s), want %s as a duplicate", r.InstanceID, r.Reason, dup.ID)
				}
			}
			var want []string
			for _, s := range tt.dups {
				want = append(want, strings.ReplaceAll(s, "{id}", dup.ID))
			}
			if !slices.Equal(dd.dups, want) {
				t.Errorf("duplicate drains %q, want %q", dd.dups, want)
			}
			if !slices.Equal(h.dep.drained, tt.drained) {
				t.Errorf("plain drains %q, want %q", h.dep.drained, tt.drained)
			}
			if n := len(h.cloud.callsLike("start ")); n != tt.startCall {
				t.Errorf("start calls %q, want %d", h.cloud.callsLike("start "), tt.startCall)
			}
			if got := h.cloud.live(); len(got) != 1 || got[0].ID != live.ID {
				t.Errorf("live %+v, want the holder %s alone", got, live.ID)
			}
		})
	}
}

// TestSettledStarts: failed starts are forgotten once their instance is
// gone or live again; a stopped one's are kept.
func TestSettledStarts(t *testing.T) {
	f := newCacheFile("office")
	for _, id := range []string{"i-stopped", "i-live", "i-gone", "i-stopping"} {
		f.Starts[id] = startRecord{Failures: 1}
	}
	insts := []fleet.Instance{
		{ID: "i-stopped", State: fleet.StateStopped}, {ID: "i-live", State: fleet.StateRunning},
		{ID: "i-stopping", State: fleet.StateStopping}, {ID: "i-other", State: fleet.StateStopped},
	}
	got := f.settledStarts(insts)
	slices.Sort(got)
	if want := []string{"i-gone", "i-live"}; !slices.Equal(got, want) {
		t.Errorf("settled %q, want %q", got, want)
	}
	if got := newCacheFile("office").settledStarts(insts); got != nil {
		t.Errorf("settled %q without records", got)
	}
}

func TestStartBackoff(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {5, 8 * time.Minute}, {6, 10 * time.Minute}, {60, 10 * time.Minute}} {
		if got := startBackoff(tt.n); got != tt.want {
			t.Errorf("startBackoff(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}
