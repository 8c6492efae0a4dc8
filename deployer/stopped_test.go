package deployer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tideops/tide/fleet"
)

// TestReconcileStoppedHosts: a stopped host that holds a wanted label is
// started again and converged, not replaced beside it; one that holds a
// label not wanted is removed (a stateful one started first, to be backed
// up); without a Starter a stateless label is launched anew and a
// stateful one is reported failed, with nothing launched.
func TestReconcileStoppedHosts(t *testing.T) {
	tests := []struct {
		name     string
		noStart  bool           // the cloud is no Starter
		stateful bool           // db is stateful
		first    map[string]int // the fleet before the stops
		stop     []string       // labels whose hosts stop
		desired  map[string]int // the reconcile under test
		inject   map[string]error
		want     []string // its actions
		starts   []string // labels started
		launches int      // launch calls
		live     []string // live labels after it
		drained  []string // hosts drained with a host
		nilHost  []string // hosts drained without one
		errText  string   // in the failed host's error; {id} is its instance
		same     []string // labels still on their first instance
	}{
		{
			name:    "stopped wanted label started",
			first:   map[string]int{"web": 2},
			stop:    []string{"web-2"},
			desired: map[string]int{"web": 2},
			want:    []string{"web-1:kept", "web-2:started"},
			starts:  []string{"web-2"},
			live:    []string{"web-1", "web-2"},
			same:    []string{"web-1", "web-2"},
		},
		{
			name:     "stateful stopped wanted label started, not restored beside it",
			stateful: true,
			first:    map[string]int{"db": 1},
			stop:     []string{"db-1"},
			desired:  map[string]int{"db": 1},
			want:     []string{"db-1:started"},
			starts:   []string{"db-1"},
			live:     []string{"db-1"},
			same:     []string{"db-1"},
		},
		{
			name:    "stopped label above the count terminated without a start",
			first:   map[string]int{"web": 2},
			stop:    []string{"web-2"},
			desired: map[string]int{"web": 1},
			want:    []string{"web-1:kept", "web-2:removed"},
			live:    []string{"web-1"},
			nilHost: []string{"web-2"},
		},
		{
			name:     "stateful stopped label above the count started, backed up, terminated",
			stateful: true,
			first:    map[string]int{"db": 2},
			stop:     []string{"db-2"},
			desired:  map[string]int{"db": 1},
			want:     []string{"db-1:kept", "db-2:removed"},
			starts:   []string{"db-2"},
			live:     []string{"db-1"},
			drained:  []string{"db-2"},
		},
		{
			name:     "stateful stopped label above the count kept without a Starter",
			noStart:  true,
			stateful: true,
			first:    map[string]int{"db": 2},
			stop:     []string{"db-2"},
			desired:  map[string]int{"db": 1},
			want:     []string{"db-1:kept", "db-2:failed(stopped-with-data)"},
			live:     []string{"db-1"},
			errText:  "db-2 ({id}) is stopped and holds the role's data: the cloud cannot start it to back it up",
		},
		{
			name:     "stateful stopped wanted label without a Starter: failed, nothing launched",
			noStart:  true,
			stateful: true,
			first:    map[string]int{"db": 1},
			stop:     []string{"db-1"},
			desired:  map[string]int{"db": 1},
			want:     []string{"db-1:failed(stopped-with-data)"},
			errText:  "db-1 ({id}) is stopped and holds the role's data: start it, or `tide replace db-1 --discard-data --reason …`",
		},
		{
			name:     "stateless stopped wanted label without a Starter: launched anew, the stopped one removed",
			noStart:  true,
			first:    map[string]int{"web": 1},
			stop:     []string{"web-1"},
			desired:  map[string]int{"web": 1},
			want:     []string{"web-1:removed", "web-1:launched"},
			launches: 2, // the label's token gives the stopped one: next generation
			live:     []string{"web-1"},
			nilHost:  []string{"web-1"},
		},
		{
			name:    "start fails: failed, nothing launched",
			first:   map[string]int{"web": 1},
			stop:    []string{"web-1"},
			desired: map[string]int{"web": 1},
			inject:  map[string]error{"start": &fleet.InsufficientCapacityError{Type: "small", Zone: "a", Err: errors.New("InsufficientInstanceCapacity")}},
			want:    []string{"web-1:failed(capacity)"},
			starts:  []string{"web-1"},
			errText: "starting: starting web-1 ({id}): ",
		},
		{
			name:    "start fails for another cause",
			first:   map[string]int{"web": 1},
			stop:    []string{"web-1"},
			desired: map[string]int{"web": 1},
			inject:  map[string]error{"start": errors.New("IncorrectInstanceState")},
			want:    []string{"web-1:failed(start)"},
			starts:  []string{"web-1"},
			errText: "starting web-1 ({id}): IncorrectInstanceState",
		},
		{
			name:    "role not managed: its stopped host left alone",
			first:   map[string]int{"web": 1, "db": 1},
			stop:    []string{"db-1"},
			desired: map[string]int{"web": 1},
			want:    []string{"web-1:kept"},
			live:    []string{"web-1"},
			same:    []string{"web-1"},
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
			if rep := h.reconcile(t.Context(), tt.first); rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			first := map[string]fleet.Instance{}
			for _, in := range h.cloud.live() {
				first[in.Label] = in
			}
			for _, l := range tt.stop {
				h.cloud.stop(first[l].ID)
			}
			if tt.noStart {
				h.opts.Cloud = cannotStart{h.cloud}
			}
			for op, err := range tt.inject {
				h.cloud.inject(op, err)
			}
			launched := len(h.cloud.callsLike("launch"))
			h.dep.converged, h.dep.drained, h.dep.nilHost = nil, nil, nil

			rep := h.reconcile(t.Context(), tt.desired)
			if got := actions(rep); !slices.Equal(got, tt.want) {
				t.Fatalf("report = %q, want %q", got, tt.want)
			}
			var starts []string
			for _, c := range h.cloud.callsLike("start ") {
				for l, in := range first {
					if c == "start "+in.ID {
						starts = append(starts, l)
					}
				}
			}
			if !slices.Equal(starts, tt.starts) {
				t.Errorf("started %q, want %q", starts, tt.starts)
			}
			if n := len(h.cloud.callsLike("launch")) - launched; n != tt.launches {
				t.Errorf("%d launches, want %d: %q", n, tt.launches, h.cloud.callsLike("launch"))
			}
			if got := h.cloud.liveLabels(); !slices.Equal(got, tt.live) {
				t.Errorf("live labels %q, want %q", got, tt.live)
			}
			withHost := slices.DeleteFunc(slices.Clone(h.dep.drained), func(l string) bool { return slices.Contains(h.dep.nilHost, l) })
			if !slices.Equal(withHost, tt.drained) || !slices.Equal(h.dep.nilHost, tt.nilHost) {
				t.Errorf("drained %q, without a host %q; want %q and %q", withHost, h.dep.nilHost, tt.drained, tt.nilHost)
			}
			for _, l := range tt.same {
				var now fleet.Instance
				for _, in := range h.cloud.live() {
					if in.Label == l {
						now = in
					}
				}
				if now.ID != first[l].ID {
					t.Errorf("%s is on %s, want its first instance %s", l, now.ID, first[l].ID)
				}
			}
			for _, r := range rep.Hosts {
				if want := strings.ReplaceAll(tt.errText, "{id}", r.InstanceID); r.Action == ActionFailed && !strings.Contains(r.Err.Error(), want) {
					t.Errorf("%s's error %q, want it to contain %q", r.Label, r.Err, want)
				}
				if r.Action != ActionStarted {
					continue
				}
				// A started host went the launch's way: address, its host
				// key checked against the console, LABEL, the cache, and
				// the Deployer.
				if r.Address == "" || r.Durations.LaunchToAddress <= 0 {
					t.Errorf("%s started: address %q, durations %+v", r.Label, r.Address, r.Durations)
				}
				if got := h.dialer.expected[r.Address]; !slices.Equal(got, []string{"SHA256:" + r.InstanceID}) {
					t.Errorf("%s dialled expecting %q, want its console's fingerprint", r.Label, got)
				}
				if !slices.Contains(h.dep.converged, r.Label) {
					t.Errorf("%s started but not converged: %q", r.Label, h.dep.converged)
				}
				if e, ok := h.cache().Hosts[r.InstanceID]; !ok || e.Label != r.Label || e.Address != r.Address {
					t.Errorf("%s started: cache entry %+v (%v)", r.Label, e, ok)
				}
			}
			if tt.live != nil && rep.Err() == nil {
				h.checkFleet(tt.live...)
			}
			if len(tt.starts) > 0 && rep.Count(ActionStarted) > 0 && !strings.Contains(rep.Summary(), "started") {
				t.Errorf("summary %q does not say what was started", rep.Summary())
			}
		})
	}
}

// TestReconcileStartFailsRetried: a stopped host whose start fails is
// reported failed and its label is not launched beside it; a reconcile
// after the backoff starts it, and no duplicate is ever launched.
func TestReconcileStartFailsRetried(t *testing.T) {
	h := newHarness(t)
	h.opts.Roles[1].Stateful = true
	h.opts.Deployer = h.dep
	h.reconcile(t.Context(), map[string]int{"db": 1})
	db1 := h.cloud.live()[0]
	h.cloud.stop(db1.ID)
	h.cloud.inject("start", errors.New("Server.InternalError"))

	rep := h.reconcile(t.Context(), map[string]int{"db": 1})
	if got := actions(rep); !slices.Equal(got, []string{"db-1:failed(start)"}) || rep.Hosts[0].Intended != ActionStarted {
		t.Fatalf("first reconcile = %q (intended %s)", got, rep.Hosts[0].Intended)
	}
	if n := len(h.cloud.live()); n != 0 {
		t.Fatalf("%d live hosts after the failed start, want none", n)
	}
	h.clk.Advance(startBackoff(1)) // the next try waits that long
	rep = h.reconcile(t.Context(), map[string]int{"db": 1})
	if got := actions(rep); !slices.Equal(got, []string{"db-1:started"}) || rep.Hosts[0].InstanceID != db1.ID {
		t.Fatalf("second reconcile = %q on %s, want db-1 started on %s", got, rep.Hosts[0].InstanceID, db1.ID)
	}
	if got := h.cloud.callsLike("launch"); len(got) != 1 {
		t.Errorf("launch calls %q, want the first only", got)
	}
	if got := h.cloud.callsLike("start"); len(got) != 2 {
		t.Errorf("start calls %q, want 2", got)
	}
	h.checkFleet("db-1")
	rep = h.reconcile(t.Context(), map[string]int{"db": 1})
	if got := actions(rep); !slices.Equal(got, []string{"db-1:kept"}) {
		t.Errorf("third reconcile = %q, want db-1 kept", got)
	}
}

// TestReconcileStoppedDuplicate: a label held by a live host and a stopped
// one keeps the live one; the stopped one is removed as a duplicate,
// without being started for a stateless role.
func TestReconcileStoppedDuplicate(t *testing.T) {
	h := newHarness(t)
	h.opts.Drainer = h.dep
	h.reconcile(t.Context(), map[string]int{"web": 1})
	live := h.cloud.live()[0]
	old := h.cloud.add(fleet.Instance{Fleet: "office", Role: "web", Label: "web-1", State: fleet.StateStopped,
		LaunchedAt: live.LaunchedAt.Add(-1), Tags: map[string]string{fleet.TagLabel: "web-1"}})
	rep := h.reconcile(t.Context(), map[string]int{"web": 1})
	if got := actions(rep); !slices.Equal(got, []string{"web-1:kept", "web-1:removed"}) {
		t.Fatalf("report = %q", got)
	}
	for _, r := range rep.Hosts {
		if r.Action == ActionRemoved && (r.InstanceID != old.ID || r.Reason != ReasonDuplicate) {
			t.Errorf("removed %s (%s), want the stopped %s as a duplicate", r.InstanceID, r.Reason, old.ID)
		}
	}
	if got := h.cloud.callsLike("start"); len(got) != 0 {
		t.Errorf("start calls %q, want none", got)
	}
	h.checkFleet("web-1")
}

// TestMakePlanStopped plans labels held by stopped hosts.
func TestMakePlanStopped(t *testing.T) {
	roles := []Role{{Name: "web", Zones: []string{"a"}}, {Name: "db", Zones: []string{"a"}, Stateful: true}}
	tests := []struct {
		name     string
		canStart bool
		desired  map[string]int
		hosts    []string
		launch   []string
		keep     []string
		start    []string
		stuck    []string
		remove   []string
	}{
		{
			name: "started", canStart: true, desired: map[string]int{"web": 2, "db": 1},
			hosts: []string{"web-1/i-1/running/0", "web-2/i-2/stopped/0", "db-1/i-3/stopped/0"},
			keep:  []string{"web-1/i-1"}, start: []string{"db-1/i-3", "web-2/i-2"},
		},
		{
			name: "no starter", desired: map[string]int{"web": 2, "db": 1},
			hosts:  []string{"web-1/i-1/running/0", "web-2/i-2/stopped/0", "db-1/i-3/stopped/0"},
			launch: []string{"web-2@a"}, keep: []string{"web-1/i-1"}, stuck: []string{"db-1/i-3"},
			remove: []string{"web-2/i-2:duplicate"},
		},
		{
			name: "the oldest stopped one started, the other removed", canStart: true, desired: map[string]int{"db": 1},
			hosts: []string{"db-1/i-1/stopped/5", "db-1/i-2/stopped/1"},
			start: []string{"db-1/i-2"}, remove: []string{"db-1/i-1:duplicate"},
		},
		{
			name: "a live host before an older stopped one", canStart: true, desired: map[string]int{"db": 1},
			hosts: []string{"db-1/i-1/stopped/0", "db-1/i-2/pending/9"},
			keep:  []string{"db-1/i-2"}, remove: []string{"db-1/i-1:duplicate"},
		},
		{
			name: "above the count", canStart: true, desired: map[string]int{"db": 0},
			hosts:  []string{"db-1/i-1/stopped/0", "db-2/i-2/stopping/0"},
			remove: []string{"db-2/i-2:above-count", "db-1/i-1:above-count"},
		},
		{
			name: "strays and unmanaged roles left alone", canStart: true, desired: map[string]int{"web": 0},
			hosts: []string{"web-x/i-1/stopped/0", "db-1/i-2/stopped/0", "db-2/i-3/running/0"},
			keep:  []string{"db-2/i-3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hosts []Observed
			for _, s := range tt.hosts {
				hosts = append(hosts, host(s))
			}
			p := MakePlan(roles, tt.desired, hosts, PlanOptions{CanStart: tt.canStart})
			launch, keep, remove := summarize(p)
			var start, stuck []string
			for _, h := range p.Start {
				start = append(start, h.Label+"/"+h.Instance.ID)
			}
			for _, h := range p.Stuck {
				stuck = append(stuck, h.Label+"/"+h.Instance.ID)
			}
			if !slices.Equal(launch, tt.launch) || !slices.Equal(keep, tt.keep) || !slices.Equal(start, tt.start) ||
				!slices.Equal(stuck, tt.stuck) || !slices.Equal(remove, tt.remove) {
				t.Errorf("plan: launch %q keep %q start %q stuck %q remove %q\nwant: launch %q keep %q start %q stuck %q remove %q",
					launch, keep, start, stuck, remove, tt.launch, tt.keep, tt.start, tt.stuck, tt.remove)
			}
		})
	}
}

// TestDownStartsStoppedStatefulHosts: down starts a stopped host of a
// stateful role so that the Drainer backs it up with the host at hand,
// terminates a stateless one at once, and without a Starter keeps the
// stateful one, saying why.
func TestDownStartsStoppedStatefulHosts(t *testing.T) {
	for _, noStart := range []bool{false, true} {
		t.Run(fmt.Sprintf("no starter %v", noStart), func(t *testing.T) {
			h := newHarness(t)
			h.opts.Roles[1].Stateful = true
			h.dep.stateful = map[string]bool{"db": true}
			h.opts.Drainer = h.dep
			h.reconcile(t.Context(), map[string]int{"web": 1, "db": 1})
			for _, in := range h.cloud.live() {
				h.cloud.stop(in.ID)
			}
			if noStart {
				h.opts.Cloud = cannotStart{h.cloud}
			}
			rep, err := h.fleet().Down(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"db-1:removed", "web-1:removed"}
			if noStart {
				want[0] = "db-1:failed(stopped-with-data)"
			}
			if got := actions(rep); !slices.Equal(got, want) {
				t.Fatalf("down = %q, want %q", got, want)
			}
			if !slices.Equal(h.dep.nilHost, []string{"web-1"}) {
				t.Errorf("drained without a host: %q, want web-1 alone", h.dep.nilHost)
			}
			if got := h.cloud.callsLike("start"); len(got) != map[bool]int{false: 1, true: 0}[noStart] {
				t.Errorf("start calls %q", got)
			}
			if !noStart && !slices.Contains(h.dep.drained, "db-1") {
				t.Errorf("db-1 not drained: %q", h.dep.drained)
			}
		})
	}
}
