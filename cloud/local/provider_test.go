package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/remote"
)

func spec(token, label string) fleet.LaunchSpec {
	role, _, _ := fleet.ParseLabel(label)
	return fleet.LaunchSpec{ClientToken: token, Fleet: "office", Role: role, Label: label, Zone: "local-a", Tags: map[string]string{"team": "ops"}}
}

func TestLaunchBootsServesSSHAndTakesLabel(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.1.0/24", 300*time.Millisecond)
	ctx := context.Background()

	in, err := tc.Launch(ctx, spec("tok-1", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if in.State != fleet.StatePending || in.Address != "" {
		t.Errorf("fresh instance: state %s address %q, want pending and no address", in.State, in.Address)
	}
	for k, v := range map[string]string{fleet.TagFleet: "office", fleet.TagRole: "web", fleet.TagLabel: "web-1", "team": "ops"} {
		if in.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, in.Tags[k], v)
		}
	}
	if !strings.HasPrefix(in.ID, "i-") || in.Zone != "local-a" {
		t.Errorf("instance %+v: want an i- id in zone local-a", in)
	}
	if fps, err := tc.HostKeyFingerprints(ctx, in.ID); err != nil || len(fps) != 0 {
		t.Errorf("fingerprints before boot = %v, %v; want none", fps, err)
	}

	c, running := tc.connect(t, tc.dialer(t), in.ID)
	if !strings.HasPrefix(running.Address, "127.77.1.") {
		t.Errorf("address %q not in the test network", running.Address)
	}
	dataPath := running.Tags[local.TagDataPath]
	if want := filepath.Join(tc.HostDir(in.ID), "root", "mnt"); dataPath != want {
		t.Errorf("data path tag %q, want %q", dataPath, want)
	}

	if err := c.Upload(ctx, dataPath+"/LABEL", strings.NewReader("web-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(tc.HostDir(in.ID), "root", "mnt", "LABEL"))
	if err != nil || string(got) != "web-1\n" {
		t.Errorf("LABEL in host dir = %q, %v; want web-1", got, err)
	}
	out, _, err := c.Run(ctx, `pwd; cat "$DATA/LABEL"; echo "$HOME"`, nil)
	root := filepath.Join(tc.HostDir(in.ID), "root")
	if want := root + "\nweb-1\n" + root + "\n"; err != nil || string(out) != want {
		t.Errorf("paths on host: %q, %v; want %q", out, err, want)
	}
	// tide's own environment (credentials, say) does not reach the host.
	out, _, err = c.Run(ctx, "env", nil)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "SHELL": true, "PWD": true, "SHLVL": true, "_": true, "OLDPWD": true,
		"TMPDIR": true, "GOCOVERDIR": true, "GORACE": true}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !allowed[k] && strings.Contains(string(out), "\n"+kv+"\n") {
			t.Errorf("tide's %s leaked to the host", k)
		}
	}
	if !strings.Contains(string(out), "TIDE_HOST_ID="+in.ID+"\n") {
		t.Errorf("host env lacks TIDE_HOST_ID: %q", out)
	}
	_, stderr, err := c.Run(ctx, "echo boom >&2; exit 7", nil)
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 || string(stderr) != "boom\n" {
		t.Errorf("exit: err %v stderr %q; want exit 7 with boom", err, stderr)
	}

	// A client that goes away takes its running commands with it.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Run(ctx, `echo $$ > "$DATA/pid"; exec sleep 300`, nil)
		done <- err
	}()
	pidFile := filepath.Join(dataPath, "pid")
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 {
		if data, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		if pid == 0 && time.Now().After(deadline) {
			t.Fatal("command did not start")
		}
		if pid == 0 {
			<-time.After(10 * time.Millisecond)
		}
	}
	c.Close()
	if err := <-done; err == nil {
		t.Error("run over a closed connection succeeded")
	}
	deadline = time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("command %d still runs after its client disconnected", pid)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func TestLaunchIsIdempotentOnClientToken(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.2.0/24", 0)
	ctx := context.Background()
	first, err := tc.Launch(ctx, spec("same", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Another tide process retrying the launch after a crash.
	again, err := tc.reopen(t).Launch(ctx, spec("same", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Errorf("relaunch with the same token made %s, want %s", again.ID, first.ID)
	}
	waitState(t, tc.Provider, first.ID, fleet.StateRunning, 20*time.Second)
	if pids := hostProcesses(first.ID); len(pids) != 1 {
		t.Errorf("processes of %s: %v, want exactly one", first.ID, pids)
	}
	insts, err := tc.List(ctx, "office")
	if err != nil || len(insts) != 1 {
		t.Errorf("list = %v, %v; want one instance", insts, err)
	}
}

func TestConcurrentLaunchesFromTwoProviders(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.3.0/24", 0)
	other := tc.reopen(t)
	ctx := context.Background()
	const labels = 4
	var wg sync.WaitGroup
	ids := make([][2]string, labels)
	errs := make(chan error, 2*labels)
	for i := range labels {
		for j, p := range []*local.Provider{tc.Provider, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				label := fleet.Label("worker", i+1)
				in, err := p.Launch(ctx, spec("tok-"+label, label))
				if err != nil {
					errs <- err
					return
				}
				ids[i][j] = in.ID
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, pair := range ids {
		if pair[0] != pair[1] {
			t.Errorf("label %d: two launches with one token made %s and %s", i+1, pair[0], pair[1])
		}
	}
	addrs := map[string]string{}
	for _, pair := range ids {
		in := waitState(t, tc.Provider, pair[0], fleet.StateRunning, 30*time.Second)
		if prev, dup := addrs[in.Address]; dup {
			t.Errorf("address %s given to %s and %s", in.Address, prev, in.ID)
		}
		addrs[in.Address] = in.ID
	}
	insts, err := tc.List(ctx, "office")
	if err != nil || len(insts) != labels {
		t.Errorf("list: %d instances, %v; want %d", len(insts), err, labels)
	}
	if insts, _ := tc.List(ctx, "another-fleet"); len(insts) != 0 {
		t.Errorf("another fleet lists %d instances, want none", len(insts))
	}
}

func TestTerminateFreesAddressAndStopsProcesses(t *testing.T) {
	t.Parallel()
	// A /30 has two usable addresses.
	tc := newTestCloud(t, "127.77.4.0/30", 0)
	ctx := context.Background()
	d := tc.dialer(t)
	a, err := tc.Launch(ctx, spec("a", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tc.Launch(ctx, spec("b", "web-2"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.Launch(ctx, spec("c", "web-3"))
	var capErr *fleet.InsufficientCapacityError
	if !errors.As(err, &capErr) {
		t.Fatalf("third launch in a /30: %v, want insufficient capacity", err)
	}

	// A daemon left behind by a deployment, in a session of its own.
	c, ina := tc.connect(t, d, a.ID)
	if _, _, err := c.Run(ctx, "setsid sleep 300 </dev/null >/dev/null 2>&1 &", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()

	if err := tc.Terminate(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if pids := hostProcesses(a.ID); len(pids) > 0 {
		t.Errorf("processes of terminated %s left: %v", a.ID, pids)
	}
	if err := tc.Terminate(ctx, a.ID); err != nil {
		t.Errorf("terminating a terminated instance: %v", err)
	}
	if err := tc.Terminate(ctx, "i-00000000000000000"); !fleet.IsNotFound(err) {
		t.Errorf("terminating an unknown id: %v, want not found", err)
	}
	if _, err := tc.HostKeyFingerprints(ctx, "i-00000000000000000"); !fleet.IsNotFound(err) {
		t.Errorf("fingerprints of an unknown id: %v, want not found", err)
	}
	if in, err := tc.Instance(ctx, a.ID); err != nil || in.State != fleet.StateTerminated || in.Address != "" {
		t.Errorf("terminated instance: %+v, %v", in, err)
	}
	insts, _ := tc.List(ctx, "")
	if len(insts) != 1 || insts[0].ID != b.ID {
		t.Errorf("list after terminate = %v, want only %s", insts, b.ID)
	}
	if _, err := os.Stat(filepath.Join(tc.HostDir(a.ID), "root")); !os.IsNotExist(err) {
		t.Errorf("terminated host's filesystem still there: %v", err)
	}

	cin, err := tc.Launch(ctx, spec("c", "web-3"))
	if err != nil {
		t.Fatalf("launch after terminate: %v", err)
	}
	cin = waitState(t, tc.Provider, cin.ID, fleet.StateRunning, 20*time.Second)
	if cin.Address != ina.Address {
		t.Errorf("new host got %s, want the freed %s", cin.Address, ina.Address)
	}
	// The address now has another host key: the known one is a mismatch
	// until the dialer forgets the terminated host.
	fps, _ := tc.HostKeyFingerprints(ctx, cin.ID)
	_, err = d.Dial(ctx, cin.Address, fps)
	var mm *remote.HostKeyMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("dialing a reused address: %v, want a host key mismatch", err)
	}
	if err := d.Forget(ina.Address); err != nil {
		t.Fatal(err)
	}
	c2, err := d.Dial(ctx, cin.Address, fps)
	if err != nil {
		t.Fatalf("dialing after Forget: %v", err)
	}
	c2.Close()
}

func TestInstancesSurviveTheProvider(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.5.0/24", 0)
	ctx := context.Background()
	first, err := local.New(tc.opts)
	if err != nil {
		t.Fatal(err)
	}
	in, err := first.Launch(ctx, spec("s", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	first = nil // discarded, as when tide exits

	p := tc.reopen(t)
	got := waitState(t, p, in.ID, fleet.StateRunning, 20*time.Second)
	insts, err := p.List(ctx, "office")
	if err != nil || len(insts) != 1 || insts[0].ID != in.ID || insts[0].Address != got.Address {
		t.Errorf("new provider lists %v, %v; want %s at %s", insts, err, in.ID, got.Address)
	}
	if _, err := os.Stat(filepath.Join(tc.stateDir, "local", "instances.json")); err != nil {
		t.Errorf("state file: %v", err)
	}
}

func TestHostOutlivesTheProcessThatLaunchedIt(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.8.0/24", 0)
	// A tide process that launches a host and exits at once.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		launcherEnv+"="+tc.stateDir,
		"TIDE_TEST_LAUNCHER_NETWORK="+tc.opts.Network,
		"TIDE_TEST_LAUNCHER_KEY="+string(ssh.MarshalAuthorizedKey(tc.signer.PublicKey())),
	)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launcher: %v", err)
	}
	id := strings.TrimSpace(string(out))
	c, _ := tc.connect(t, tc.dialer(t), id)
	if out, _, err := c.Run(context.Background(), "echo alive", nil); err != nil || string(out) != "alive\n" {
		t.Errorf("host after its launcher exited: %q, %v", out, err)
	}
}

func TestDeadHostIsStoppedAndRestarts(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.6.0/24", 0)
	ctx := context.Background()
	in, err := tc.Launch(ctx, spec("d", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	in = waitState(t, tc.Provider, in.ID, fleet.StateRunning, 20*time.Second)
	fpsBefore, _ := tc.HostKeyFingerprints(ctx, in.ID)
	for _, pid := range hostProcesses(in.ID) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	stopped := waitState(t, tc.Provider, in.ID, fleet.StateStopped, 10*time.Second)
	if stopped.Address != "" {
		t.Errorf("stopped host reports address %q", stopped.Address)
	}
	if err := tc.Start(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	back := waitState(t, tc.Provider, in.ID, fleet.StateRunning, 20*time.Second)
	if back.Address == "" {
		t.Error("restarted host has no address")
	}
	fpsAfter, _ := tc.HostKeyFingerprints(ctx, in.ID)
	if fmt.Sprint(fpsAfter) != fmt.Sprint(fpsBefore) {
		t.Errorf("host key changed over a restart: %v then %v", fpsBefore, fpsAfter)
	}
	c, _ := tc.connect(t, tc.dialer(t), in.ID)
	if out, _, err := c.Run(ctx, "echo up", nil); err != nil || string(out) != "up\n" {
		t.Errorf("restarted host: %q, %v", out, err)
	}
}

// TestInterruptedLaunchIsCompleted plays a launcher that died inside
// Launch, after recording the instance and before recording its process:
// the next look at the cloud completes the launch, adopting the host's
// process when it had started and starting it when it had not; nothing is
// left behind by Terminate.
func TestInterruptedLaunchIsCompleted(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.10.0/24", 0)
	ctx := context.Background()
	dropPID := func(id string) {
		t.Helper()
		path := filepath.Join(tc.stateDir, "local", "instances.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		for _, r := range st["instances"].([]any) {
			if rec := r.(map[string]any); rec["id"] == id {
				rec["pid"] = 0
			}
		}
		data, _ = json.Marshal(st)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name    string
		started bool
	}{{"process started", true}, {"process not started", false}} {
		t.Run(tt.name, func(t *testing.T) {
			in, err := tc.Launch(ctx, spec("crash-"+tt.name, "web-1"))
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, tc.Provider, in.ID, fleet.StateRunning, 20*time.Second)
			before := hostProcesses(in.ID)
			if !tt.started {
				// Stop the host behind the cloud's back: as if its process
				// was never started.
				for _, pid := range before {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				for len(hostProcesses(in.ID)) > 0 {
					time.Sleep(10 * time.Millisecond) // polling for the kill
				}
				if err := os.Remove(filepath.Join(tc.HostDir(in.ID), "ready")); err != nil {
					t.Fatal(err)
				}
			}
			dropPID(in.ID)
			got := waitState(t, tc.Provider, in.ID, fleet.StateRunning, 20*time.Second)
			after := hostProcesses(in.ID)
			if len(after) != 1 {
				t.Fatalf("host processes after the launch was completed: %v", after)
			}
			if tt.started && after[0] != before[0] {
				t.Errorf("the running host %d was replaced by %d, want it adopted", before[0], after[0])
			}
			if got.Address == "" {
				t.Errorf("completed launch has no address")
			}
			// The same client token finds the same instance.
			again, err := tc.Launch(ctx, spec("crash-"+tt.name, "web-1"))
			if err != nil || again.ID != in.ID {
				t.Errorf("launch with the same token: %s, %v; want %s", again.ID, err, in.ID)
			}
			if err := tc.Terminate(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
			if pids := hostProcesses(in.ID); len(pids) > 0 {
				t.Errorf("host processes left after terminate: %v", pids)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts local.Options
	}{
		{"no state dir", local.Options{}},
		{"network outside loopback", local.Options{StateDir: "x", Network: "10.0.0.0/24"}},
		{"network too small", local.Options{StateDir: "x", Network: "127.0.9.0/31"}},
		{"bad network", local.Options{StateDir: "x", Network: "127.0.9.0"}},
		{"bad port", local.Options{StateDir: "x", Port: 70000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := local.New(tt.opts); err == nil {
				t.Error("New accepted bad options")
			}
		})
	}
}

func TestLaunchWithoutKeysFails(t *testing.T) {
	t.Parallel()
	p, err := local.New(local.Options{StateDir: t.TempDir(), Network: "127.77.7.0/24", Executable: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Launch(context.Background(), spec("k", "web-1")); err == nil {
		t.Error("launched a host nobody can log in to")
	}
	if insts, _ := p.List(context.Background(), ""); len(insts) != 0 {
		t.Errorf("failed launch left %v", insts)
	}
}
