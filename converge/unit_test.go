package converge_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
)

func TestRevisionsPrecedence(t *testing.T) {
	s := &config.Schedule{Applications: []config.Application{{Name: "web", Revision: "2.0"}, {Name: "db", Revision: "1"}}}
	for _, tc := range []struct {
		name string
		rec  map[string]converge.Deployed
		want map[string]string
	}{
		{"nothing deployed", nil, map[string]string{"web": "2.0", "db": "1"}},
		{"deployed over the same file", map[string]converge.Deployed{"web": {Revision: "2.1", ScheduleRevision: "2.0"}},
			map[string]string{"web": "2.1", "db": "1"}},
		{"file edited since", map[string]converge.Deployed{"web": {Revision: "2.1", ScheduleRevision: "1.9"}},
			map[string]string{"web": "2.0", "db": "1"}},
		{"application gone from the file", map[string]converge.Deployed{"old": {Revision: "9", ScheduleRevision: "9"}},
			map[string]string{"web": "2.0", "db": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := converge.Revisions{Apps: tc.rec}.Effective(s)
			if len(got) != len(tc.want) || got["web"] != tc.want["web"] || got["db"] != tc.want["db"] {
				t.Errorf("Effective = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRevisionsFile(t *testing.T) {
	path := converge.RevisionsPath(t.TempDir(), "fleet")
	r, err := converge.LoadRevisions(path)
	if err != nil || len(r.Apps) != 0 {
		t.Fatalf("missing file: %+v, %v", r, err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r.Apps["web"] = converge.Deployed{Revision: "2.1", Previous: "2.0", ScheduleRevision: "2.0", At: at}
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".revisions*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	back, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Apps["web"]; got != r.Apps["web"] {
		t.Errorf("read back %+v, want %+v", got, r.Apps["web"])
	}
}

// TestDrainKillsStubbornProcesses checks the stop deadline: a process
// that ignores SIGTERM and its stop command is killed once it passes.
func TestDrainKillsStubbornProcesses(t *testing.T) {
	t.Parallel()
	const text = `name: conv
applications:
  - name: web
    revision: "1"
    roles: [web]
    processes: {default: 2}
    commands:
      start: trap '' TERM; while :; do sleep 1; done
      stop: echo "stopping {{.Index}} $TIDE_PID" >> stops
roles:
  - name: web
    min: 0
    max: 1
`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			tg := be.start(t, "web-1", "")
			c := newConverger(t, text, func(o *converge.Options) { o.StopTimeout = 300 * time.Millisecond })
			if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
				t.Fatal(err)
			}
			before := pids(t, tg, "web")
			if err := c.BeforeTerminate(ctx, tg.h, tg.inst); err != nil {
				t.Fatal(err)
			}
			for i, pid := range before {
				if alive(pid) {
					t.Errorf("process %s (pid %s) ignoring SIGTERM survived the drain", i, pid)
				}
			}
			want := "stopping 1 " + before["1"] + "\nstopping 2 " + before["2"]
			if got := run(t, tg, "cat "+tg.data+"/apps/web/stops"); got != want {
				t.Errorf("stop commands ran as %q, want %q", got, want)
			}
		})
	}
}
