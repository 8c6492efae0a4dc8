package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
	"github.com/tideops/tide/remote"
)

// TestMain doubles as a local-cloud host: the provider under test starts
// this test binary with TIDE_LOCAL_HOST_DIR set, so no tide binary is needed.
func TestMain(m *testing.M) {
	local.RunHostIfAsked()
	if stateDir := os.Getenv(launcherEnv); stateDir != "" {
		os.Exit(launchAndExit(stateDir))
	}
	// Hosts built with -race would otherwise sleep a second on exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// launcherEnv makes the test binary a short-lived tide: it launches one host
// on the state directory the variable names, prints its id and exits.
const launcherEnv = "TIDE_TEST_LAUNCHER_STATE_DIR"

func launchAndExit(stateDir string) int {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(os.Getenv("TIDE_TEST_LAUNCHER_KEY")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := local.New(local.Options{
		StateDir:       stateDir,
		Network:        os.Getenv("TIDE_TEST_LAUNCHER_NETWORK"),
		Executable:     []string{os.Args[0]},
		AuthorizedKeys: []ssh.PublicKey{key},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in, err := p.Launch(context.Background(), fleet.LaunchSpec{ClientToken: "launcher", Fleet: "office", Role: "web", Label: "web-1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(in.ID)
	return 0
}

// testCloud is a provider on a state directory and network of its own,
// with a client key the hosts accept. Its cleanup terminates every
// instance on the state directory and checks that no host process is
// left.
type testCloud struct {
	*localtest.Cloud
	stateDir string
	signer   ssh.Signer
	opts     local.Options
}

// newTestCloud starts nothing. Each test passes its own network so tests
// running at once do not share addresses.
func newTestCloud(t *testing.T, network string, bootDelay time.Duration) *testCloud {
	t.Helper()
	c := localtest.New(t, localtest.Options{Network: network, BootDelay: bootDelay})
	return &testCloud{Cloud: c, stateDir: c.Options.StateDir, signer: c.Signer, opts: c.Options}
}

// reopen returns a new Provider on the same state directory, as another
// tide process would make.
func (tc *testCloud) reopen(t *testing.T) *local.Provider {
	t.Helper()
	p, err := local.New(tc.opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hostProcesses returns the pids of live processes carrying host id's
// mark in their environment.
func hostProcesses(id string) []int { return localtest.ProcessesWith("TIDE_HOST_ID=" + id) }

// waitState polls until the instance is in state want, or fails the test
// after d.
func waitState(t *testing.T, p *local.Provider, id string, want fleet.State, d time.Duration) fleet.Instance {
	t.Helper()
	return localtest.WaitState(t, p, id, want, d)
}

// dialer returns an SSH dialer with the cloud's client key and a
// known_hosts of its own.
func (tc *testCloud) dialer(t *testing.T) *remote.Dialer {
	t.Helper()
	d, err := remote.NewDialer(remote.Config{
		User:           "tide",
		Signers:        []ssh.Signer{tc.signer},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
		Port:           tc.Port(),
		Timeout:        5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// connect waits for the instance to run and dials it, verifying its key
// against its console.
func (tc *testCloud) connect(t *testing.T, d *remote.Dialer, id string) (*remote.Client, fleet.Instance) {
	t.Helper()
	in := waitState(t, tc.Provider, id, fleet.StateRunning, 20*time.Second)
	ctx := context.Background()
	fps, err := tc.HostKeyFingerprints(ctx, id)
	if err != nil || len(fps) == 0 {
		t.Fatalf("fingerprints of running %s: %v, %v", id, fps, err)
	}
	c, err := d.DialRetry(ctx, in.Address, fps, 10*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, in
}
