package deployer

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tideops/tide/fleet"
)

// replaceActions renders a replace's report as label:action, with the
// reason of removals and the kind of failures.
func replaceActions(rep Report) []string {
	var out []string
	for _, r := range rep.Hosts {
		s := r.Label + ":" + string(r.Action)
		switch {
		case r.Action == ActionFailed:
			s += "(" + r.Kind + ")"
		case r.Reason != "":
			s += "(" + r.Reason + ")"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestReplace(t *testing.T) {
	errBackup := errors.New("backup not verified")
	tests := []struct {
		name    string
		labels  []string
		opts    ReplaceOptions
		fixed   bool             // the web role is Fixed
		stopped string           // this label's host stops before the replace
		drain   map[string]error // Drainer errors by label
		wantErr error            // Replace's own error: nothing is touched
		want    []string         // replaceActions
		gone    []string         // labels whose first host is terminated
		check   func(*testing.T, *harness, Report)
	}{
		{
			name:   "replace ok",
			labels: []string{"db-1"},
			want:   []string{"db-1:launched", "db-1:removed(replaced)"},
			gone:   []string{"db-1"},
		},
		{
			name:   "backup fails without discard: kept and converged again",
			labels: []string{"db-1"},
			drain:  map[string]error{"db-1": errBackup},
			want:   []string{"db-1:failed(before-terminate)"},
			check: func(t *testing.T, h *harness, rep Report) {
				r := rep.Hosts[0]
				if r.Intended != ActionRemoved || !errors.Is(r.Err, errBackup) || r.DrainErr != nil {
					t.Errorf("db-1's result: intended %s, err %v, drain err %v", r.Intended, r.Err, r.DrainErr)
				}
				if n := countOf(h.dep.converged, "db-1"); n != 2 {
					t.Errorf("db-1 converged %d times, want 2: at launch and again after the failed drain", n)
				}
				if got := h.cloud.callsLike("launch db-1"); len(got) != 1 {
					t.Errorf("db-1 launched again although its host was kept: %q", got)
				}
			},
		},
		{
			name:   "backup fails with discard: terminated, reason and error recorded",
			labels: []string{"db-1"},
			opts:   ReplaceOptions{DiscardData: true},
			drain:  map[string]error{"db-1": errBackup},
			want:   []string{"db-1:launched", "db-1:removed(replaced-data-discarded)"},
			gone:   []string{"db-1"},
			check: func(t *testing.T, h *harness, rep Report) {
				i := slices.IndexFunc(rep.Hosts, func(r HostResult) bool { return r.Action == ActionRemoved })
				r := rep.Hosts[i]
				if !errors.Is(r.DrainErr, errBackup) || r.Err != nil {
					t.Errorf("removed db-1: drain err %v, err %v", r.DrainErr, r.Err)
				}
				b, err := json.Marshal(r)
				if err != nil || !strings.Contains(string(b), `"drain_error":"before terminating db-1: backup not verified"`) ||
					!strings.Contains(string(b), `"reason":"replaced-data-discarded"`) {
					t.Errorf("JSON of the removal: %s, %v", b, err)
				}
				if rep.Err() != nil {
					t.Errorf("Report.Err = %v", rep.Err())
				}
			},
		},
		{
			name:    "stopped host without discard: nothing terminated, nothing launched",
			labels:  []string{"db-1"},
			stopped: "db-1",
			drain:   map[string]error{"db-1": errors.New("role db is stateful: host unreachable")},
			want:    []string{"db-1:failed(before-terminate)"},
			check: func(t *testing.T, h *harness, rep Report) {
				if !slices.Equal(h.dep.nilHost, []string{"db-1"}) {
					t.Errorf("hook got no host for %q, want db-1 (stopped)", h.dep.nilHost)
				}
				if n := countOf(h.dep.converged, "db-1"); n != 1 {
					t.Errorf("db-1 converged %d times: a host not reached cannot be converged again", n)
				}
			},
		},
		{
			name:    "stopped host with discard",
			labels:  []string{"db-1"},
			opts:    ReplaceOptions{DiscardData: true},
			stopped: "db-1",
			drain:   map[string]error{"db-1": errors.New("role db is stateful: host unreachable")},
			want:    []string{"db-1:launched", "db-1:removed(replaced-data-discarded)"},
			gone:    []string{"db-1"},
		},
		{
			name:   "a role's first failure skips the rest",
			labels: []string{"web-2", "web-1", "db-1"},
			drain:  map[string]error{"web-1": errBackup},
			want: []string{"db-1:launched", "db-1:removed(replaced)",
				"web-1:failed(before-terminate)", "web-2:failed(skipped)"},
			gone: []string{"db-1"},
		},
		{
			name:    "unknown label",
			labels:  []string{"db-1", "db-9", "cache-1"},
			wantErr: ErrUnknownLabel,
			check: func(t *testing.T, h *harness, rep Report) {
				if len(h.dep.drained) != 0 || len(h.cloud.callsLike("launch")) != 3 {
					t.Errorf("hosts touched: drained %q, launches %q", h.dep.drained, h.cloud.callsLike("launch"))
				}
			},
		},
		{
			name:    "fixed role",
			labels:  []string{"web-1"},
			fixed:   true,
			wantErr: ErrFixedRole,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.Drainer, h.opts.Deployer = h.dep, h.dep
			h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
			first := map[string]fleet.Instance{}
			for _, in := range h.cloud.live() {
				first[in.Label] = in
			}
			if tc.stopped != "" {
				h.cloud.set(first[tc.stopped].ID, func(in *fleet.Instance) { in.State, in.Address = fleet.StateStopped, "" })
			}
			if tc.fixed {
				h.opts.Roles[0].Fixed = true
			}
			h.dep.drainErr = tc.drain

			rep, err := h.fleet().Replace(t.Context(), tc.labels, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Replace: %v, want %v", err, tc.wantErr)
				}
				if len(rep.Hosts) != 0 || len(h.cloud.callsLike("terminate")) != 0 {
					t.Errorf("Replace refused but worked on hosts: %q, terminations %q", replaceActions(rep), h.cloud.callsLike("terminate"))
				}
			} else if err != nil {
				t.Fatalf("Replace: %v", err)
			}
			if got := replaceActions(rep); !slices.Equal(got, tc.want) {
				t.Errorf("report = %q, want %q", got, tc.want)
			}
			var terminated []string
			for label, in := range first {
				if len(h.cloud.callsLike("terminate "+in.ID)) > 0 {
					terminated = append(terminated, label)
				}
			}
			slices.Sort(terminated)
			if !slices.Equal(terminated, tc.gone) {
				t.Errorf("terminated the hosts of %q, want %q", terminated, tc.gone)
			}
			// Every label still has one live host: a new one where the
			// old one went, the old one elsewhere.
			var labels []string
			for _, in := range h.cloud.live() {
				labels = append(labels, in.Label)
				if in.ID == first[in.Label].ID && slices.Contains(tc.gone, in.Label) {
					t.Errorf("%s is still on %s", in.Label, in.ID)
				}
			}
			wantLive := []string{"db-1", "web-1", "web-2"}
			if tc.stopped != "" && !slices.Contains(tc.gone, tc.stopped) {
				wantLive = slices.DeleteFunc(wantLive, func(l string) bool { return l == tc.stopped })
			}
			if !slices.Equal(labels, wantLive) {
				t.Errorf("live labels %q, want %q", labels, wantLive)
			}
			if tc.stopped == "" {
				h.checkFleet("db-1", "web-1", "web-2")
			}
			for _, l := range tc.gone {
				if !slices.Contains(h.dialer.forgotten, first[l].Address) && first[l].Address != "" && l != tc.stopped {
					t.Errorf("%s's old address %s was not forgotten", l, first[l].Address)
				}
			}
			if tc.check != nil {
				tc.check(t, h, rep)
			}
		})
	}
}

// TestReplaceUnknownLabelListsTheFleet checks the refusal names what the
// operator could have meant.
func TestReplaceUnknownLabelListsTheFleet(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"web": 2, "db": 1})
	_, err := h.fleet().Replace(t.Context(), []string{"db-2", "web-10"}, ReplaceOptions{})
	if want := "replacing db-2, web-10: no host of the fleet has the label; the fleet's labels: db-1, web-1, web-2"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if _, err := h.fleet().Replace(t.Context(), nil, ReplaceOptions{}); err == nil {
		t.Error("Replace of no label succeeded")
	}
}

// TestReplaceBusy checks Replace takes the lock a reconcile takes.
func TestReplaceBusy(t *testing.T) {
	h := newHarness(t)
	h.reconcile(t.Context(), map[string]int{"db": 1})
	unlock, err := lockFile(h.opts.CachePath + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	calls := len(h.cloud.callsLike(""))
	if _, err := h.fleet().Replace(t.Context(), []string{"db-1"}, ReplaceOptions{DiscardData: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if n := len(h.cloud.callsLike("")); n != calls {
		t.Errorf("a busy replace made %d cloud calls", n-calls)
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
