package remote_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
	"github.com/tideops/tide/internal/sshdtest"
	"github.com/tideops/tide/remote"
)

// TestMain doubles as a local-cloud host, so that the local backend runs
// real host processes without the tide binary.
func TestMain(m *testing.M) {
	local.RunHostIfAsked()
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// server is an SSH server a test talks to.
type server struct {
	addr        string // host:port
	fingerprint string // SHA256 of its host key
	user        string // the user to log in as
	signer      ssh.Signer
	scratch     string // a directory on the host the test may write to
}

// backend starts a server for one test.
type backend struct {
	name  string
	start func(t *testing.T) server
}

var backends = []backend{
	{"local", startLocal},
	{"openssh", startOpenSSH},
}

func clientKey(t *testing.T) ssh.Signer {
	t.Helper()
	s, priv := localtest.ClientKey(t)
	signerKeys.Store(string(s.PublicKey().Marshal()), priv)
	return s
}

// signerKeys maps client public keys (marshalled) to their private keys,
// for the agent test.
var signerKeys sync.Map

// startLocal launches one local-cloud host and waits until it runs.
func startLocal(t *testing.T) server {
	t.Helper()
	c := localtest.New(t, localtest.Options{Subnet: "127.78"})
	signerKeys.Store(string(c.Signer.PublicKey().Marshal()), c.Key)
	in := c.LaunchRunning(t, fleet.LaunchSpec{ClientToken: t.Name(), Fleet: "test", Role: "web", Label: "web-1"})
	fps, err := c.HostKeyFingerprints(context.Background(), in.ID)
	if err != nil || len(fps) != 1 {
		t.Fatalf("fingerprints: %v, %v", fps, err)
	}
	return server{
		addr:        net.JoinHostPort(in.Address, strconv.Itoa(c.Port())),
		fingerprint: fps[0],
		user:        "tide",
		signer:      c.Signer,
		scratch:     in.Tags[local.TagDataPath],
	}
}

// sshd is a Debian OpenSSH server run by a test on a loopback address,
// under the names remote's tests use.
type sshd struct {
	*sshdtest.Server
	addr       string
	hostSigner ssh.Signer
}

// newSSHD prepares (but does not start) an sshd on a fresh loopback address
// with a host key of its own, accepting client for the current user.
func newSSHD(t *testing.T, client ssh.PublicKey) *sshd {
	t.Helper()
	s := sshdtest.New(t, sshdtest.Options{Client: client, Subnet: "127.79"})
	return &sshd{Server: s, addr: s.Addr, hostSigner: s.HostSigner()}
}

// rekey gives the server a new host key (taking effect at the next start).
func (s *sshd) rekey(t *testing.T) {
	t.Helper()
	s.Rekey(t)
	s.hostSigner = s.HostSigner()
}

// start runs sshd until stop or the end of the test.
func (s *sshd) start(t *testing.T) {
	t.Helper()
	s.Start(t)
}

// stop kills the running sshd and waits for it.
func (s *sshd) stop() { s.Stop() }

func startOpenSSH(t *testing.T) server {
	t.Helper()
	signer := clientKey(t)
	s := sshdtest.Start(t, sshdtest.Options{Client: signer.PublicKey(), Subnet: "127.79"})
	return server{
		addr:        s.Addr,
		fingerprint: s.HostKeyFingerprint(),
		user:        s.User,
		signer:      signer,
		scratch:     s.Scratch,
	}
}

// dialerFor returns a dialer for srv with a known_hosts of its own.
func dialerFor(t *testing.T, srv server, mod func(*remote.Config)) (*remote.Dialer, string) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	cfg := remote.Config{
		User:           srv.user,
		Signers:        []ssh.Signer{srv.signer},
		KnownHostsFile: kh,
		Timeout:        5 * time.Second,
		Backoff:        remote.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := remote.NewDialer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, kh
}

// connect dials srv, expecting its fingerprint.
func connect(t *testing.T, srv server) *remote.Client {
	t.Helper()
	d, _ := dialerFor(t, srv, nil)
	c, err := d.Dial(context.Background(), srv.addr, []string{srv.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// retryCounter is a slog handler that counts the dialer's retries and
// reports each on a channel.
type retryCounter struct {
	n       atomic.Int32
	retries chan int
}

func newRetryCounter() *retryCounter { return &retryCounter{retries: make(chan int, 100)} }

func (h *retryCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *retryCounter) WithGroup(string) slog.Handler            { return h }
func (h *retryCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "ssh dial failed, retrying" {
		n := h.n.Add(1)
		select {
		case h.retries <- int(n):
		default:
		}
	}
	return nil
}
