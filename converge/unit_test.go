package converge_test

import (
	"context"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
)

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
