package localtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/remote"
)

// Options say how a test's cloud differs from the default one.
type Options struct {
	// Subnet is the first two bytes of the clouds' networks ("127.81"):
	// each Cloud of the test binary gets Subnet.N.0/24 of its own. Test
	// binaries that run at once need subnets of their own.
	Subnet string
	// Network, when set, is the cloud's network instead.
	Network string
	// BootDelay is how long a host takes to get its address.
	BootDelay time.Duration
}

// Cloud is a test's local cloud.
type Cloud struct {
	*local.Provider
	// Signer is the client key the hosts accept; Key is its private key.
	Signer ssh.Signer
	Key    ed25519.PrivateKey
	// Dialer connects as the deployer does (user tide, known_hosts of
	// its own).
	Dialer *remote.Dialer
	// Options made the provider: local.New(Options) opens the same cloud
	// again, as another tide process would.
	Options local.Options
}

var netSeq atomic.Int32

// ClientKey returns a new ed25519 client key.
func ClientKey(t testing.TB) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// New makes a cloud for the test; nothing runs until a host is launched.
// Its cleanup terminates every instance and fails the test when a process
// of theirs is left.
func New(t testing.TB, o Options) *Cloud {
	t.Helper()
	signer, key := ClientKey(t)
	network := o.Network
	if network == "" {
		network = fmt.Sprintf("%s.%d.0/24", o.Subnet, netSeq.Add(1))
	}
	opts := local.Options{
		StateDir:       t.TempDir(),
		Network:        network,
		Port:           2222,
		BootDelay:      o.BootDelay,
		Executable:     []string{os.Args[0]},
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		StopGrace:      3 * time.Second,
	}
	p, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.NewDialer(remote.Config{
		User: "tide", Signers: []ssh.Signer{signer},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
		Port:           opts.Port, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cloud{Provider: p, Signer: signer, Key: key, Dialer: d, Options: opts}
	t.Cleanup(func() { c.terminateAll(t) })
	return c
}

// terminateAll terminates every instance of the state directory, then
// waits for their processes to be gone.
func (c *Cloud) terminateAll(t testing.TB) {
	ctx := context.Background()
	insts, err := c.List(ctx, "")
	if err != nil {
		t.Errorf("cleanup: listing: %v", err)
		return
	}
	for _, in := range insts {
		if err := c.Terminate(ctx, in.ID); err != nil {
			t.Errorf("cleanup: terminating %s: %v", in.ID, err)
		}
	}
	// SIGKILL takes effect a moment after Terminate returns.
	for _, in := range insts {
		WaitGone(t, "TIDE_HOST_ID="+in.ID, 5*time.Second)
	}
}

// LaunchRunning launches a host and waits until it runs.
func (c *Cloud) LaunchRunning(t testing.TB, spec fleet.LaunchSpec) fleet.Instance {
	t.Helper()
	in, err := c.Provider.Launch(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return c.WaitState(t, in.ID, fleet.StateRunning, 20*time.Second)
}

// WaitState polls until the instance is in state want, or fails the test
// after d.
func (c *Cloud) WaitState(t testing.TB, id string, want fleet.State, d time.Duration) fleet.Instance {
	t.Helper()
	return WaitState(t, c.Provider, id, want, d)
}

// Instances is what WaitState reads: a local.Provider, this cloud's or
// another opened on the same state directory.
type Instances interface {
	Instance(ctx context.Context, id string) (fleet.Instance, error)
}

// WaitState polls p until the instance is in state want, or fails the
// test after d.
func WaitState(t testing.TB, p Instances, id string, want fleet.State, d time.Duration) fleet.Instance {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		in, err := p.Instance(context.Background(), id)
		if err != nil {
			t.Fatalf("instance %s: %v", id, err)
		}
		if in.State == want {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is %s after %s, want %s", id, in.State, d, want)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// Connect dials a running host, checking its key against its console,
// and closes the connection when the test ends.
func (c *Cloud) Connect(t testing.TB, in fleet.Instance) *remote.Client {
	t.Helper()
	ctx := context.Background()
	fps, err := c.HostKeyFingerprints(ctx, in.ID)
	if err != nil || len(fps) == 0 {
		t.Fatalf("fingerprints of %s: %v, %v", in.ID, fps, err)
	}
	cl, err := c.Dialer.DialRetry(ctx, in.Address, fps, 10*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", in.ID, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// ProcessesWith returns the live processes (this one excepted) whose
// environment holds kv, such as TIDE_HOST_ID=i-0123.
func ProcessesWith(kv string) []int {
	marker := []byte(kv)
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, x := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(x, marker) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// WaitGone waits until no process has kv in its environment, failing the
// test (not stopping it) after d.
func WaitGone(t testing.TB, kv string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for pids := ProcessesWith(kv); len(pids) > 0; pids = ProcessesWith(kv) {
		if time.Now().After(deadline) {
			t.Errorf("cleanup: processes with %s left: %v", kv, pids)
			return
		}
		<-time.After(10 * time.Millisecond)
	}
}

// KillProcessesWith kills the processes with kv in their environment and
// waits until they are gone.
func KillProcessesWith(t testing.TB, kv string) {
	t.Helper()
	for _, pid := range ProcessesWith(kv) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	WaitGone(t, kv, 5*time.Second)
}
