package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/scheduler"
)

const testToken = "t0ken-for-tests"

var t0 = time.Date(2025, 3, 28, 10, 0, 0, 0, time.UTC)

type fixture struct {
	w   *world
	srv *Server
	clk *clock.Virtual
}

func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	clk := clock.NewVirtual(t0)
	w := newWorld(clk)
	o := w.options(testToken)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "tide_test_total", Help: "a test counter"}))
	o.Metrics = reg
	if edit != nil {
		edit(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{w: w, srv: srv, clk: clk}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

func (r response) errorText(t *testing.T) string {
	t.Helper()
	var e errorBody
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("response %d has no error message: %s", r.status, r.body)
	}
	return e.Error
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, token string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (f *fixture) get(t *testing.T, path string) response {
	return f.do(t, "GET", path, nil, testToken)
}

func (f *fixture) post(t *testing.T, path, body string) response {
	return f.do(t, "POST", path, strings.NewReader(body), testToken)
}

func TestNewChecksOptions(t *testing.T) {
	w := newWorld(clock.NewVirtual(t0))
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no token", func(o *Options) { o.Token = "" }, "token is required"},
		{"no decisions", func(o *Options) { o.Decisions = nil }, "Decisions is required"},
		{"no schedule", func(o *Options) { o.Schedule = nil }, "Schedule is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := w.options(testToken)
			tt.edit(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		path   string
		header string
		status int
	}{
		{"no header", "/api/fleet", "", 401},
		{"wrong token", "/api/fleet", "Bearer nope", 401},
		{"token prefix", "/api/fleet", "Bearer " + testToken[:5], 401},
		{"token with suffix", "/api/fleet", "Bearer " + testToken + "x", 401},
		{"basic scheme", "/api/fleet", "Basic " + testToken, 401},
		{"bare token", "/api/fleet", testToken, 401},
		{"right token", "/api/fleet", "Bearer " + testToken, 200},
		{"every api route needs it", "/api/overrides", "", 401},
		{"status needs it", "/api/status", "", 401},
		{"health is open", "/api/health", "", 200},
		{"metrics are open", "/metrics", "", 200},
		{"page is open", "/", "", 200},
		{"assets are open", "/static/app.js", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 401 {
				r := response{status: rec.Code, body: rec.Body.Bytes()}
				if msg := r.errorText(t); !strings.Contains(msg, "token") {
					t.Errorf("error %q does not mention the token", msg)
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
}

func TestPageAndHeaders(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "GET", "/", nil, "")
	if !bytes.Contains(r.body, []byte("<title>office-dms · tide</title>")) || !bytes.Contains(r.body, []byte(`id="override-form"`)) {
		t.Fatalf("page does not look like tide's: %.300s", r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff header")
	}
	js := f.do(t, "GET", "/static/app.js", nil, "")
	if !strings.Contains(js.header.Get("Content-Type"), "javascript") || !bytes.Contains(js.body, []byte("Authorization")) {
		t.Errorf("app.js: %s %.100s", js.header.Get("Content-Type"), js.body)
	}
	if m := f.do(t, "GET", "/metrics", nil, ""); !bytes.Contains(m.body, []byte("tide_test_total 0")) {
		t.Errorf("/metrics does not serve the registry: %.300s", m.body)
	}
	if api := f.get(t, "/api/status"); api.header.Get("Cache-Control") != "no-store" {
		t.Error("API responses may be cached")
	}
}

func TestReadRoutes(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("status", func(t *testing.T) {
		f.w.mu.Lock()
		f.w.configErr = errors.New("examples/x.yaml:3:7: min must not exceed max")
		f.w.applyErr = errors.New("launching web-5: insufficient capacity")
		f.w.mu.Unlock()
		defer func() {
			f.w.mu.Lock()
			f.w.configErr, f.w.applyErr = nil, nil
			f.w.mu.Unlock()
		}()
		var st statusView
		f.get(t, "/api/status").json(t, &st)
		if !strings.Contains(st.ConfigError, "x.yaml:3:7") || !strings.Contains(st.ApplyError, "web-5") || st.LastStep == nil || !st.LastStep.Equal(t0) {
			t.Fatalf("status = %+v", st)
		}
		if got := strings.Join(st.Features, " "); got != "history overrides fleet forecasts actions releases samples metrics" {
			t.Errorf("features = %v", st.Features)
		}
	})
	t.Run("fleet", func(t *testing.T) {
		var got struct{ Hosts []Host }
		r := f.get(t, "/api/fleet")
		r.json(t, &got)
		if r.status != 200 || len(got.Hosts) != 8 || got.Hosts[0].Label != "db-1" || got.Hosts[7].Label != "worker-2" || got.Hosts[7].Ready {
			t.Fatalf("fleet %d: %+v", r.status, got.Hosts)
		}
	})
	t.Run("roles", func(t *testing.T) {
		var got struct {
			Roles []struct {
				Name     string
				Summary  string
				Decision *scheduler.Record
			}
			LastStep time.Time `json:"last_step"`
		}
		f.get(t, "/api/roles").json(t, &got)
		if len(got.Roles) != 3 || got.Roles[1].Name != "web" || got.Roles[1].Decision == nil || !strings.HasPrefix(got.Roles[1].Summary, "web: ") {
			t.Fatalf("roles = %+v", got)
		}
	})
	t.Run("schedule", func(t *testing.T) {
		var wk WeekView
		f.get(t, "/api/schedule").json(t, &wk)
		if wk.Zone != "Europe/Paris" || len(wk.Hours) != 168 || len(wk.Roles) != 3 {
			t.Fatalf("week: zone %q, %d hours, roles %v", wk.Zone, len(wk.Hours), wk.Roles)
		}
	})
	t.Run("decisions", func(t *testing.T) {
		var got struct{ Decisions []scheduler.Record }
		f.get(t, "/api/decisions?role=web&limit=5").json(t, &got)
		if len(got.Decisions) != 5 || got.Decisions[0].Role != "web" || got.Decisions[0].At.Before(got.Decisions[4].At) {
			t.Fatalf("decisions = %+v", got.Decisions)
		}
		var all struct{ Decisions []scheduler.Record }
		f.get(t, "/api/decisions?since=1h&limit=1000").json(t, &all)
		if len(all.Decisions) != 3*5 { // every 15 minutes, three roles, 10:00 included
			t.Errorf("decisions in the last hour = %d, want 15", len(all.Decisions))
		}
		var changes struct{ Decisions []scheduler.Record }
		f.get(t, "/api/decisions?changes=true&limit=1000").json(t, &changes)
		for _, rec := range changes.Decisions {
			if rec.Role == "db" && rec.At.After(t0.Add(-23*time.Hour)) {
				t.Errorf("db never changes but the change log has %v", rec.At)
			}
		}
		if len(changes.Decisions) == 0 || len(changes.Decisions) >= 3*97 {
			t.Errorf("changes only = %d records", len(changes.Decisions))
		}
	})
	t.Run("chart", func(t *testing.T) {
		f.get(t, "/api/fleet") // a fleet snapshot for the ready line
		var c Chart
		r := f.get(t, "/api/roles/web/chart?hours=24")
		r.json(t, &c)
		if r.status != 200 || len(c.Load) == 0 || len(c.Load) > chartPoints+1 || len(c.Desired) < 2 || len(c.ForecastUsed) == 0 ||
			c.Forecast == nil || len(c.Forecast.Points) == 0 || c.Capacity != 100 {
			t.Fatalf("chart %d: load %d desired %d used %d forecast %+v", r.status, len(c.Load), len(c.Desired), len(c.ForecastUsed), c.Forecast)
		}
		if len(c.Ready) != 1 || c.Ready[0].Value != 4 {
			t.Errorf("ready = %+v, want one point of 4", c.Ready)
		}
		for i := 1; i < len(c.Desired)-1; i++ {
			if c.Desired[i].Value == c.Desired[i-1].Value {
				t.Fatalf("desired repeats a value at %d: %+v", i, c.Desired[i-1:i+1])
			}
		}
		var db Chart
		f.get(t, "/api/roles/db/chart").json(t, &db)
		if db.Forecast != nil || len(db.Load) != 0 {
			t.Errorf("db is not load-driven but has forecast %+v and load %d", db.Forecast, len(db.Load))
		}
	})
	t.Run("chart without forecast", func(t *testing.T) {
		f.w.mu.Lock()
		f.w.roles[2].LoadDriven = true
		f.w.mu.Unlock()
		var c Chart
		f.get(t, "/api/roles/worker/chart").json(t, &c)
		if c.Forecast != nil || !strings.Contains(c.ForecastNote, "insufficient history") {
			t.Errorf("forecast %+v note %q", c.Forecast, c.ForecastNote)
		}
	})
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBody = 1024 })
	valid := `{"role":"web","count":6,"kind":"pin","for":"30m","reason":"test"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"not json", "POST", "/api/overrides", `{"role":`, 400, "not valid JSON"},
		{"garbage", "POST", "/api/overrides", `role=web`, 400, "not valid JSON"},
		{"empty body", "POST", "/api/overrides", ``, 400, "empty"},
		{"unknown field", "POST", "/api/overrides", `{"role":"web","count":6,"for":"1h","reason":"x","colour":"red"}`, 400, `unknown field "colour"`},
		{"two objects", "POST", "/api/overrides", valid + valid, 400, "data after"},
		{"wrong type", "POST", "/api/overrides", `{"role":"web","count":"six","for":"1h","reason":"x"}`, 400, `"count" must be of type int`},
		{"huge body", "POST", "/api/overrides", `{"role":"web","reason":"` + strings.Repeat("x", 4096) + `"}`, 413, "larger than 1024 bytes"},
		{"unknown role", "POST", "/api/overrides", `{"role":"cache","count":1,"for":"1h","reason":"x"}`, 400, `unknown role "cache" (known roles: db, web, worker)`},
		{"no role", "POST", "/api/overrides", `{"count":1,"for":"1h","reason":"x"}`, 400, "role is required"},
		{"no count", "POST", "/api/overrides", `{"role":"web","for":"1h","reason":"x"}`, 400, "count is required"},
		{"negative count", "POST", "/api/overrides", `{"role":"web","count":-1,"for":"1h","reason":"x","ignore_limits":true}`, 400, "must not be negative"},
		{"above max", "POST", "/api/overrides", `{"role":"web","count":13,"for":"1h","reason":"x"}`, 400, "outside web's limits 2..12"},
		{"far above max", "POST", "/api/overrides", `{"role":"web","count":100000,"for":"1h","reason":"x","ignore_limits":true}`, 400, "above the most"},
		{"bad kind", "POST", "/api/overrides", `{"role":"web","count":3,"kind":"exact","for":"1h","reason":"x"}`, 400, `kind must be "pin" or "floor"`},
		{"bad duration", "POST", "/api/overrides", `{"role":"web","count":3,"for":"soon","reason":"x"}`, 400, "positive duration"},
		{"negative duration", "POST", "/api/overrides", `{"role":"web","count":3,"for":"-1h","reason":"x"}`, 400, "positive duration"},
		{"too long", "POST", "/api/overrides", `{"role":"web","count":3,"for":"10000h","reason":"x"}`, 400, "at most"},
		{"both expiries", "POST", "/api/overrides", `{"role":"web","count":3,"for":"1h","until":"2030-01-01T00:00:00Z","reason":"x"}`, 400, "not both"},
		{"no expiry", "POST", "/api/overrides", `{"role":"web","count":3,"reason":"x"}`, 400, "is required"},
		{"past until", "POST", "/api/overrides", `{"role":"web","count":3,"until":"2020-01-01T00:00:00Z","reason":"x"}`, 400, "not in the future"},
		{"bad until", "POST", "/api/overrides", `{"role":"web","count":3,"until":"tomorrow","reason":"x"}`, 400, "RFC 3339"},
		{"no reason", "POST", "/api/overrides", `{"role":"web","count":3,"for":"1h","reason":"  "}`, 400, "reason is required"},
		{"clear unknown role", "DELETE", "/api/overrides/cache", ``, 404, `unknown role "cache"`},
		{"clear without override", "DELETE", "/api/overrides/web", ``, 404, "has no override"},
		{"chart unknown role", "GET", "/api/roles/cache/chart", ``, 404, `unknown role "cache"`},
		{"chart bad hours", "GET", "/api/roles/web/chart?hours=1000", ``, 400, "hours must be"},
		{"decisions unknown role", "GET", "/api/decisions?role=cache", ``, 400, `unknown role "cache"`},
		{"decisions bad limit", "GET", "/api/decisions?limit=0", ``, 400, "limit must be"},
		{"decisions bad since", "GET", "/api/decisions?since=yesterday", ``, 400, "since:"},
		{"decisions bad changes", "GET", "/api/decisions?changes=maybe", ``, 400, "changes must be"},
		{"deploy unknown app", "POST", "/api/deploy", `{"app":"nginx","revision":"v1"}`, 400, `unknown app "nginx" (known apps: postgres, dms-web, dms-worker)`},
		{"deploy bad revision", "POST", "/api/deploy", `{"app":"dms-web","revision":"v1; rm -rf /"}`, 400, "revision must be"},
		{"deploy no revision", "POST", "/api/deploy", `{"app":"dms-web"}`, 400, "revision must be"},
		{"apply with unknown body", "POST", "/api/apply", `{"now":true}`, 400, "unknown field"},
		{"samples unknown role", "POST", "/api/samples", `{"role":"cache","samples":[{"value":1}]}`, 400, "unknown role"},
		{"samples empty", "POST", "/api/samples", `{"role":"web","samples":[]}`, 400, "samples is empty"},
		{"samples refused", "POST", "/api/samples", `{"role":"web","samples":[{"value":-5}]}`, 400, "sample 0: negative load"},
		{"unknown route", "GET", "/api/nothing", ``, 404, "no API route GET /api/nothing"},
		{"wrong method", "PUT", "/api/overrides", `{}`, 405, "method PUT is not allowed"},
		{"wrong method on fleet", "DELETE", "/api/fleet", ``, 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, tt.method, tt.path, strings.NewReader(tt.body), testToken)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if msg := r.errorText(t); !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
	if n := f.w.kicks.Load(); n != 0 {
		t.Errorf("refused requests kicked the loop %d times", n)
	}
	if ovs, _ := f.w.Overrides(t0); len(ovs) != 0 {
		t.Errorf("refused requests stored overrides: %+v", ovs)
	}
}

func TestOverrideRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	r := f.post(t, "/api/overrides", `{"role":"web","count":9,"for":"2h","reason":"marketing campaign"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	var o scheduler.Override
	r.json(t, &o)
	if o.Kind != scheduler.Pin || o.Count != 9 || !o.Until.Equal(t0.Add(2*time.Hour)) || !o.CreatedAt.Equal(t0) || o.Reason != "marketing campaign" {
		t.Fatalf("stored %+v", o)
	}
	if f.w.kicks.Load() != 1 {
		t.Fatalf("OnOverride called %d times, want 1", f.w.kicks.Load())
	}
	var list struct{ Overrides []scheduler.Override }
	f.get(t, "/api/overrides").json(t, &list)
	if len(list.Overrides) != 1 || list.Overrides[0].Role != "web" {
		t.Fatalf("overrides = %+v", list)
	}
	var roles struct {
		Roles []struct {
			Name     string
			Decision scheduler.Record
			Override *scheduler.Override
		}
	}
	f.get(t, "/api/roles").json(t, &roles)
	web := roles.Roles[1]
	if web.Decision.Desired != 9 || web.Decision.Winner != "override" || web.Override == nil || web.Override.Count != 9 {
		t.Fatalf("web after override: %+v", web)
	}

	// A floor with an explicit expiry replaces the pin.
	r = f.post(t, "/api/overrides", `{"role":"web","count":3,"kind":"floor","until":"2025-03-28T12:30:00+01:00","reason":"keep a floor","ignore_limits":false}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST floor: %d %s", r.status, r.body)
	}
	r.json(t, &o)
	if o.Kind != scheduler.FloorOverride || !o.Until.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("floor stored as %+v", o)
	}
	if r := f.do(t, "DELETE", "/api/overrides/web", nil, testToken); r.status != 200 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if f.w.kicks.Load() != 3 {
		t.Errorf("OnOverride called %d times, want 3", f.w.kicks.Load())
	}
	f.get(t, "/api/overrides").json(t, &list)
	if len(list.Overrides) != 0 {
		t.Fatalf("override still listed: %+v", list)
	}
	if r := f.do(t, "DELETE", "/api/overrides/web", nil, testToken); r.status != 404 {
		t.Fatalf("second DELETE: %d %s", r.status, r.body)
	}

	// A failing store is a 500 that says what failed, and no kick.
	f.w.mu.Lock()
	f.w.failNext = errors.New("disk full")
	f.w.mu.Unlock()
	r = f.post(t, "/api/overrides", `{"role":"web","count":9,"for":"2h","reason":"x"}`)
	if r.status != 500 || !strings.Contains(r.errorText(t), "storing the override: disk full") {
		t.Fatalf("failing store: %d %s", r.status, r.body)
	}
	if f.w.kicks.Load() != 3 {
		t.Errorf("a failed store kicked the loop")
	}
}

// gatedActions blocks each action until released.
type gatedActions struct {
	gate  chan error
	calls atomic.Int32
}

func (g *gatedActions) Apply(ctx context.Context) error {
	g.calls.Add(1)
	select {
	case err := <-g.gate:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedActions) Deploy(ctx context.Context, app, revision string) error { return g.Apply(ctx) }

func (g *gatedActions) Rollback(ctx context.Context, app, to string) error { return g.Apply(ctx) }

func (g *gatedActions) Replace(ctx context.Context, r ReplaceRequest) (*ActionResult, error) {
	return nil, g.Apply(ctx)
}

func TestActions(t *testing.T) {
	g := &gatedActions{gate: make(chan error)}
	f := newFixture(t, func(o *Options) { o.Actions = g })
	r := f.post(t, "/api/apply", "")
	if r.status != http.StatusAccepted {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	if r := f.post(t, "/api/deploy", `{"app":"dms-web","revision":"v1.5.0"}`); r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "apply started at 10:00:00 is still running") {
		t.Fatalf("deploy during apply: %d %s", r.status, r.body)
	}
	if r := f.post(t, "/api/rollback", `{"app":"dms-web"}`); r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "apply started at 10:00:00 is still running") {
		t.Fatalf("rollback during apply: %d %s", r.status, r.body)
	}
	status := func() *ActionStatus {
		var st statusView
		f.get(t, "/api/status").json(t, &st)
		return st.Action
	}
	if a := status(); a == nil || !a.Running || a.Kind != "apply" {
		t.Fatalf("action = %+v", a)
	}
	g.gate <- errors.New("launching web-5: no capacity")
	waitFor(t, func() bool { a := status(); return a != nil && !a.Running })
	if a := status(); a.Error != "launching web-5: no capacity" || a.Finished == nil {
		t.Fatalf("finished action = %+v", a)
	}
	r = f.post(t, "/api/deploy", `{"app":"dms-web","revision":"v1.5.0"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	var st ActionStatus
	r.json(t, &st)
	if st.Kind != "deploy" || st.App != "dms-web" || st.Revision != "v1.5.0" {
		t.Fatalf("deploy status %+v", st)
	}
	g.gate <- nil
	waitFor(t, func() bool { a := status(); return a != nil && !a.Running && a.Error == "" })

	// Run's end cancels a running action and refuses new ones.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.srv.Run(ctx) }()
	if r := f.post(t, "/api/apply", ""); r.status != http.StatusAccepted {
		t.Fatalf("apply: %d", r.status)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if a := status(); a.Running || !strings.Contains(a.Error, "context canceled") {
		t.Fatalf("action after Run ended: %+v", a)
	}
	if r := f.post(t, "/api/apply", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("apply after shutdown: %d %s", r.status, r.body)
	}
}

func TestRunSamplesReadyHosts(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SampleInterval = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	chart := func() Chart {
		var c Chart
		f.get(t, "/api/roles/worker/chart").json(t, &c)
		return c
	}
	waitFor(t, func() bool { return len(chart().Ready) == 1 })
	f.w.mu.Lock()
	f.w.hosts[7].Ready = true // worker-2 becomes ready
	f.w.mu.Unlock()
	// Advance until Run's next sample records the change.
	waitFor(t, func() bool {
		f.clk.Advance(time.Minute)
		c := chart()
		return len(c.Ready) >= 2 && c.Ready[len(c.Ready)-1].Value == 2
	})
	cancel()
	<-done
	c := chart()
	if c.Ready[0].Value != 1 {
		t.Errorf("ready started at %v, want 1", c.Ready[0].Value)
	}
}

// panickyFleet stands for a component with a bug.
type panickyFleet struct{}

func (panickyFleet) Hosts(ctx context.Context) ([]Host, error) { panic("index out of range") }

func TestPanicIsA500AndTheServerGoesOn(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Fleet = panickyFleet{} })
	r := f.get(t, "/api/fleet")
	if r.status != 500 || r.errorText(t) != "internal error" {
		t.Fatalf("panic: %d %s", r.status, r.body)
	}
	if r := f.get(t, "/api/roles"); r.status != 200 {
		t.Fatalf("after a panic: %d", r.status)
	}
}

func TestMissingPartsAre501(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.History, o.Overrides, o.Fleet, o.Forecasts, o.Actions, o.Releases, o.Samples, o.Metrics = nil, nil, nil, nil, nil, nil, nil, nil
	})
	for _, p := range []string{"/api/fleet", "/api/decisions", "/api/overrides", "/api/releases?app=dms-web"} {
		if r := f.get(t, p); r.status != 501 {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	for _, p := range []string{"/api/apply", "/api/deploy", "/api/rollback", "/api/overrides", "/api/samples"} {
		if r := f.post(t, p, "{}"); r.status != 501 {
			t.Errorf("POST %s: %d", p, r.status)
		}
	}
	if r := f.get(t, "/api/roles/web/chart"); r.status != 200 {
		t.Errorf("chart without history: %d", r.status)
	}
	if r := f.do(t, "GET", "/metrics", nil, ""); r.status != 404 {
		t.Errorf("/metrics without a registry: %d", r.status)
	}
}

func TestPushSamples(t *testing.T) {
	f := newFixture(t, nil)
	r := f.post(t, "/api/samples", `{"role":"worker","samples":[{"value":12.5},{"at":"2025-03-28T09:59:00Z","value":11}]}`)
	if r.status != 200 {
		t.Fatalf("push: %d %s", r.status, r.body)
	}
	got, _ := f.w.Samples("worker", time.Time{})
	if len(got) != 2 || !got[0].At.Equal(t0) || got[0].Value != 12.5 || got[1].Value != 11 {
		t.Fatalf("samples = %+v", got)
	}
}

func TestDownsampleKeepsPeaks(t *testing.T) {
	var ps []Point
	for i := range 10000 {
		v := 1.0
		if i == 4321 {
			v = 99
		}
		ps = append(ps, Point{t0.Add(time.Duration(i) * time.Second), v})
	}
	out := downsample(ps, t0, t0.Add(10000*time.Second), 100)
	if len(out) > 101 {
		t.Fatalf("%d points, want at most 101", len(out))
	}
	peak := false
	for _, p := range out {
		peak = peak || p.Value == 99
	}
	if !peak {
		t.Fatal("the peak was lost")
	}
}

// FuzzPostBodies sends arbitrary bodies to every POST route: nothing a
// client sends may crash the server or make it answer 500.
func FuzzPostBodies(f *testing.F) {
	for _, s := range []string{`{"role":"web","count":6,"for":"1h","reason":"x"}`, `{"app":"dms-web","revision":"v1"}`, `{"app":"dms-web","to":"v1.4.0"}`,
		`{"role":"web","samples":[{"value":1e308}]}`, `[]`, `null`, `{"count":1e400}`, "\x00\xff", `{"role":"web","count":2,"until":"9999-12-31T23:59:59Z","reason":"x"}`} {
		f.Add(s)
	}
	clk := clock.NewVirtual(t0)
	w := newWorld(clk)
	o := w.options(testToken)
	o.Actions = nil // no background goroutines from the fuzzer
	srv, err := New(o)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/api/overrides", "/api/deploy", "/api/rollback", "/api/samples", "/api/apply"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != 501 {
				t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		<-time.After(time.Millisecond) // a polling interval
	}
}
