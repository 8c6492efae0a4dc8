package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestRollbackRefused sends rollbacks the server must refuse before any
// action starts.
func TestRollbackRefused(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, body, token string
		status            int
		want              string
	}{
		{"no token", `{"app":"dms-web"}`, "", 401, "missing bearer token"},
		{"wrong token", `{"app":"dms-web"}`, "nope", 401, "invalid token"},
		{"empty body", ``, testToken, 400, "empty"},
		{"unknown field", `{"app":"dms-web","revision":"v1.4.1"}`, testToken, 400, `unknown field "revision"`},
		{"no app", `{"to":"v1.4.1"}`, testToken, 400, "app is required (known apps: postgres, dms-web, dms-worker)"},
		{"bad app name", `{"app":"dms web"}`, testToken, 400, `app must be a name of letters`},
		{"unknown app", `{"app":"nginx"}`, testToken, 400, `unknown app "nginx" (known apps: postgres, dms-web, dms-worker)`},
		{"bad revision", `{"app":"dms-web","to":"v1; rm -rf /"}`, testToken, 400, "to must be a revision"},
		{"unknown revision", `{"app":"dms-web","to":"v9"}`, testToken, 400,
			`no release "v9" of dms-web, recorded or on its hosts; known: v1.4.0, v1.4.1, v1.4.2, v1.5.0, v1.3.7`},
		{"at the oldest", `{"app":"postgres"}`, testToken, 409, "no earlier release of postgres recorded: 16.2 is the oldest of its history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/rollback", strings.NewReader(tt.body), tt.token)
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
	if len(f.w.rollbacks) != 0 {
		t.Errorf("refused requests rolled back: %v", f.w.rollbacks)
	}
	if st := f.srv.actionStatus(); st != nil {
		t.Errorf("refused requests started an action: %+v", st)
	}
}

// TestRollbackWalksTheHistory rolls back one step, forward to a revision
// rolled back from and to a release only a host holds, each action given
// the revision its status names; then a failing read of the releases
// refuses the rollback.
func TestRollbackWalksTheHistory(t *testing.T) {
	f := newFixture(t, nil)
	rollback := func(body, want string) {
		t.Helper()
		r := f.post(t, "/api/rollback", body)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST /api/rollback %s: %d %s", body, r.status, r.body)
		}
		var st ActionStatus
		r.json(t, &st)
		if st.Kind != "rollback" || st.App != "dms-web" || st.Revision != want || !st.Running {
			t.Fatalf("POST /api/rollback %s: status %+v, want a rollback of dms-web to %s", body, st, want)
		}
		waitFor(t, func() bool { a := f.srv.actionStatus(); return a != nil && !a.Running })
		if a := f.srv.actionStatus(); a.Error != "" {
			t.Fatalf("rollback to %s failed: %s", want, a.Error)
		}
	}
	current := func() (cur, back string, states []string) {
		var v ReleaseView
		r := f.get(t, "/api/releases?app=dms-web")
		if r.status != 200 {
			t.Fatalf("GET /api/releases: %d %s", r.status, r.body)
		}
		r.json(t, &v)
		for _, row := range v.History {
			states = append(states, row.Revision+":"+row.State)
		}
		return v.Current, v.Rollback, states
	}

	rollback(`{"app":"dms-web"}`, "v1.4.1")
	if cur, back, states := current(); cur != "v1.4.1" || back != "v1.4.0" ||
		!slices.Equal(states, []string{"v1.4.0:earlier", "v1.4.1:current", "v1.4.2:rolled back from", "v1.5.0:rolled back from", "v1.3.7:on hosts only"}) {
		t.Errorf("after one step back: current %s, rollback %s, history %v", cur, back, states)
	}
	rollback(`{"app":"dms-web","to":"v1.5.0"}`, "v1.5.0")
	rollback(`{"app":"dms-web","to":"v1.3.7"}`, "v1.3.7")
	if cur, back, states := current(); cur != "v1.3.7" || back != "v1.5.0" ||
		!slices.Equal(states, []string{"v1.4.0:earlier", "v1.4.1:earlier", "v1.4.2:earlier", "v1.5.0:earlier", "v1.3.7:current"}) {
		t.Errorf("after going to a release only on hosts: current %s, rollback %s, history %v", cur, back, states)
	}
	f.w.mu.Lock()
	got := fmt.Sprint(f.w.rollbacks)
	f.w.failNext = errors.New("listing the fleet: connection refused")
	f.w.mu.Unlock()
	if want := "[[dms-web v1.4.1] [dms-web v1.5.0] [dms-web v1.3.7]]"; got != want {
		t.Errorf("rollbacks = %s, want %s", got, want)
	}
	r := f.post(t, "/api/rollback", `{"app":"dms-web"}`)
	if r.status != http.StatusBadGateway || !strings.Contains(r.errorText(t), "reading the releases of dms-web: listing the fleet: connection refused") {
		t.Fatalf("rollback with a failing read: %d %s", r.status, r.body)
	}
}

// TestRollbackWithoutReleases: a server with actions but no release
// history passes the request on as it came; the action's error shows in
// the status.
func TestRollbackWithoutReleases(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Releases = nil })
	for _, tt := range []struct{ body, to, err string }{
		{`{"app":"dms-web"}`, "", ""},
		{`{"app":"dms-web","to":"bad"}`, "bad", "rollout refused before any host was changed"},
	} {
		r := f.post(t, "/api/rollback", tt.body)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST /api/rollback %s: %d %s", tt.body, r.status, r.body)
		}
		var st ActionStatus
		r.json(t, &st)
		if st.Kind != "rollback" || st.Revision != tt.to {
			t.Fatalf("status %+v", st)
		}
		waitFor(t, func() bool { a := f.srv.actionStatus(); return a != nil && !a.Running })
		if a := f.srv.actionStatus(); !strings.Contains(a.Error, tt.err) || (tt.err == "") != (a.Error == "") {
			t.Fatalf("rollback %s: error %q, want %q", tt.body, a.Error, tt.err)
		}
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if got := fmt.Sprint(f.w.rollbacks); got != "[[dms-web ] [dms-web bad]]" {
		t.Errorf("rollbacks = %s", got)
	}
	if h := f.w.releases["dms-web"]; h.revs[h.cur] != "v1.4.1" {
		t.Errorf("dms-web is at %s, want v1.4.1", h.revs[h.cur])
	}
}

func TestGetReleases(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("history", func(t *testing.T) {
		r := f.get(t, "/api/releases?app=dms-web")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var v ReleaseView
		r.json(t, &v)
		if v.App != "dms-web" || v.Current != "v1.4.2" || v.Rollback != "v1.4.1" || len(v.History) != 5 {
			t.Fatalf("view %+v", v)
		}
		if row := v.History[2]; row.Revision != "v1.4.2" || row.State != ReleaseCurrent || strings.Join(row.Hosts, " ") != "web-1 web-2 web-3 web-4" {
			t.Errorf("current row %+v", row)
		}
		if row := v.History[4]; row.Revision != "v1.3.7" || row.State != ReleaseOnHostsOnly || strings.Join(row.Hosts, " ") != "web-1" {
			t.Errorf("on hosts row %+v", row)
		}
		if h := v.Hosts[0]; h.Label != "web-1" || !h.Answered || h.Current != "v1.4.2" || strings.Join(h.Releases, " ") != "v1.3.7 v1.4.0 v1.4.1 v1.4.2" {
			t.Errorf("web-1 %+v", h)
		}
	})
	t.Run("oldest has no rollback", func(t *testing.T) {
		r := f.get(t, "/api/releases?app=postgres")
		if r.status != 200 || strings.Contains(string(r.body), `"rollback"`) || !strings.Contains(string(r.body), `"current":"16.2"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("empty lists are lists", func(t *testing.T) {
		f.w.mu.Lock()
		saved := f.w.hosts
		f.w.hosts = nil
		f.w.mu.Unlock()
		defer func() { f.w.mu.Lock(); f.w.hosts = saved; f.w.mu.Unlock() }()
		r := f.get(t, "/api/releases?app=dms-worker")
		if r.status != 200 || !strings.Contains(string(r.body), `"hosts":[]`) || strings.Contains(string(r.body), "null") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	for _, tt := range []struct {
		name, path, token string
		status            int
		want              string
	}{
		{"no token", "/api/releases?app=dms-web", "", 401, "missing bearer token"},
		{"no app", "/api/releases", testToken, 400, "app is required (known apps: postgres, dms-web, dms-worker)"},
		{"unknown app", "/api/releases?app=nginx", testToken, 400, `unknown app "nginx"`},
		{"bad app", "/api/releases?app=%3Cscript%3E", testToken, 400, "app must be a name"},
		{"wrong method", "/api/releases?app=dms-web", testToken, 405, "not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if tt.status == 405 {
				method = "POST"
			}
			r := f.do(t, method, tt.path, nil, tt.token)
			if r.status != tt.status || !strings.Contains(r.errorText(t), tt.want) {
				t.Fatalf("%d %s, want %d and %q", r.status, r.body, tt.status, tt.want)
			}
		})
	}
	t.Run("failing read", func(t *testing.T) {
		f.w.mu.Lock()
		f.w.failNext = errors.New("reading revisions: permission denied")
		f.w.mu.Unlock()
		r := f.get(t, "/api/releases?app=dms-web")
		if r.status != http.StatusBadGateway || r.errorText(t) != "reading the releases of dms-web: reading revisions: permission denied" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}
