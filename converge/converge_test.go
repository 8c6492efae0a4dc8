package converge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
)

const twoApps = `name: conv
applications:
  - name: web
    revision: "1.0"
    roles: [web]
    keep_releases: 2
    processes: {small: 4, large: 8, default: 1}
    commands:
      setup: mkdir -p data && echo once >> data/setups
      deploy: echo "{{.Revision}}" > REVISION && echo "{{.Revision}}" >> ../../data/deploys
      start: while :; do sleep 1; done
      health: test -f current/REVISION
  # reports piggybacks on the web hosts, with commands of its own.
  - name: reports
    revision: "3.0"
    processes: {default: 1}
    commands:
      start: while :; do sleep 1; done
roles:
  - name: web
    instance_type: small
    min: 1
    max: 3
    applications: [reports]
`

func newConverger(t testing.TB, text string, mod func(*converge.Options)) *converge.Converger {
	t.Helper()
	o := converge.Options{Schedule: schedule(t, text), Attempts: 2, RetryDelay: 10 * time.Millisecond,
		StopTimeout: 5 * time.Second, HealthTimeout: 10 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := converge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pids returns the pid files' contents of an application, by index.
func pids(t testing.TB, tg target, app string) map[string]string {
	t.Helper()
	out := run(t, tg, fmt.Sprintf(`cd %s/apps/%s/run 2>/dev/null || exit 0; for f in *.pid; do [ -f "$f" ] && echo "${f%%.pid} $(cat "$f")"; done`, tg.data, app))
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if i, pid, ok := strings.Cut(line, " "); ok {
			m[i] = pid
		}
	}
	return m
}

// alive reports whether a process of this machine runs (zombies do not).
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/stat")
	if err != nil || strings.TrimSpace(pid) == "" {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func appState(t testing.TB, tg target, name string) converge.AppState {
	t.Helper()
	st, err := converge.Inspect(context.Background(), tg.h, tg.data)
	if err != nil {
		t.Fatal(err)
	}
	as, ok := st.App(name)
	if !ok {
		t.Fatalf("no application %s on the host: %+v", name, st)
	}
	return as
}

func TestConverge(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			tg := be.start(t, "web-1", "large")
			c := newConverger(t, twoApps, nil)
			if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
				t.Fatal(err)
			}
			web, rep := appState(t, tg, "web"), appState(t, tg, "reports")
			if web.Revision != "1.0" || web.Running != 8 {
				t.Errorf("web: revision %q, %d running; want 1.0 and 8 (large host)", web.Revision, web.Running)
			}
			if rep.Revision != "3.0" || rep.Running != 1 {
				t.Errorf("reports: revision %q, %d running; want 3.0 and 1", rep.Revision, rep.Running)
			}
			if got := run(t, tg, "cat "+tg.data+"/apps/web/current/REVISION"); got != "1.0" {
				t.Errorf("current/REVISION = %q", got)
			}
			webPids, repPids := pids(t, tg, "web"), pids(t, tg, "reports")
			for i, pid := range webPids {
				if !alive(pid) {
					t.Errorf("web process %s (pid %s) is not alive", i, pid)
				}
			}

			t.Run("idempotent", func(t *testing.T) {
				if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
					t.Fatal(err)
				}
				if got := pids(t, tg, "web"); !mapsEqual(got, webPids) {
					t.Errorf("pids changed on a converge that had nothing to do: %v -> %v", webPids, got)
				}
				if got := run(t, tg, "cat "+tg.data+"/apps/web/data/setups"); got != "once" {
					t.Errorf("setup ran again: %q", got)
				}
				if got := run(t, tg, "cat "+tg.data+"/apps/web/data/deploys"); got != "1.0" {
					t.Errorf("deploy ran again: %q", got)
				}
			})

			t.Run("new revision restarts only that app", func(t *testing.T) {
				c2, err := c.WithRevision("web", "1.1")
				if err != nil {
					t.Fatal(err)
				}
				if err := c2.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
					t.Fatal(err)
				}
				got := pids(t, tg, "web")
				if len(got) != 8 {
					t.Fatalf("web pids after the new revision: %v", got)
				}
				for i, pid := range got {
					if pid == webPids[i] {
						t.Errorf("web process %s kept pid %s across a revision change", i, pid)
					}
					if alive(webPids[i]) {
						t.Errorf("old web process %s (pid %s) still runs", i, webPids[i])
					}
				}
				if g := pids(t, tg, "reports"); !mapsEqual(g, repPids) {
					t.Errorf("reports restarted by web's deploy: %v -> %v", repPids, g)
				}
				if as := appState(t, tg, "web"); as.Revision != "1.1" || !slices.Equal(as.Releases, []string{"1.0", "1.1"}) {
					t.Errorf("web after 1.1: revision %q releases %v", as.Revision, as.Releases)
				}
				webPids = got
			})

			t.Run("count change starts and stops the difference", func(t *testing.T) {
				c3, err := c.WithRevision("web", "1.1")
				if err != nil {
					t.Fatal(err)
				}
				tg3 := tg
				tg3.inst.Type = "small" // 4 processes
				if err := c3.Converge(ctx, tg3.h, tg3.inst, "web"); err != nil {
					t.Fatal(err)
				}
				got := pids(t, tg, "web")
				if len(got) != 4 {
					t.Fatalf("web pids on a small host: %v", got)
				}
				for i, pid := range got {
					if pid != webPids[i] {
						t.Errorf("process %s restarted (%s -> %s) by a count change", i, webPids[i], pid)
					}
				}
				for _, i := range []string{"5", "6", "7", "8"} {
					if alive(webPids[i]) {
						t.Errorf("process %s (pid %s) above the count still runs", i, webPids[i])
					}
				}
			})

			t.Run("rollback switches back without deploying", func(t *testing.T) {
				as := appState(t, tg, "web")
				prev, ok := as.Previous()
				if !ok || prev != "1.0" {
					t.Fatalf("Previous() = %q, %v; want 1.0", prev, ok)
				}
				c4, err := c.WithRevision("web", prev)
				if err != nil {
					t.Fatal(err)
				}
				tg4 := tg
				tg4.inst.Type = "small"
				if err := c4.Converge(ctx, tg4.h, tg4.inst, "web"); err != nil {
					t.Fatal(err)
				}
				if got := run(t, tg, "cat "+tg.data+"/apps/web/current/REVISION"); got != "1.0" {
					t.Errorf("current/REVISION after rollback = %q", got)
				}
				if got := run(t, tg, "cat "+tg.data+"/apps/web/data/deploys"); got != "1.0\n1.1" {
					t.Errorf("deploys = %q: rollback deployed again", got)
				}
			})

			t.Run("keeps the last releases", func(t *testing.T) {
				for _, rev := range []string{"1.2", "1.3"} {
					cr, err := c.WithRevision("web", rev)
					if err != nil {
						t.Fatal(err)
					}
					if err := cr.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
						t.Fatal(err)
					}
				}
				if as := appState(t, tg, "web"); !slices.Equal(as.Releases, []string{"1.2", "1.3"}) {
					t.Errorf("releases = %v, want the last 2", as.Releases)
				}
				if got := run(t, tg, "ls "+tg.data+"/apps/web/releases | tr '\\n' ' '"); got != "1.2 1.3" {
					t.Errorf("releases dir holds %q", got)
				}
			})

			t.Run("drain stops every process", func(t *testing.T) {
				before := pids(t, tg, "web")
				if err := c.BeforeTerminate(ctx, tg.h, tg.inst); err != nil {
					t.Fatal(err)
				}
				for i, pid := range before {
					if alive(pid) {
						t.Errorf("process %s (pid %s) survived the drain", i, pid)
					}
				}
				if as := appState(t, tg, "reports"); as.Running != 0 {
					t.Errorf("reports: %d running after the drain", as.Running)
				}
			})
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFailedDeployLeavesCurrent(t *testing.T) {
	t.Parallel()
	const text = `name: conv
applications:
  - name: web
    revision: "1.0"
    roles: [web]
    processes: {default: 2}
    commands:
      deploy: echo "{{.Revision}}" > REVISION && test "{{.Revision}}" != bad
      start: while :; do sleep 1; done
roles:
  - name: web
    min: 1
    max: 1
`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			tg := be.start(t, "web-1", "")
			c := newConverger(t, text, nil)
			bad, err := c.WithRevision("web", "bad")
			if err != nil {
				t.Fatal(err)
			}
			// A host that never converged is to be replaced.
			err = bad.Converge(ctx, tg.h, tg.inst, "web")
			if !errors.Is(err, deployer.ErrReplaceHost) {
				t.Fatalf("first deploy failing: %v, want ErrReplaceHost", err)
			}
			if out := run(t, tg, "readlink "+tg.data+"/apps/web/current || echo none"); out != "none" {
				t.Errorf("current points to %q after a failed deploy", out)
			}
			if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
				t.Fatal(err)
			}
			before := pids(t, tg, "web")
			// A ready host keeps its release and its processes.
			err = bad.Converge(ctx, tg.h, tg.inst, "web")
			if err == nil || errors.Is(err, deployer.ErrReplaceHost) {
				t.Fatalf("deploy failing on a ready host: %v, want an error that does not replace it", err)
			}
			if !strings.Contains(err.Error(), "application web: deploying bad") {
				t.Errorf("error does not say what failed: %v", err)
			}
			as := appState(t, tg, "web")
			if as.Revision != "1.0" || as.Running != 2 {
				t.Errorf("after the failed deploy: revision %q, %d running", as.Revision, as.Running)
			}
			if slices.Contains(as.Releases, "bad") {
				t.Errorf("the failed release counts as complete: %v", as.Releases)
			}
			if got := pids(t, tg, "web"); !mapsEqual(got, before) {
				t.Errorf("processes restarted by a failed deploy: %v -> %v", before, got)
			}
		})
	}
}
