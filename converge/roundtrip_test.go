package converge_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
)

// countingHost counts the commands (SSH sessions) run on a host.
type countingHost struct {
	deployer.Host
	n *atomic.Int32
}

func (h countingHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	h.n.Add(1)
	return h.Host.Run(ctx, cmd, stdin)
}

// TestDeployRoundTrips checks that deploying a new revision to a ready
// host takes two SSH sessions (inspect; release, switch, restart and the
// first health attempt), and that converging a host already there takes two (inspect,
// health): with hundreds of hosts, each session and the shell it starts
// count.
func TestDeployRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tg := startLocal(t, "web-1", "")
	c := newConverger(t, benchSchedule, nil)
	if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
		t.Fatal(err)
	}
	next, err := c.WithRevision("web", "1")
	if err != nil {
		t.Fatal(err)
	}
	// The steps run in order, each on the host the previous one left.
	for _, step := range []struct {
		name string
		c    *converge.Converger
		want int32
	}{
		{"deploying a new revision", next, 2},
		{"converging a converged host", next, 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			var n atomic.Int32
			if err := step.c.Converge(ctx, countingHost{tg.h, &n}, tg.inst, "web"); err != nil {
				t.Fatal(err)
			}
			if got := n.Load(); got != step.want {
				t.Errorf("%d sessions, want %d", got, step.want)
			}
			if as := appState(t, tg, "web"); as.Revision != "1" || as.Running != 2 {
				t.Errorf("revision %q, %d running, want 1 and 2", as.Revision, as.Running)
			}
		})
	}
}

// TestHealthRetriedAfterTheDeploysAttempt checks that when the health
// attempt at the end of the deploy's session fails, the checks are run
// again until they pass: the host is ready once they do, after one more
// session.
func TestHealthRetriedAfterTheDeploysAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The check fails once per release: the first attempt after each
	// deploy, then passes.
	text := strings.Replace(benchSchedule,
		`health: test "$(cat current/REVISION)" = "{{.Revision}}"`,
		`health: test -f current/checked || { touch current/checked; exit 1; }`, 1)
	tg := startLocal(t, "web-1", "")
	c := newConverger(t, text, nil)
	var n atomic.Int32
	if err := c.Converge(ctx, countingHost{tg.h, &n}, tg.inst, "web"); err != nil {
		t.Fatal(err)
	}
	// inspect; setup; release, switch, start and the failed attempt; the
	// attempt that passes; the ready mark.
	if got := n.Load(); got != 5 {
		t.Errorf("%d sessions, want 5", got)
	}
	if out, err := tg.h.Run(ctx, "test -f "+tg.data+"/apps/web/current/checked && test -f "+tg.data+"/.tide/ready && echo ok", nil); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("checked and ready marks: %q, %v", out, err)
	}
}
