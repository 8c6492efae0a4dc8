package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/server"
)

const serveSchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 200ms
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
interval: 1s
roles:
  - name: db
    instance_type: t3.large
    min: 1
    max: 1
  - name: web
    instance_type: t3.medium
    min: %d
    max: 4
    capacity: 50
    policies:
      load:
        source:
          push: true
        max_age: 1h
      scale_down:
        stabilization: 1s
`

const testAPIToken = "test-token-0123456789abcdef"

// servedFleet is a tide serve running inside the test.
type servedFleet struct {
	*fleetEnv
	name, network string
	addr          string
	out           *syncBuffer
	errs          *syncBuffer
	done          chan int
	cancel        context.CancelFunc
}

func (s *servedFleet) writeSchedule(t *testing.T, webMin int) {
	t.Helper()
	body := fmt.Sprintf(serveSchedule, s.name, s.network, webMin)
	// Write and rename, so the watcher never reads half a file.
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.file); err != nil {
		t.Fatal(err)
	}
}

func startServe(t *testing.T, name, network string, extra ...string) *servedFleet {
	t.Helper()
	s := newServed(t, name, network)
	s.writeSchedule(t, 1)
	s.start(t, extra...)
	return s
}

// newServed prepares a fleet on a state directory and network of its own
// for tide serve; nothing runs until start.
func newServed(t *testing.T, name, network string) *servedFleet {
	t.Helper()
	return &servedFleet{fleetEnv: newFleetEnv(t, name, network), name: name, network: network,
		out: &syncBuffer{}, errs: &syncBuffer{}, done: make(chan int, 1)}
}

// serveText runs tide serve on the schedule text until the test ends.
func serveText(t *testing.T, name, network, text string) *servedFleet {
	t.Helper()
	s := newServed(t, name, network)
	if err := os.WriteFile(s.file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	return s
}

// start runs tide serve on the env's schedule file until the test ends.
func (s *servedFleet) start(t *testing.T, extra ...string) {
	t.Helper()
	f := s.fleetEnv
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	e := &env{Stdout: s.out, Stderr: s.errs, Stdin: strings.NewReader(""),
		Getenv: func(k string) string {
			switch k {
			case "TIDE_STATE_DIR":
				return f.stateDir
			case "TIDE_TOKEN":
				return testAPIToken
			}
			return ""
		},
		Logger: slog.New(slog.NewTextHandler(s.errs, nil)),
	}
	args := append([]string{"serve", "-c", f.file, "--listen", "127.0.0.1:0", "--reload-poll", "50ms", "--grace", "5s"}, extra...)
	go func() { s.done <- run(ctx, e, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("tide serve did not stop within 30s")
		}
		// Remove the hosts through tide itself, then the env's own cleanup
		// terminates whatever is left.
		if code, _, errs := f.run(context.Background(), "down"); code != 0 {
			t.Errorf("down: exit %d: %s", code, errs)
		}
	})
	re := regexp.MustCompile(`listening on (http://[0-9.:]+)/`)
	eventually(t, 20*time.Second, "tide serve to listen", func() bool {
		select {
		case code := <-s.done:
			t.Fatalf("tide serve exited %d: %s", code, s.errs.String())
		default:
		}
		m := re.FindStringSubmatch(s.out.String())
		if m != nil {
			s.addr = m[1]
		}
		return m != nil
	})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *servedFleet) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

type rolesView struct {
	Roles []struct {
		Name     string           `json:"name"`
		Decision scheduler.Record `json:"decision"`
	} `json:"roles"`
}

func (s *servedFleet) decision(t *testing.T, role string) scheduler.Record {
	var v rolesView
	s.get(t, "/api/roles", &v)
	for _, r := range v.Roles {
		if r.Name == role {
			return r.Decision
		}
	}
	return scheduler.Record{}
}

func (s *servedFleet) liveLabels(t *testing.T) string {
	var ls []string
	for _, in := range s.live(s.name) {
		if in.State == fleet.StateRunning {
			ls = append(ls, in.Label)
		}
	}
	return strings.Join(ls, ",")
}

func TestServeOverrideReloadAndFleet(t *testing.T) {
	s := startServe(t, "served", "127.0.91.0/24")

	// The API needs the token.
	resp, err := http.Get(s.addr + "/api/roles")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/roles without a token: %d, want 401", resp.StatusCode)
	}

	eventually(t, 60*time.Second, "db-1 and web-1 to run", func() bool { return s.liveLabels(t) == "db-1,web-1" })
	if d := s.decision(t, "web"); d.Desired != 1 || !d.Frozen {
		t.Fatalf("web without load samples: %s", d)
	}

	// Load arrives: 10 needs one host, and web is no longer frozen.
	s.push(t, 10)
	eventually(t, 30*time.Second, "web decided on load", func() bool {
		d := s.decision(t, "web")
		return d.Desired == 1 && !d.Frozen && d.Load != nil && *d.Load == 10
	})

	// An operator pins web to 3: the decision and the fleet follow.
	client := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb syncBuffer
		e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Logger: discardLogger(),
			Getenv: func(k string) string {
				if k == "TIDE_TOKEN" {
					return testAPIToken
				}
				if k == "TIDE_ADDR" {
					return s.addr
				}
				return ""
			}}
		code := run(context.Background(), e, args)
		return code, out.String(), errb.String()
	}
	if code, out, errs := client("override", "set", "web=3", "--for", "30m", "--reason", "release day"); code != 0 {
		t.Fatalf("override set: exit %d: %s %s", code, out, errs)
	}
	eventually(t, 60*time.Second, "web pinned to 3 with three hosts", func() bool {
		d := s.decision(t, "web")
		return d.Desired == 3 && d.Winner == "override" && s.liveLabels(t) == "db-1,web-1,web-2,web-3"
	})
	if code, out, _ := client("override", "list"); code != 0 || !strings.Contains(out, "release day") {
		t.Fatalf("override list: exit %d: %s", code, out)
	}
	resp, err = http.Get(s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `tide_role_desired_hosts{role="web"} 3`) {
		t.Fatalf("/metrics lacks web's desired 3:\n%s", grepLines(string(metrics), "tide_"))
	}
	if !strings.Contains(string(metrics), `tide_cloud_api_call_duration_seconds_count{op="list"}`) {
		t.Fatalf("/metrics lacks the cloud call latencies:\n%s", grepLines(string(metrics), "tide_cloud"))
	}
	// Bad input gets a clear error, not a crash.
	if code, _, errs := client("override", "set", "nope=3", "--for", "1h", "--reason", "x"); code == 0 || !strings.Contains(errs, "nope") {
		t.Fatalf("override on an unknown role: exit %d: %s", code, errs)
	}

	// Clearing the override lets web go back to its minimum.
	if code, _, errs := client("override", "clear", "web"); code != 0 {
		t.Fatalf("override clear: %s", errs)
	}
	eventually(t, 60*time.Second, "web back to one host", func() bool {
		return s.decision(t, "web").Desired == 1 && s.liveLabels(t) == "db-1,web-1"
	})

	// An invalid schedule is rejected and the old one stays in force.
	if err := os.WriteFile(s.file, []byte("name: served\nroles: [{name: web, min: 5, max: 2}]\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var status struct {
		ConfigError string `json:"config_error"`
	}
	eventually(t, 20*time.Second, "the reload error in /api/status", func() bool {
		s.get(t, "/api/status", &status)
		return strings.Contains(status.ConfigError, "bogus")
	})
	if d := s.decision(t, "web"); d.Desired != 1 {
		t.Fatalf("after a rejected reload web is %d, want 1", d.Desired)
	}
	// A valid change is put in force.
	s.writeSchedule(t, 2)
	eventually(t, 60*time.Second, "web's new minimum of 2 in force", func() bool {
		var st struct {
			ConfigError string `json:"config_error"`
		}
		s.get(t, "/api/status", &st)
		return st.ConfigError == "" && s.decision(t, "web").Desired == 2 && s.liveLabels(t) == "db-1,web-1,web-2"
	})

	// Pushed load drives web: 160 at 50 a host with 20% headroom is 4.
	s.push(t, 160)
	eventually(t, 30*time.Second, "web scaled on pushed load", func() bool {
		d := s.decision(t, "web")
		return d.Desired == 4 && d.Winner == "load"
	})

	// SIGTERM (here: cancellation) stops the service cleanly.
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Fatalf("tide serve exited %d: %s", code, s.errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tide serve did not stop")
	}
	s.done <- 0 // for the cleanup
}

func TestServeRefusesOpenAddressWithoutToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(serveSchedule, "open", "127.0.92.0/24", 1)), 0o644)
	var out, errb syncBuffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Logger: discardLogger(),
		Getenv: func(k string) string {
			if k == "TIDE_STATE_DIR" {
				return dir
			}
			return ""
		}}
	code := run(context.Background(), e, []string{"serve", "-c", file, "--listen", "0.0.0.0:0", "--dry-run"})
	if code == 0 || !strings.Contains(errb.String(), "without a token") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// push sends one load sample for web to the API.
func (s *servedFleet) push(t *testing.T, v float64) {
	t.Helper()
	body := fmt.Sprintf(`{"role":"web","samples":[{"value":%v}]}`, v)
	req, _ := http.NewRequest(http.MethodPost, s.addr+"/api/samples", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST /api/samples: %d %s", resp.StatusCode, b)
	}
}

func grepLines(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

const serveAppSchedule = `name: deployed
cloud:
  provider: local
  network: 127.0.96.0/24
  boot_delay: 200ms
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
interval: 1s
applications:
  - name: site
    revision: "1.0"
    roles: [web]
    processes:
      default: 2
    commands:
      deploy: echo "{{.Revision}}" > REVISION
      start: while :; do sleep 1; done
      health: test "$(cat current/REVISION)" = "{{.Revision}}"
roles:
  - name: web
    instance_type: t3.medium
    min: 2
    max: 2
`

func TestServeDeploysARevision(t *testing.T) {
	s := serveText(t, "deployed", "127.0.96.0/24", serveAppSchedule)

	hosts := func() []server.Host {
		var v struct {
			Hosts []server.Host `json:"hosts"`
		}
		s.get(t, "/api/fleet", &v)
		return v.Hosts
	}
	allAt := func(rev string, procs int) bool {
		hs := hosts()
		if len(hs) != 2 {
			return false
		}
		for _, h := range hs {
			if h.Revision != "site="+rev || h.Processes != procs || !h.Ready {
				return false
			}
		}
		return true
	}
	eventually(t, 60*time.Second, "two web hosts running site 1.0 with 2 processes each", func() bool { return allAt("1.0", 2) })

	post := func(path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// act posts an action and waits for it to finish without error.
	act := func(path, body, kind, rev string) {
		t.Helper()
		code, b := post(path, body)
		var started server.ActionStatus
		if code != http.StatusAccepted || json.Unmarshal(b, &started) != nil || started.Kind != kind || started.Revision != rev {
			t.Fatalf("POST %s %s: %d %s, want 202 and a %s to %s", path, body, code, b, kind, rev)
		}
		var st struct {
			Action *server.ActionStatus `json:"action"`
		}
		eventually(t, 60*time.Second, "the "+kind+" to finish", func() bool {
			s.get(t, "/api/status", &st)
			return st.Action != nil && st.Action.Started.Equal(started.Started) && !st.Action.Running && st.Action.Finished != nil
		})
		if st.Action.Error != "" {
			t.Fatalf("%s to %s failed: %s", kind, rev, st.Action.Error)
		}
	}
	act("/api/deploy", `{"app":"site","revision":"1.1"}`, "deploy", "1.1")
	// The inspection cache is at most 10s old.
	eventually(t, 30*time.Second, "both hosts on site 1.1", func() bool { return allAt("1.1", 2) })

	// The schedule file names a new revision: serve reloads it, rolls it
	// out, and records it after the deploy's in the history rollback walks.
	next := strings.Replace(serveAppSchedule, `revision: "1.0"`, `revision: "1.2"`, 1)
	if err := os.WriteFile(s.file+".tmp", []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.file+".tmp", s.file); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "both hosts on site 1.2", func() bool { return allAt("1.2", 2) })
	eventually(t, 30*time.Second, "1.2 recorded in the history", func() bool {
		rec, err := converge.LoadRevisions(converge.RevisionsPath(s.stateDir, "deployed"))
		if err != nil {
			t.Fatal(err)
		}
		d := rec.Apps["site"]
		return d.Revision == "1.2" && strings.Join(d.History, " ") == "1.0 1.1 1.2"
	})

	// The API shows that history, and rolls it back as tide rollback does.
	// releases checks GET /api/releases; onDisk is each host's releases,
	// the one switched to last at the end.
	releases := func(step, current, rollback, onDisk string, rows ...string) {
		t.Helper()
		var v server.ReleaseView
		if code := s.get(t, "/api/releases?app=site", &v); code != 200 {
			t.Fatalf("%s: GET /api/releases: %d", step, code)
		}
		var got []string
		for _, r := range v.History {
			got = append(got, r.Revision+":"+r.State+":"+strings.Join(r.Hosts, ","))
		}
		if v.Current != current || v.Rollback != rollback || !slices.Equal(got, rows) {
			t.Errorf("%s: releases current %q, rollback %q, history %q; want %q, %q, %q", step, v.Current, v.Rollback, got, current, rollback, rows)
		}
		if len(v.Hosts) != 2 {
			t.Fatalf("%s: releases on %d hosts, want 2: %+v", step, len(v.Hosts), v.Hosts)
		}
		for _, h := range v.Hosts {
			if !h.Answered || h.Current != current || strings.Join(h.Releases, " ") != onDisk {
				t.Errorf("%s: %s shows current %q, releases %q (answered %v); want %s, %s", step, h.Label, h.Current, h.Releases, h.Answered, current, onDisk)
			}
		}
	}
	recorded := func(step, current string) {
		t.Helper()
		rec, err := converge.LoadRevisions(converge.RevisionsPath(s.stateDir, "deployed"))
		if err != nil {
			t.Fatal(err)
		}
		if d := rec.Apps["site"]; d.Revision != current || strings.Join(d.History, " ") != "1.0 1.1 1.2" || d.ScheduleRevision != "1.2" {
			t.Errorf("%s: recorded %+v, want %s current in 1.0 1.1 1.2 over the schedule's 1.2", step, d, current)
		}
	}
	releases("after 1.2", "1.2", "1.1", "1.0 1.1 1.2", "1.0:earlier:web-1,web-2", "1.1:earlier:web-1,web-2", "1.2:current:web-1,web-2")

	act("/api/rollback", `{"app":"site"}`, "rollback", "1.1")
	eventually(t, 30*time.Second, "both hosts back on site 1.1", func() bool { return allAt("1.1", 2) })
	recorded("after rolling back", "1.1")
	releases("after rolling back", "1.1", "1.0", "1.0 1.2 1.1", "1.0:earlier:web-1,web-2", "1.1:current:web-1,web-2", "1.2:rolled back from:web-1,web-2")

	act("/api/rollback", `{"app":"site","to":"1.0"}`, "rollback", "1.0")
	eventually(t, 30*time.Second, "both hosts back on site 1.0", func() bool { return allAt("1.0", 2) })
	recorded("after rolling back to 1.0", "1.0")
	releases("after rolling back to 1.0", "1.0", "", "1.2 1.1 1.0", "1.0:current:web-1,web-2", "1.1:rolled back from:web-1,web-2", "1.2:rolled back from:web-1,web-2")
	for body, want := range map[string]string{
		`{"app":"site"}`:            "409 no earlier release of site recorded: 1.0 is the oldest of its history",
		`{"app":"site","to":"0.9"}`: `400 no release "0.9" of site, recorded or on its hosts; known: 1.0, 1.1, 1.2`,
	} {
		code, b := post("/api/rollback", body)
		var e struct{ Error string }
		if json.Unmarshal(b, &e); fmt.Sprint(code, " ", e.Error) != want {
			t.Errorf("POST /api/rollback %s: %d %s, want %s", body, code, b, want)
		}
	}
	// The loop's steps keep the revision rolled back to, not the file's.
	var st struct {
		LastStep *time.Time `json:"last_step"`
	}
	s.get(t, "/api/status", &st)
	since := time.Now()
	if st.LastStep != nil {
		since = *st.LastStep
	}
	eventually(t, 30*time.Second, "two more steps of the loop", func() bool {
		s.get(t, "/api/status", &st)
		return st.LastStep != nil && st.LastStep.Sub(since) >= 2*time.Second
	})
	if !allAt("1.0", 2) {
		t.Errorf("the loop took the hosts off 1.0: %+v", hosts())
	}
}

const slowSetupSchedule = `name: slow
cloud:
  provider: local
  network: 127.0.97.0/24
  boot_delay: 100ms
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
interval: 1s
applications:
  - name: site
    revision: "1.0"
    roles: [web]
    commands:
      setup: sleep 8
      start: while :; do sleep 1; done
roles:
  - name: web
    instance_type: t3.medium
    min: 1
    max: 1
`

// TestServeDecidesWhileAConvergeRuns: a host whose setup takes seconds
// must not hold up the decisions: steps go on, once a second, meanwhile.
func TestServeDecidesWhileAConvergeRuns(t *testing.T) {
	s := serveText(t, "slow", "127.0.97.0/24", slowSetupSchedule)
	// Wait until the host is being set up (its setup is running).
	eventually(t, 30*time.Second, "web-1 to be launched", func() bool { return s.liveLabels(t) == "web-1" })
	steps := map[string]bool{}
	eventually(t, 20*time.Second, "three decision steps during the setup", func() bool {
		var st struct {
			LastStep string `json:"last_step"`
		}
		s.get(t, "/api/status", &st)
		if st.LastStep != "" {
			steps[st.LastStep] = true
		}
		return len(steps) >= 3
	})
	var fl struct {
		Hosts []server.Host `json:"hosts"`
	}
	s.get(t, "/api/fleet", &fl)
	for _, h := range fl.Hosts {
		if h.Ready {
			t.Fatalf("%s is ready already: the steps above did not overlap its setup", h.Label)
		}
	}
}

// TestServeReloadsOnSIGHUP: with the file watcher out of the way (an hour
// between looks), SIGHUP alone puts an edited schedule in force.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	s := startServe(t, "hupped", "127.0.98.0/24", "--reload-poll", "1h")
	eventually(t, 30*time.Second, "web at its minimum of 1", func() bool { return s.decision(t, "web").Desired == 1 })
	s.writeSchedule(t, 3)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "web's new minimum of 3 after SIGHUP", func() bool { return s.decision(t, "web").Desired == 3 })
}
