package converge_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/sshdtest"
	"github.com/tideops/tide/remote"
)

// TestMain doubles as a local-cloud host: the local cloud starts this test
// binary with TIDE_LOCAL_HOST_DIR set, so no tide binary is needed.
func TestMain(m *testing.M) {
	local.RunHostIfAsked()
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// sshHost adapts a remote client to deployer.Host, as cmd/tide does.
type sshHost struct{ c *remote.Client }

func (h sshHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	out, _, err := h.c.Run(ctx, cmd, stdin)
	return out, err
}

func (h sshHost) Stream(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	return h.c.Stream(ctx, cmd, stdin, stdout)
}

func (h sshHost) Close() error { return h.c.Close() }

// target is one host a test converges.
type target struct {
	h    deployer.Host
	inst fleet.Instance
	data string // the data path, as seen from this machine
}

// backends are the SSH servers hosts run: the local cloud's and Debian's
// OpenSSH.
var backends = []struct {
	name  string
	start func(t *testing.T, label, typ string) target
}{
	{"local", startLocal},
	{"openssh", startOpenSSH},
}

var netSeq atomic.Int32

func clientKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testCloud is a local cloud on a state directory and network of its own;
// its cleanup terminates every instance and checks no process is left.
type testCloud struct {
	*local.Provider
	signer ssh.Signer
	dialer *remote.Dialer
}

func newTestCloud(t testing.TB) *testCloud {
	t.Helper()
	signer := clientKey(t)
	n := netSeq.Add(1)
	p, err := local.New(local.Options{
		StateDir:       t.TempDir(),
		Network:        fmt.Sprintf("127.81.%d.0/24", n),
		Port:           2222,
		Executable:     []string{os.Args[0]},
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		StopGrace:      3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.NewDialer(remote.Config{
		User: "tide", Signers: []ssh.Signer{signer},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
		Port:           2222, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCloud{Provider: p, signer: signer, dialer: d}
	t.Cleanup(func() { tc.terminateAll(t) })
	return tc
}

func (tc *testCloud) terminateAll(t testing.TB) {
	ctx := context.Background()
	insts, err := tc.List(ctx, "")
	if err != nil {
		t.Errorf("cleanup: listing: %v", err)
		return
	}
	for _, in := range insts {
		if err := tc.Terminate(ctx, in.ID); err != nil {
			t.Errorf("cleanup: terminating %s: %v", in.ID, err)
		}
	}
	// SIGKILL takes effect a moment after Terminate returns.
	deadline := time.Now().Add(5 * time.Second)
	for _, in := range insts {
		for pids := processesWith("TIDE_HOST_ID=" + in.ID); len(pids) > 0; pids = processesWith("TIDE_HOST_ID=" + in.ID) {
			if time.Now().After(deadline) {
				t.Errorf("cleanup: processes of %s left: %v", in.ID, pids)
				break
			}
			<-time.After(10 * time.Millisecond)
		}
	}
}

// Dial connects to a local host, as the deployer's dialer does.
func (tc *testCloud) Dial(ctx context.Context, inst fleet.Instance, expected []string) (deployer.Host, error) {
	c, err := tc.dialer.Dial(ctx, inst.Address, expected)
	if err != nil {
		return nil, err
	}
	return sshHost{c}, nil
}

// launch starts a host for label and waits until it answers SSH.
func (tc *testCloud) launch(t testing.TB, fleetName, label, typ string) target {
	t.Helper()
	ctx := context.Background()
	role, _, _ := fleet.ParseLabel(label)
	in, err := tc.Launch(ctx, fleet.LaunchSpec{ClientToken: fleetName + label + t.Name(), Fleet: fleetName, Role: role, Label: label, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for in.State != fleet.StateRunning {
		if time.Now().After(deadline) {
			t.Fatalf("local host %s is still %s", in.ID, in.State)
		}
		<-time.After(20 * time.Millisecond)
		if in, err = tc.Instance(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	fps, err := tc.HostKeyFingerprints(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tc.dialer.DialRetry(ctx, in.Address, fps, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return target{h: sshHost{c}, inst: in, data: in.Tags[deployer.TagDataPath]}
}

func startLocal(t *testing.T, label, typ string) target {
	return newTestCloud(t).launch(t, "test", label, typ)
}

// startOpenSSH starts Debian's sshd on a loopback address for the test;
// the host's data path is a temporary directory. Cleanup kills the
// processes the test started there.
func startOpenSSH(t *testing.T, label, typ string) target {
	t.Helper()
	client := clientKey(t)
	s := sshdtest.New(t, sshdtest.Options{Client: client.PublicKey(), Subnet: "127.82"})
	data := filepath.Join(s.Scratch, "mnt")
	// Registered before sshd starts, so that it runs after sshd is killed.
	t.Cleanup(func() { killProcessesWith(t, "TIDE_DATA="+data) })
	s.Start(t)
	d, err := remote.NewDialer(remote.Config{
		User: s.User, Signers: []ssh.Signer{client},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), Timeout: 5 * time.Second,
		Backoff: remote.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialRetry(context.Background(), s.Addr, []string{s.HostKeyFingerprint()}, 10*time.Second)
	if err != nil {
		t.Fatalf("dialing sshd: %v\n%s", err, s.Log())
	}
	t.Cleanup(func() { c.Close() })
	role, _, _ := fleet.ParseLabel(label)
	host, _, _ := net.SplitHostPort(s.Addr)
	inst := fleet.Instance{ID: "sshd-" + label, Label: label, Role: role, Type: typ, Address: host, State: fleet.StateRunning,
		Tags: map[string]string{deployer.TagDataPath: data}}
	return target{h: sshHost{c}, inst: inst, data: data}
}

// processesWith returns the live processes whose environment holds kv.
func processesWith(kv string) []int {
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

// killProcessesWith kills what a test left running and waits for it.
func killProcessesWith(t testing.TB, kv string) {
	for _, pid := range processesWith(kv) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesWith(kv)) > 0 {
		if time.Now().After(deadline) {
			t.Errorf("cleanup: processes with %s left: %v", kv, processesWith(kv))
			return
		}
		<-time.After(10 * time.Millisecond)
	}
}

// schedule parses a schedule file written for a test.
func schedule(t testing.TB, text string) *config.Schedule {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schedule.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		t.Fatalf("schedule: %v\n%s", err, text)
	}
	return s
}

// run runs cmd on a target and returns its trimmed output.
func run(t testing.TB, tg target, cmd string) string {
	t.Helper()
	out, err := tg.h.Run(context.Background(), cmd, nil)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.TrimSpace(string(out))
}
