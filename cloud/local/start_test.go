package local_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

// kill kills every process of host id, as a crash or a reboot of this
// machine would, and waits for the cloud to show it stopped.
func kill(t *testing.T, tc *testCloud, id string) fleet.Instance {
	t.Helper()
	pids := hostProcesses(id)
	if len(pids) == 0 {
		t.Fatalf("no process of host %s", id)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	return waitState(t, tc.Provider, id, fleet.StateStopped, 10*time.Second)
}

// TestStartStoppedHost: Start boots a host whose process died on the
// address it had, with its filesystem and host key (the same known_hosts
// entry still holds); it leaves a running host alone, and refuses, saying
// why, when the address is taken, the host is terminated or unknown.
func TestStartStoppedHost(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, "127.77.12.0/29", 0)
	ctx := context.Background()
	in, err := tc.Launch(ctx, spec("s", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	d := tc.dialer(t) // one known_hosts file across the restart
	c, in := tc.connect(t, d, in.ID)
	if _, _, err := c.Run(ctx, "echo kept > /mnt/data", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	fps, _ := tc.HostKeyFingerprints(ctx, in.ID)

	if err := tc.Start(ctx, in.ID); err != nil {
		t.Fatalf("starting a running host: %v", err)
	}
	if pids := hostProcesses(in.ID); len(pids) != 1 {
		t.Fatalf("a running host started again: processes %v", pids)
	}

	kill(t, tc, in.ID)
	// The address taken by something else: a clear error, nothing started.
	// (The dead host's socket may linger a moment after its process.)
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for ln, err = net.Listen("tcp", net.JoinHostPort(in.Address, "2222")); err != nil; ln, err = net.Listen("tcp", net.JoinHostPort(in.Address, "2222")) {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		<-time.After(10 * time.Millisecond)
	}
	err = tc.Start(ctx, in.ID)
	ln.Close()
	if err == nil || !strings.Contains(err.Error(), "starting "+in.ID+": its address "+in.Address+": something else listens on port 2222") {
		t.Fatalf("start on a taken address: %v", err)
	}
	if pids := hostProcesses(in.ID); len(pids) != 0 {
		t.Fatalf("started although its address was taken: %v", pids)
	}

	if err := tc.Start(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := tc.Instance(ctx, in.ID); err != nil || got.State != fleet.StatePending {
		t.Errorf("just started: %s (%v), want pending until it booted", got.State, err)
	}
	c, back := tc.connect(t, d, in.ID)
	if back.Address != in.Address {
		t.Errorf("started on %s, had %s", back.Address, in.Address)
	}
	if after, _ := tc.HostKeyFingerprints(ctx, in.ID); !slices.Equal(after, fps) {
		t.Errorf("host key changed over the start: %v then %v", fps, after)
	}
	if out, _, err := c.Run(ctx, "cat /mnt/data", nil); err != nil || string(out) != "kept\n" {
		t.Errorf("data after the start: %q, %v", out, err)
	}
	console, err := os.ReadFile(filepath.Join(tc.HostDir(in.ID), "console.log"))
	if err != nil || strings.Count(string(console), "BEGIN SSH HOST KEY FINGERPRINTS") != 2 {
		t.Errorf("console after two boots: %v\n%s", err, console)
	}

	if err := tc.Terminate(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := tc.Start(ctx, in.ID); err == nil || !strings.Contains(err.Error(), "instance is terminated: it cannot be started") {
		t.Errorf("starting a terminated host: %v", err)
	}
	if err := tc.Start(ctx, "i-0000000000000000"); !fleet.IsNotFound(err) {
		t.Errorf("starting an unknown host: %v, want not found", err)
	}
}

// TestStartAddressHeldByAnotherInstance: a stopped host whose address an
// instance launched since holds is not started on it.
func TestStartAddressHeldByAnotherInstance(t *testing.T) {
	t.Parallel()
	// A /30: two addresses, both given out below.
	tc := newTestCloud(t, "127.77.12.8/30", 0)
	ctx := context.Background()
	first, err := tc.Launch(ctx, spec("a", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	first = waitState(t, tc.Provider, first.ID, fleet.StateRunning, 20*time.Second)
	kill(t, tc, first.ID)
	// The stopped host keeps its address: the next launch gets the other.
	second, err := tc.Launch(ctx, spec("b", "web-2"))
	if err != nil {
		t.Fatal(err)
	}
	second = waitState(t, tc.Provider, second.ID, fleet.StateRunning, 20*time.Second)
	if second.Address == first.Address {
		t.Fatalf("a stopped host's address %s was given to %s", first.Address, second.ID)
	}
	if err := tc.Start(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if back := waitState(t, tc.Provider, first.ID, fleet.StateRunning, 20*time.Second); back.Address != first.Address {
		t.Errorf("started on %s, had %s", back.Address, first.Address)
	}
}
