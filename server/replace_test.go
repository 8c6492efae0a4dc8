package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReplaceRefused sends replaces the server must refuse before any
// action starts.
func TestReplaceRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.w.mu.Lock()
	f.w.roles[2].Fixed = true // worker
	f.w.mu.Unlock()
	many := `{"labels":[` + strings.Repeat(`"web-1",`, maxReplaceLabels) + `"web-2"]}`
	tests := []struct {
		name, body, token string
		status            int
		want              string
	}{
		{"no token", `{"labels":["web-1"]}`, "", 401, "missing bearer token"},
		{"wrong token", `{"labels":["web-1"]}`, "nope", 401, "invalid token"},
		{"empty body", ``, testToken, 400, "empty"},
		{"unknown field", `{"labels":["web-1"],"force":true}`, testToken, 400, `unknown field "force"`},
		{"labels not a list", `{"labels":"web-1"}`, testToken, 400, `field "labels" must be of type []string`},
		{"no labels", `{"labels":[]}`, testToken, 400, "labels is required: name the hosts to replace, like db-1"},
		{"labels missing", `{"reason":"x"}`, testToken, 400, "labels is required"},
		{"too many", many, testToken, 400, "at most 100 hosts, not 101"},
		{"not a label", `{"labels":["web"]}`, testToken, 400, `label must be a role and a number like db-1, not "web"`},
		{"zero", `{"labels":["web-0"]}`, testToken, 400, `not "web-0"`},
		{"leading zero", `{"labels":["web-01"]}`, testToken, 400, `not "web-01"`},
		{"plus sign", `{"labels":["web-+1"]}`, testToken, 400, `not "web-+1"`},
		{"shell", `{"labels":["web-1; rm -rf /"]}`, testToken, 400, `label must be a role and a number`},
		{"unknown role", `{"labels":["web-1","cache-2"]}`, testToken, 400, `label "cache-2": unknown role "cache" (known roles: db, web, worker)`},
		{"twice", `{"labels":["web-1","web-1"]}`, testToken, 400, `label "web-1" is named twice`},
		{"fixed role", `{"labels":["web-1","worker-2"]}`, testToken, 400, `label "worker-2": role worker's hosts are fixed: tide neither launches nor terminates them`},
		{"discard without reason", `{"labels":["db-1"],"discard_data":true}`, testToken, 400, "discard_data needs a reason"},
		{"discard with a blank reason", `{"labels":["db-1"],"discard_data":true,"reason":"  "}`, testToken, 400, "discard_data needs a reason"},
		{"long reason", fmt.Sprintf(`{"labels":["db-1"],"reason":%q}`, strings.Repeat("x", 501)), testToken, 400, "longer than 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/replace", strings.NewReader(tt.body), tt.token)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if msg := r.errorText(t); !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if len(f.w.replaces) != 0 {
		t.Errorf("refused requests replaced hosts: %v", f.w.replaces)
	}
	if st := f.srv.actionStatus(); st != nil {
		t.Errorf("refused requests started an action: %+v", st)
	}
}

// TestReplaceStarts replaces hosts through the API: the action is given
// the request as checked (the reason trimmed), its status names the hosts
// and the discard; a label no host holds fails the action with the
// fleet's message.
func TestReplaceStarts(t *testing.T) {
	tests := []struct {
		name, body string
		want       ActionStatus
		wantErr    string
	}{
		{"stateless", `{"labels":["web-1"]}`, ActionStatus{Kind: "replace", Labels: []string{"web-1"}}, ""},
		{"two roles", `{"labels":["db-2","worker-1"],"reason":"kernel update"}`,
			ActionStatus{Kind: "replace", Labels: []string{"db-2", "worker-1"}, Reason: "kernel update"}, ""},
		{"discard", `{"labels":["db-1"],"discard_data":true,"reason":" disk lost "}`,
			ActionStatus{Kind: "replace", Labels: []string{"db-1"}, DiscardData: true, Reason: "disk lost"}, ""},
		{"no such host", `{"labels":["web-9"]}`, ActionStatus{Kind: "replace", Labels: []string{"web-9"}},
			"replacing web-9: no host of the fleet has the label; the fleet's labels: db-1, db-2, web-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			r := f.post(t, "/api/replace", tt.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("POST /api/replace: %d %s", r.status, r.body)
			}
			var st ActionStatus
			r.json(t, &st)
			if got, want := fmt.Sprint(st.Kind, st.Labels, st.DiscardData, st.Reason), fmt.Sprint(tt.want.Kind, tt.want.Labels, tt.want.DiscardData, tt.want.Reason); got != want || !st.Running {
				t.Fatalf("status %+v, want %s running", st, want)
			}
			var view statusView
			waitFor(t, func() bool {
				f.get(t, "/api/status").json(t, &view)
				return view.Action != nil && !view.Action.Running
			})
			if a := view.Action; a.Kind != "replace" || fmt.Sprint(a.Labels) != fmt.Sprint(tt.want.Labels) || a.DiscardData != tt.want.DiscardData ||
				a.Reason != tt.want.Reason || !strings.Contains(a.Error, tt.wantErr) || (tt.wantErr == "") != (a.Error == "") {
				t.Fatalf("finished action %+v, want labels %v, error %q", a, tt.want.Labels, tt.wantErr)
			}
			f.w.mu.Lock()
			defer f.w.mu.Unlock()
			want := ReplaceRequest{Labels: tt.want.Labels, DiscardData: tt.want.DiscardData, Reason: tt.want.Reason}
			if len(f.w.replaces) != 1 || fmt.Sprint(f.w.replaces[0]) != fmt.Sprint(want) {
				t.Errorf("Replace given %+v, want [%+v]", f.w.replaces, want)
			}
		})
	}
}

// TestReplaceWhileBusyOrUnavailable: a replace waits for no other action
// (409 while one runs) and needs Actions (501).
func TestReplaceWhileBusyOrUnavailable(t *testing.T) {
	g := &gatedActions{gate: make(chan error)}
	f := newFixture(t, func(o *Options) { o.Actions = g })
	if r := f.post(t, "/api/deploy", `{"app":"dms-web","revision":"v1.5.0"}`); r.status != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	if r := f.post(t, "/api/replace", `{"labels":["web-1"]}`); r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "a deploy started at 10:00:00 is still running") {
		t.Fatalf("replace during deploy: %d %s", r.status, r.body)
	}
	g.gate <- nil
	waitFor(t, func() bool { a := f.srv.actionStatus(); return a != nil && !a.Running })
	r := f.post(t, "/api/replace", `{"labels":["web-1"]}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	if r := f.post(t, "/api/deploy", `{"app":"dms-web","revision":"v1.5.0"}`); r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "a replace started at") {
		t.Fatalf("deploy during replace: %d %s", r.status, r.body)
	}
	g.gate <- context.Canceled
	waitFor(t, func() bool { a := f.srv.actionStatus(); return a != nil && !a.Running })
	if g.calls.Load() != 2 {
		t.Errorf("actions run: %d, want 2", g.calls.Load())
	}

	f = newFixture(t, func(o *Options) { o.Actions = nil })
	if r := f.post(t, "/api/replace", `{"labels":["web-1"]}`); r.status != http.StatusNotImplemented || !strings.Contains(r.errorText(t), "replace is not available") {
		t.Fatalf("replace without Actions: %d %s", r.status, r.body)
	}
}

// TestReplaceResultInStatus: a finished replace's status carries what
// Actions.Replace said it did, as JSON: each host's action and removal
// reason and, for a discard, the host's instance, backup error and the
// backup its replacement restored. Other actions carry no result, and a
// new action drops the last one's.
func TestReplaceResultInStatus(t *testing.T) {
	f := newFixture(t, nil)
	finished := func() map[string]any {
		t.Helper()
		var view struct {
			Action map[string]any `json:"action"`
		}
		waitFor(t, func() bool {
			view.Action = nil
			f.get(t, "/api/status").json(t, &view)
			return view.Action != nil && view.Action["running"] == false
		})
		return view.Action
	}
	if r := f.post(t, "/api/replace", `{"labels":["db-1"],"discard_data":true,"reason":"disk lost"}`); r.status != http.StatusAccepted {
		t.Fatalf("POST /api/replace: %d %s", r.status, r.body)
	}
	a := finished()
	f.w.mu.Lock()
	var id string
	for _, h := range f.w.hosts {
		if h.Label == "db-1" {
			id = h.InstanceID
		}
	}
	f.w.mu.Unlock()
	created := f.w.clk.Now().Add(-time.Hour).UTC()
	key := "backups/office-dms/db/postgres/" + created.Format("20060102T150405Z") + ".tar.zst"
	want := map[string]any{
		"hosts": []any{
			map[string]any{"label": "db-1", "instance_id": id, "action": "removed", "reason": "replaced-data-discarded"},
			map[string]any{"label": "db-1", "instance_id": id + "-new", "action": "launched"},
		},
		"discarded": []any{map[string]any{
			"label": "db-1", "instance_id": id,
			"backup_error": "draining db-1: dial tcp 10.0.1.11:22: connect: no route to host",
			"restored":     []any{map[string]any{"role": "db", "app": "postgres", "key": key, "created_at": created.Format(time.RFC3339Nano)}},
		}},
	}
	if got := fmt.Sprint(a["result"]); got != fmt.Sprint(want) {
		t.Fatalf("result\n got %s\nwant %s", got, fmt.Sprint(want))
	}

	if r := f.post(t, "/api/apply", ``); r.status != http.StatusAccepted {
		t.Fatalf("POST /api/apply: %d %s", r.status, r.body)
	}
	if a := finished(); a["kind"] != "apply" || a["result"] != nil {
		t.Fatalf("apply after the replace: %v, want no result", a)
	}
}
