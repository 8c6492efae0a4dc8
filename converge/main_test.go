package converge_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
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

// testCloud is a local cloud of the test's own (its cleanup terminates
// every instance and checks no process is left), as converge's tests
// reach it.
type testCloud struct {
	*localtest.Cloud
	dialer *remote.Dialer
}

func newTestCloud(t testing.TB) *testCloud {
	t.Helper()
	c := localtest.New(t, localtest.Options{Subnet: "127.81"})
	return &testCloud{Cloud: c, dialer: c.Dialer}
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
	role, _, _ := fleet.ParseLabel(label)
	in := tc.LaunchRunning(t, fleet.LaunchSpec{ClientToken: fleetName + label + t.Name(), Fleet: fleetName, Role: role, Label: label, Type: typ})
	return target{h: sshHost{tc.Connect(t, in)}, inst: in, data: in.Tags[deployer.TagDataPath]}
}

func startLocal(t *testing.T, label, typ string) target {
	return newTestCloud(t).launch(t, "test", label, typ)
}

// startOpenSSH starts Debian's sshd on a loopback address for the test;
// the host's data path is a temporary directory. Cleanup kills the
// processes the test started there.
func startOpenSSH(t *testing.T, label, typ string) target {
	t.Helper()
	client, _ := localtest.ClientKey(t)
	s := sshdtest.New(t, sshdtest.Options{Client: client.PublicKey(), Subnet: "127.82"})
	data := filepath.Join(s.Scratch, "mnt")
	// Registered before sshd starts, so that it runs after sshd is killed.
	t.Cleanup(func() { localtest.KillProcessesWith(t, "TIDE_DATA="+data) })
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
