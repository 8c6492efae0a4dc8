package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

type harness struct {
	t      *testing.T
	clk    *stepClock
	cloud  *fakeCloud
	dialer *fakeDialer
	dep    *recordingDeployer
	opts   Options
	events []Event
	mu     sync.Mutex
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, clk: newStepClock(), dialer: newFakeDialer(), dep: &recordingDeployer{}}
	h.cloud = newFakeCloud(t, h.clk)
	h.opts = Options{
		Name:        "office",
		Cloud:       h.cloud,
		HostKeys:    fakeHostKeys{},
		Dialer:      h.dialer,
		CachePath:   filepath.Join(t.TempDir(), "labels.json"),
		Roles:       []Role{{Name: "web", Type: "small", Image: "img", Zones: []string{"a", "b"}}, {Name: "db", Type: "big", Zones: []string{"a"}}},
		DataPath:    "/nonexistent-data-path",
		Concurrency: 4,
		Clock:       h.clk,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Progress: ProgressFunc(func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		}),
	}
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (h *harness) fleet() *Fleet {
	h.t.Helper()
	f, err := New(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return f
}

func (h *harness) reconcile(ctx context.Context, desired map[string]int) Report {
	h.t.Helper()
	rep, err := h.fleet().Reconcile(ctx, desired)
	if err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
	return rep
}

// actions renders a report as "label:action" (sorted as the report is).
func actions(rep Report) []string {
	var out []string
	for _, r := range rep.Hosts {
		s := r.Label + ":" + string(r.Action)
		if r.Action == ActionFailed {
			s += "(" + r.Kind + ")"
		}
		out = append(out, s)
	}
	return out
}

func (h *harness) cache() *cacheFile {
	h.t.Helper()
	c, err := loadCache(h.opts.CachePath, h.opts.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.f
}

// checkFleet asserts the cloud holds exactly the labels, each labelled on
// its host and in the cache at its address.
func (h *harness) checkFleet(labels ...string) {
	h.t.Helper()
	if got := h.cloud.liveLabels(); !slices.Equal(got, labels) {
		h.t.Fatalf("live instances carry labels %q, want %q", got, labels)
	}
	c := h.cache()
	for _, in := range h.cloud.live() {
		if got := labelOn(h.t, in); got != in.Label {
			h.t.Errorf("%s's LABEL file holds %q, want %q", in.ID, got, in.Label)
		}
		e, ok := c.Hosts[in.ID]
		if !ok || e.Label != in.Label || e.Address != in.Address {
			h.t.Errorf("cache entry for %s = %+v (present %v), want %s at %s", in.ID, e, ok, in.Label, in.Address)
		}
	}
	if len(c.Hosts) != len(labels) {
		h.t.Errorf("cache holds %d hosts, want %d", len(c.Hosts), len(labels))
	}
}

func TestReconcileLaunchesLabelsAndTimes(t *testing.T) {
	h := newHarness(t)
	rep := h.reconcile(t.Context(), map[string]int{"web": 3, "db": 1})
	want := []string{"db-1:launched", "web-1:launched", "web-2:launched", "web-3:launched"}
	if got := actions(rep); !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("Report.Err = %v", err)
	}
	h.checkFleet("db-1", "web-1", "web-2", "web-3")
	for _, in := range h.cloud.live() {
		wantZone := map[string]string{"web-1": "a", "web-2": "b", "web-3": "a", "db-1": "a"}[in.Label]
		if in.Zone != wantZone {
			t.Errorf("%s launched in zone %q, want %q", in.Label, in.Zone, wantZone)
		}
		if in.Tags[fleet.TagFleet] != "office" || in.Tags[fleet.TagRole] == "" {
			t.Errorf("%s tags = %v", in.Label, in.Tags)
		}
		if got := h.dialer.expected[in.Address]; !slices.Equal(got, []string{"SHA256:" + in.ID}) {
			t.Errorf("%s dialled expecting %q, want the console's fingerprint", in.Label, got)
		}
	}
	// The fake cloud shows the address at the first poll after the
	// launch; the step clock moves PollMin per wait, and the other hosts'
	// waits move it too.
	var maxWeb time.Duration
	for _, r := range rep.Hosts {
		if r.Durations.LaunchToAddress < DefaultTimeouts.PollMin {
			t.Errorf("%s launch to address = %s, want at least %s", r.Label, r.Durations.LaunchToAddress, DefaultTimeouts.PollMin)
		}
		if r.Role == "web" {
			maxWeb = max(maxWeb, r.Durations.LaunchToAddress)
		}
	}
	if rt := rep.Roles["web"]; rt.LaunchToAddress.Count != 3 || rt.LaunchToAddress.Max != maxWeb || rt.AddressToSSH.Count != 3 {
		t.Errorf("web timings = %+v, want 3 hosts, max %s", rt, maxWeb)
	}
	// Progress saw every step of every host, ending in done.
	steps := map[string][]Step{}
	for _, e := range h.events {
		steps[e.Label] = append(steps[e.Label], e.Step)
	}
	wantSteps := []Step{StepLaunching, StepWaitingAddress, StepConnecting, StepLabelling, StepDone}
	for _, l := range []string{"db-1", "web-1", "web-2", "web-3"} {
		if !slices.Equal(steps[l], wantSteps) {
			t.Errorf("%s steps = %q, want %q", l, steps[l], wantSteps)
		}
	}
}

func TestReconcileTimesOneHostExactly(t *testing.T) {
	h := newHarness(t)
	h.dialer.failFirst[h.cloud.addressFor("i-0001")] = 2
	rep := h.reconcile(t.Context(), map[string]int{"db": 1})
	// The address shows at the first list after the launch, after one
	// PollMin wait; SSH answers at the third dial, after 250ms + 500ms.
	want := Durations{LaunchToAddress: 250 * time.Millisecond, AddressToSSH: 750 * time.Millisecond}
	if got := rep.Hosts[0].Durations; got != want {
		t.Errorf("durations = %+v, want %+v", got, want)
	}
	if got := rep.Roles["db"].AddressToSSH; got.Count != 1 || got.Mean != want.AddressToSSH || got.Max != want.AddressToSSH {
		t.Errorf("db address-to-ssh timing = %+v", got)
	}
	var done []Event
	for _, e := range h.events {
		if e.Step == StepDone {
			done = append(done, e)
		}
	}
	if len(done) != 1 || done[0].Durations != want {
		t.Errorf("done events = %+v, want one with the durations", done)
	}
}

func TestReconcileSecondRunChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
	launches, dials := len(h.cloud.callsLike("launch")), h.dialer.totalDials()
	before, _ := os.ReadFile(h.opts.CachePath)

	rep := h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
	if got, want := actions(rep), []string{"db-1:kept", "web-1:kept", "web-2:kept"}; !slices.Equal(got, want) {
		t.Fatalf("second report = %q, want %q", got, want)
	}
	if rep.Changed() {
		t.Error("Changed() = true on a steady fleet")
	}
	if n := len(h.cloud.callsLike("launch")); n != launches {
		t.Errorf("second reconcile launched %d times", n-launches)
	}
	if n := len(h.cloud.callsLike("terminate")); n != 0 {
		t.Errorf("second reconcile terminated %d times", n)
	}
	if n := h.dialer.totalDials(); n != dials {
		t.Errorf("second reconcile dialled %d hosts; kept hosts need no SSH without a deployer", n-dials)
	}
	after, _ := os.ReadFile(h.opts.CachePath)
	if string(before) != string(after) {
		t.Errorf("cache changed on a steady fleet:\n%s\n---\n%s", before, after)
	}
	h.checkFleet("db-1", "web-1", "web-2")
}

func TestReconcileScaleDownHighestFirstThroughHook(t *testing.T) {
	h := newHarness(t)
	h.opts.Drainer = h.dep
	h.reconcile(t.Context(), map[string]int{"web": 4})
	ids := map[string]string{}
	for _, in := range h.cloud.live() {
		ids[in.Label] = in.ID
	}
	h.dep.drainErr = map[string]error{"web-2": errors.New("backup not verified")}

	rep := h.reconcile(t.Context(), map[string]int{"web": 1})
	want := []string{"web-1:kept", "web-2:failed(before-terminate)", "web-3:removed", "web-4:removed"}
	if got := actions(rep); !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	if got, want := h.cloud.callsLike("terminate"), []string{"terminate " + ids["web-4"], "terminate " + ids["web-3"]}; !slices.Equal(got, want) {
		t.Errorf("terminate calls = %q, want %q (highest first, web-2 held by its hook)", got, want)
	}
	if got := h.dep.drained; !slices.Equal(got, []string{"web-4", "web-3"}) {
		t.Errorf("drained = %q", got)
	}
	if len(h.dep.nilHost) != 0 {
		t.Errorf("hook got no host for %q although they answer", h.dep.nilHost)
	}
	if rep.Err() == nil || !errors.Is(rep.Err(), ErrHostsFailed) {
		t.Errorf("Report.Err = %v, want ErrHostsFailed", rep.Err())
	}
	h.checkFleet("web-1", "web-2")
	if len(h.dialer.forgotten) != 2 {
		t.Errorf("forgot %d host keys, want the 2 terminated hosts'", len(h.dialer.forgotten))
	}

	// The hook's refusal holds until it agrees.
	h.dep.drainErr = nil
	rep = h.reconcile(t.Context(), map[string]int{"web": 1})
	if got, want := actions(rep), []string{"web-1:kept", "web-2:removed"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	h.checkFleet("web-1")
}

func TestReconcileCrashAfterLaunch(t *testing.T) {
	tests := []struct {
		name string
		// crash sets up the cloud so that the first reconcile dies after
		// the launch call made the instance.
		crash func(h *harness, cancel context.CancelFunc)
		// launches is how many Launch calls the second reconcile makes.
		launches int
	}{
		{
			name: "response lost",
			crash: func(h *harness, cancel context.CancelFunc) {
				h.cloud.afterLaunch = func(in fleet.Instance) error { cancel(); return context.Canceled }
			},
		},
		{
			name: "response lost and instance not listed yet",
			crash: func(h *harness, cancel context.CancelFunc) {
				h.cloud.afterLaunch = func(in fleet.Instance) error {
					h.cloud.mu.Lock()
					h.cloud.hidden[in.ID] = 1
					h.cloud.mu.Unlock()
					cancel()
					return context.Canceled
				}
			},
			launches: 1, // same token: the cloud returns the first instance
		},
		{
			name: "launch returned, cancelled while waiting for the address",
			crash: func(h *harness, cancel context.CancelFunc) {
				h.cloud.afterLaunch = func(in fleet.Instance) error { cancel(); return nil }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.Concurrency = 1
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tt.crash(h, cancel)
			rep := h.reconcile(ctx, map[string]int{"db": 1})
			if got := actions(rep); !slices.Equal(got, []string{"db-1:failed(canceled)"}) {
				t.Fatalf("crashed report = %q", got)
			}
			if n := len(h.cache().Hosts); n != 0 {
				t.Fatalf("cache holds %d hosts after the crash; the test must crash before it is written", n)
			}
			h.cloud.afterLaunch = nil
			before := len(h.cloud.callsLike("launch"))

			rep = h.reconcile(t.Context(), map[string]int{"db": 1})
			if got := actions(rep); !slices.Equal(got, []string{"db-1:launched"}) {
				t.Fatalf("second report = %q", got)
			}
			if n := len(h.cloud.callsLike("launch")) - before; n != tt.launches {
				t.Errorf("second reconcile called Launch %d times, want %d", n, tt.launches)
			}
			h.checkFleet("db-1") // exactly one host: no duplicate, no orphan
			if got := h.cache().Launches["db-1"]; got.Generation != 1 || got.InstanceID != h.cloud.live()[0].ID {
				t.Errorf("launch record = %+v", got)
			}
		})
	}
}

func TestReconcileReplacementGetsNewToken(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"web": 2})
	first := h.cloud.live()[1] // web-2
	// web-2 dies outside tide.
	h.cloud.set(first.ID, func(in *fleet.Instance) { in.State = fleet.StateTerminated })

	rep := h.reconcile(t.Context(), map[string]int{"web": 2})
	if got, want := actions(rep), []string{"web-1:kept", "web-2:launched"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	calls := h.cloud.callsLike("launch web-2")
	// gen 1 first (returns the terminated instance), then gen 2.
	want := []string{
		"launch web-2 " + ClientToken("office", "web-2", 1),
		"launch web-2 " + ClientToken("office", "web-2", 1),
		"launch web-2 " + ClientToken("office", "web-2", 2),
	}
	if !slices.Equal(calls, want) {
		t.Errorf("web-2 launches = %q, want %q", calls, want)
	}
	h.checkFleet("web-1", "web-2")
	second := h.cloud.live()[1]
	if second.ID == first.ID || second.Zone != first.Zone || second.Zone != "b" {
		t.Errorf("replacement %s in %q, first %s in %q: want a new instance in zone b", second.ID, second.Zone, first.ID, first.Zone)
	}
	if got := h.cache().Launches["web-2"]; got.Generation != 2 || got.InstanceID != second.ID {
		t.Errorf("launch record = %+v", got)
	}
}

func TestReconcileAddressChangeInvalidatesCache(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"web": 3})
	moved := h.cloud.live()[1]
	h.cloud.set(moved.ID, func(in *fleet.Instance) { in.Address = "10.9.9.9" })
	os.Remove(filepath.Join(moved.Tags[TagDataPath], "LABEL")) // a new host there would not have it
	dials := h.dialer.totalDials()

	rep := h.reconcile(t.Context(), map[string]int{"web": 3})
	if got, want := actions(rep), []string{"web-1:kept", "web-2:kept", "web-3:kept"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	if n := h.dialer.totalDials() - dials; n != 1 || h.dialer.dials["10.9.9.9"] != 1 {
		t.Errorf("dialled %d times (%v), want once, the moved host only", n, h.dialer.dials)
	}
	if e := h.cache().Hosts[moved.ID]; e.Address != "10.9.9.9" || e.Label != "web-2" {
		t.Errorf("cache entry after the move = %+v", e)
	}
	h.checkFleet("web-1", "web-2", "web-3")
}

func TestReconcileAsksUnlabelledHosts(t *testing.T) {
	h := newHarness(t)
	// A host of the fleet without label tag, whose LABEL file says web-1,
	// and one that has no LABEL at all.
	known := h.cloud.add(fleet.Instance{Fleet: "office", Role: "web"})
	if err := os.MkdirAll(known.Tags[TagDataPath], 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(known.Tags[TagDataPath], "LABEL"), []byte("web-1\n"), 0o644)
	stranger := h.cloud.add(fleet.Instance{Fleet: "office"})

	rep := h.reconcile(t.Context(), map[string]int{"web": 2})
	if got, want := actions(rep), []string{"?:failed(unlabelled)", "web-1:kept", "web-2:launched"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	if n := len(h.cloud.callsLike("launch web-1")); n != 0 {
		t.Errorf("launched web-1 although the host asked holds it")
	}
	if n := len(h.cloud.callsLike("terminate")); n != 0 {
		t.Errorf("terminated %d hosts; a host tide cannot name is left alone", n)
	}
	if e := h.cache().Hosts[known.ID]; e.Label != "web-1" {
		t.Errorf("cache entry for the asked host = %+v", e)
	}
	// Only new instances are asked: the second run asks the stranger again, not web-1.
	dials := h.dialer.dials[known.Address]
	h.reconcile(t.Context(), map[string]int{"web": 2})
	if h.dialer.dials[known.Address] != dials {
		t.Error("asked a cached host for its label again")
	}
	if h.dialer.dials[stranger.Address] != 2 {
		t.Errorf("the unlabelled host was asked %d times in two runs, want 2", h.dialer.dials[stranger.Address])
	}
}

func TestReconcileConcurrencyLimit(t *testing.T) {
	h := newHarness(t)
	h.opts.Concurrency = 3
	const total = 10
	done := 0
	// Hold each connection until the limit is reached (or the rest of
	// the work cannot reach it), so the limit is hit, not just respected.
	h.dialer.gate = func(d *fakeDialer) bool { return d.open >= 3 || d.open+done >= total }
	h.opts.Progress = ProgressFunc(func(e Event) {
		if e.Step == StepDone {
			h.dialer.mu.Lock()
			done++
			h.dialer.mu.Unlock()
		}
	})
	rep := h.reconcile(t.Context(), map[string]int{"web": total})
	if n := rep.Count(ActionLaunched); n != total {
		t.Fatalf("launched %d, want %d: %q", n, total, actions(rep))
	}
	if h.dialer.max != 3 {
		t.Errorf("at most %d hosts were worked on at once, want exactly the limit 3", h.dialer.max)
	}
}

func TestReconcileHostKeyMismatchStopsThatHostOnly(t *testing.T) {
	h := newHarness(t)
	h.cloud.immediateAddress = true
	h.dialer.mismatch["web-2"] = true
	rep := h.reconcile(t.Context(), map[string]int{"web": 3})
	if got, want := actions(rep), []string{"web-1:launched", "web-2:failed(host-key-mismatch)", "web-3:launched"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	web2 := h.cloud.live()[1]
	if n := h.dialer.dials[web2.Address]; n != 1 {
		t.Errorf("mismatching host dialled %d times, want once (never retried)", n)
	}
	if _, err := os.Stat(filepath.Join(web2.Tags[TagDataPath], "LABEL")); err == nil {
		t.Error("label written to a host whose key did not match")
	}
	if !errors.Is(rep.Hosts[1].Err, ErrHostKeyMismatch) {
		t.Errorf("web-2 error = %v", rep.Hosts[1].Err)
	}
	// Next run: the host is still there, not launched again, still refused.
	rep = h.reconcile(t.Context(), map[string]int{"web": 3})
	if got, want := actions(rep), []string{"web-1:kept", "web-2:failed(host-key-mismatch)", "web-3:kept"}; !slices.Equal(got, want) {
		t.Fatalf("second report = %q, want %q", got, want)
	}
	if n := len(h.cloud.live()); n != 3 {
		t.Errorf("%d instances, want 3", n)
	}
}

func TestReconcileCloudErrors(t *testing.T) {
	t.Run("capacity fails that label, next reconcile retries", func(t *testing.T) {
		h := newHarness(t)
		h.cloud.inject("launch web-1", &fleet.InsufficientCapacityError{Type: "small", Zone: "a", Err: errors.New("none left")})
		rep := h.reconcile(t.Context(), map[string]int{"web": 2})
		if got, want := actions(rep), []string{"web-1:failed(capacity)", "web-2:launched"}; !slices.Equal(got, want) {
			t.Fatalf("report = %q, want %q", got, want)
		}
		if !fleet.IsInsufficientCapacity(rep.Hosts[0].Err) {
			t.Errorf("web-1 error %v does not say capacity", rep.Hosts[0].Err)
		}
		rep = h.reconcile(t.Context(), map[string]int{"web": 2})
		if got, want := actions(rep), []string{"web-1:launched", "web-2:kept"}; !slices.Equal(got, want) {
			t.Fatalf("retry report = %q, want %q", got, want)
		}
		if h.cloud.live()[0].Zone != "a" {
			t.Errorf("web-1 moved to zone %q; its zone is fixed", h.cloud.live()[0].Zone)
		}
	})
	t.Run("throttling is retried with backoff", func(t *testing.T) {
		h := newHarness(t)
		thr := func() error { return &fleet.ThrottledError{Err: errors.New("RequestLimitExceeded")} }
		h.cloud.inject("list", thr())
		h.cloud.inject("list", thr())
		h.cloud.inject("launch", thr())
		rep := h.reconcile(t.Context(), map[string]int{"web": 1})
		if got := actions(rep); !slices.Equal(got, []string{"web-1:launched"}) {
			t.Fatalf("report = %q", got)
		}
		h.cloud.inject("terminate", thr())
		rep = h.reconcile(t.Context(), map[string]int{"web": 0})
		if got := actions(rep); !slices.Equal(got, []string{"web-1:removed"}) {
			t.Fatalf("report = %q", got)
		}
		h.checkFleet()
	})
	t.Run("throttling past the deadline fails the reconcile", func(t *testing.T) {
		h := newHarness(t)
		for range 100 {
			h.cloud.inject("list", &fleet.ThrottledError{Err: errors.New("Throttling")})
		}
		start := h.clk.Now()
		_, err := h.fleet().Reconcile(t.Context(), map[string]int{"web": 1})
		if !fleet.IsThrottled(err) {
			t.Fatalf("err = %v, want throttled", err)
		}
		if el := h.clk.Now().Sub(start); el > DefaultTimeouts.Throttle {
			t.Errorf("retried for %s, past the %s deadline", el, DefaultTimeouts.Throttle)
		}
	})
	t.Run("terminating a vanished instance is done", func(t *testing.T) {
		h := newHarness(t)
		h.reconcile(t.Context(), map[string]int{"web": 1})
		h.cloud.inject("terminate", &fleet.NotFoundError{ID: h.cloud.live()[0].ID})
		rep := h.reconcile(t.Context(), map[string]int{"web": 0})
		if got := actions(rep); !slices.Equal(got, []string{"web-1:removed"}) {
			t.Fatalf("report = %q", got)
		}
	})
}

func TestReconcileSSHBackoffAndDeadline(t *testing.T) {
	t.Run("retries until the host answers", func(t *testing.T) {
		h := newHarness(t)
		h.cloud.immediateAddress = true
		h.dialer.failFirst[h.cloud.addressFor("i-0001")] = 4
		rep := h.reconcile(t.Context(), map[string]int{"db": 1})
		if got := actions(rep); !slices.Equal(got, []string{"db-1:launched"}) {
			t.Fatalf("report = %q", got)
		}
		// Backoff 250ms, 500ms, 1s, 2s before the fifth dial.
		if got, want := rep.Hosts[0].Durations.AddressToSSH, 3750*time.Millisecond; got != want {
			t.Errorf("address to ssh = %s, want %s", got, want)
		}
		if h.dialer.dials[h.cloud.addressFor("i-0001")] != 5 {
			t.Errorf("dialled %d times, want 5", h.dialer.dials[h.cloud.addressFor("i-0001")])
		}
	})
	t.Run("gives up at the deadline", func(t *testing.T) {
		h := newHarness(t)
		h.cloud.immediateAddress = true
		h.opts.Timeouts.SSH = time.Minute
		h.dialer.failFirst[h.cloud.addressFor("i-0001")] = 1 << 30
		start := h.clk.Now()
		rep := h.reconcile(t.Context(), map[string]int{"db": 1})
		if got := actions(rep); !slices.Equal(got, []string{"db-1:failed(ssh-timeout)"}) {
			t.Fatalf("report = %q", got)
		}
		if !errors.Is(rep.Hosts[0].Err, errConnRefused) {
			t.Errorf("error %v does not carry the last dial error", rep.Hosts[0].Err)
		}
		if el := h.clk.Now().Sub(start); el > time.Minute {
			t.Errorf("tried for %s, deadline 1m", el)
		}
	})
	t.Run("address deadline", func(t *testing.T) {
		h := newHarness(t)
		h.opts.Timeouts.Address = 30 * time.Second
		h.cloud.afterLaunch = func(in fleet.Instance) error {
			h.cloud.mu.Lock()
			h.cloud.hidden[in.ID] = 1 << 30
			h.cloud.mu.Unlock()
			return nil
		}
		rep := h.reconcile(t.Context(), map[string]int{"db": 1})
		if got := actions(rep); !slices.Equal(got, []string{"db-1:failed(address-timeout)"}) {
			t.Fatalf("report = %q", got)
		}
	})
}

func TestReconcileDuplicatesAfterCrash(t *testing.T) {
	h := newHarness(t)
	h.opts.Drainer = h.dep
	old := h.cloud.add(fleet.Instance{Fleet: "office", Role: "web", Label: "web-1", Tags: map[string]string{fleet.TagLabel: "web-1"}})
	h.clk.Advance(time.Minute)
	young := h.cloud.add(fleet.Instance{Fleet: "office", Role: "web", Label: "web-1", Tags: map[string]string{fleet.TagLabel: "web-1"}})
	rep := h.reconcile(t.Context(), map[string]int{"web": 1})
	if got, want := actions(rep), []string{"web-1:kept", "web-1:removed"}; !slices.Equal(got, want) {
		t.Fatalf("report = %q, want %q", got, want)
	}
	for _, r := range rep.Hosts {
		if r.Action == ActionRemoved && (r.InstanceID != young.ID || r.Reason != ReasonDuplicate) {
			t.Errorf("removed %s (%s), want the younger duplicate %s", r.InstanceID, r.Reason, young.ID)
		}
	}
	if live := h.cloud.live(); len(live) != 1 || live[0].ID != old.ID {
		t.Errorf("live = %v, want the oldest only", live)
	}
	h.checkFleet("web-1")
}

func TestReconcileDeployerConvergesNewAndKept(t *testing.T) {
	h := newHarness(t)
	h.opts.Deployer = h.dep
	rep := h.reconcile(t.Context(), map[string]int{"web": 2})
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	h.reconcile(t.Context(), map[string]int{"web": 2})
	slices.Sort(h.dep.converged)
	if want := []string{"web-1", "web-1", "web-2", "web-2"}; !slices.Equal(h.dep.converged, want) {
		t.Errorf("converged %q, want %q (new hosts, then kept ones)", h.dep.converged, want)
	}
	failing := &failingDeployer{}
	h.opts.Deployer = failing
	rep = h.reconcile(t.Context(), map[string]int{"web": 2})
	if got, want := actions(rep), []string{"web-1:failed(deploy)", "web-2:failed(deploy)"}; !slices.Equal(got, want) {
		t.Errorf("report = %q, want %q", got, want)
	}
	if rep.Hosts[0].Intended != ActionKept {
		t.Errorf("intended = %q, want kept", rep.Hosts[0].Intended)
	}
}

type failingDeployer struct{}

func (failingDeployer) Converge(context.Context, Host, fleet.Instance, string) error {
	return errors.New("health check failed")
}

func TestDownRemovesEverything(t *testing.T) {
	h := newHarness(t)
	h.opts.Drainer = h.dep
	h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
	h.cloud.add(fleet.Instance{Fleet: "office", Role: "old", Label: "old-1", Tags: map[string]string{fleet.TagLabel: "old-1"}})
	h.dialer.mismatch[h.cloud.live()[0].Address] = true // db-1 cannot be reached
	dead := h.cloud.add(fleet.Instance{Fleet: "office", Role: "web", Label: "web-9", State: fleet.StateStopped,
		Tags: map[string]string{fleet.TagLabel: "web-9"}})
	rep, err := h.fleet().Down(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Hosts {
		if r.Action != ActionRemoved && !(r.Label == "old-1" && r.Action == ActionKept) {
			t.Errorf("%s: %s %v", r.Label, r.Action, r.Err)
		}
	}
	if n := len(h.cloud.live()); n != 0 {
		t.Errorf("%d instances left after down", n)
	}
	if got := h.cloud.callsLike("terminate " + dead.ID); len(got) != 1 {
		t.Errorf("the stopped instance was not terminated: %q", h.cloud.callsLike("terminate"))
	}
	slices.Sort(h.dep.nilHost)
	if !slices.Equal(h.dep.nilHost, []string{"db-1", "web-9"}) {
		t.Errorf("hook got no host for %q, want db-1 (unreachable) and web-9 (stopped)", h.dep.nilHost)
	}
	if n := len(h.cache().Hosts); n != 0 {
		t.Errorf("cache holds %d hosts after down", n)
	}
}

func TestReconcileBusy(t *testing.T) {
	h := newHarness(t)
	unlock, err := lockFile(h.opts.CachePath + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := h.fleet().Reconcile(t.Context(), map[string]int{"web": 1}); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if n := len(h.cloud.callsLike("")); n != 0 {
		t.Errorf("a busy reconcile made %d cloud calls", n)
	}
}

func TestStatusAndReportJSON(t *testing.T) {
	h := newHarness(t)
	rep := h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
	h.clk.Advance(90 * time.Minute)
	st, err := h.fleet().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range st {
		got = append(got, fmt.Sprintf("%s %s %s %v", s.Label, s.Role, s.Zone, s.Labelled))
		if s.Age < 90*time.Minute || s.State != fleet.StateRunning || s.Address == "" {
			t.Errorf("%s: age %s state %s address %q", s.Label, s.Age, s.State, s.Address)
		}
	}
	if want := []string{"db-1 db a true", "web-1 web a true", "web-2 web b true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("status = %q, want %q", got, want)
	}

	rep.Hosts[0].Err, rep.Hosts[0].Action, rep.Hosts[0].Kind = errors.New("boom"), ActionFailed, KindOther
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Hosts []map[string]any `json:"hosts"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hosts[0]["error"] != "boom" || back.Hosts[0]["label"] != "db-1" {
		t.Errorf("json host = %v", back.Hosts[0])
	}
	if d, _ := back.Hosts[1]["durations"].(map[string]any); d["launch_to_address"] == "" || d["launch_to_address"] == "0s" {
		t.Errorf("json durations = %v", back.Hosts[1]["durations"])
	}
}

func TestCacheFileRejectsOtherFleet(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"web": 1})
	h.opts.Name = "other"
	if _, err := h.fleet().Reconcile(t.Context(), map[string]int{"web": 1}); err == nil || !strings.Contains(err.Error(), "fleet") {
		t.Fatalf("err = %v, want a fleet mismatch", err)
	}
}

func TestReconcileUntilStartsNothingAfterStop(t *testing.T) {
	h := newHarness(t)
	h.cloud.immediateAddress = true
	h.opts.Concurrency = 1
	stop := make(chan struct{})
	// The first host holds its slot until the stop is asked for; the hosts
	// waiting for a slot must then not start, while the first one finishes.
	h.dialer.gate = func(d *fakeDialer) bool {
		select {
		case <-stop:
			return true
		default:
		}
		close(stop)
		return true
	}
	rep, err := h.fleet().ReconcileUntil(t.Context(), stop, map[string]int{"web": 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Count(ActionLaunched), 1; got != want {
		t.Fatalf("launched %d, want %d (the one in flight): %q", got, want, actions(rep))
	}
	stopped := 0
	for _, r := range rep.Hosts {
		if r.Action == ActionFailed {
			if !errors.Is(r.Err, ErrStopping) || r.Kind != KindStopping {
				t.Errorf("%s failed with %v (%s), want ErrStopping", r.Label, r.Err, r.Kind)
			}
			stopped++
		}
	}
	if stopped != 2 {
		t.Errorf("%d hosts not started, want 2: %q", stopped, actions(rep))
	}
	if n := len(h.cloud.callsLike("launch")); n != 1 {
		t.Errorf("%d launch calls after the stop, want 1", n)
	}
	// Once the stop is over, the next reconcile completes the fleet.
	rep = h.reconcile(t.Context(), map[string]int{"web": 3})
	if n := len(h.cloud.live()); n != 3 || rep.Err() != nil {
		t.Fatalf("after the stop: %d hosts, %v", n, rep.Err())
	}
}

// TestReconcileInstanceDiesWhileBooting: an instance that dies while the
// pipeline waits for its address fails its label at once, whether it
// stops (still listed) or terminates (no longer listed), not at the
// address deadline; the next reconcile starts the stopped one again, or
// launches the label again.
func TestReconcileInstanceDiesWhileBooting(t *testing.T) {
	tests := []struct {
		name string
		as   fleet.State
		next Action
	}{
		{"stops", fleet.StateStopped, ActionStarted},
		{"terminates", fleet.StateTerminated, ActionLaunched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.Timeouts.Address = 5 * time.Minute
			h.cloud.dies["db-1"] = dying{lists: 2, as: tt.as}
			start := h.clk.Now()
			rep := h.reconcile(t.Context(), map[string]int{"db": 1})
			if got := actions(rep); !slices.Equal(got, []string{"db-1:failed(instance-gone)"}) {
				t.Fatalf("report = %q", got)
			}
			if el := h.clk.Now().Sub(start); el > 30*time.Second {
				t.Errorf("gave up after %s, want seconds (the address deadline is 5m)", el)
			}
			dead := rep.Hosts[0].InstanceID
			rep = h.reconcile(t.Context(), map[string]int{"db": 1})
			if got := actions(rep); !slices.Equal(got, []string{"db-1:" + string(tt.next)}) {
				t.Fatalf("second reconcile = %q", got)
			}
			if again := rep.Hosts[0].InstanceID == dead; again != (tt.next == ActionStarted) {
				t.Errorf("the second reconcile's db-1 is %s, the dead instance was %s", rep.Hosts[0].InstanceID, dead)
			}
			h.checkFleet("db-1")
		})
	}
}
