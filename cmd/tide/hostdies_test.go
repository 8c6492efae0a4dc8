package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
)

const bootingSchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 3s
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
roles:
  - name: web
    instance_type: t3.medium
    min: 1
    max: 1
`

// TestApplyLocalHostDiesWhileBooting: a local host whose process is killed
// during its boot delay shows stopped, and the apply reports its label
// failed with instance-gone at once rather than at the 5 minute address
// deadline; the next apply starts the stopped host again (it holds the
// label), launching nothing beside it.
func TestApplyLocalHostDiesWhileBooting(t *testing.T) {
	f := newFleetEnv(t, "it-local-crash", "127.0.99.96/27")
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(bootingSchedule, "it-local-crash", "127.0.99.96/27")), 0o644); err != nil {
		t.Fatal(err)
	}
	// Were the death not seen, the apply would wait 5 minutes for an
	// address: the context ends it long before.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// The killer waits for web-1's host to be launched and kills its
	// process while it boots.
	var (
		wg     sync.WaitGroup
		killed string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := f.provider()
		for ctx.Err() == nil {
			insts, err := p.List(ctx, "it-local-crash")
			if err != nil && ctx.Err() == nil {
				t.Errorf("listing: %v", err)
				return
			}
			for _, in := range insts {
				if in.Label != "web-1" || in.State != fleet.StatePending {
					continue
				}
				if pids := localtest.ProcessesWith("TIDE_HOST_ID=" + in.ID); len(pids) > 0 {
					for _, pid := range pids {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
					localtest.WaitGone(t, "TIDE_HOST_ID="+in.ID, 10*time.Second)
					killed = in.ID
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	code, out, errOut := f.run(ctx, "apply", "--output", "json")
	wg.Wait()
	rep := decodeReport(t, out)
	if killed == "" {
		t.Fatalf("web-1's host was not killed while it booted\n%s\n%s", out, errOut)
	}
	if code != 1 || !slices.Equal(actionsOf(rep), []string{"web-1:failed"}) || rep.Hosts[0]["error_kind"] != "instance-gone" ||
		rep.Hosts[0]["instance_id"] != killed {
		t.Fatalf("apply with %s killed while booting: exit %d, want 1 and web-1 failed with instance-gone\n%s\n%s", killed, code, out, errOut)
	}
	if in, err := f.provider().Instance(ctx, killed); err != nil || in.State != fleet.StateStopped {
		t.Errorf("the killed host is %+v (%v), want stopped", in, err)
	}

	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if got := actionsOf(decodeReport(t, out)); code != 0 || !slices.Equal(got, []string{"web-1:started"}) {
		t.Fatalf("apply after the kill: exit %d, %q, want web-1 started\n%s", code, got, errOut)
	}
	live := f.live("it-local-crash")
	if len(live) != 1 || live[0].ID != killed || live[0].Label != "web-1" {
		t.Fatalf("live hosts %+v, want web-1 on %s, started again", live, killed)
	}
	checkHosts(t, f, "it-local-crash", "web-1")
}
