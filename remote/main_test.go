package remote_test

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
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

// netSeq gives each server its own loopback network, so that tests can run
// in parallel (with each other and with other packages' tests).
var netSeq atomic.Int32

func clientKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	signerKeys.Store(string(s.PublicKey().Marshal()), priv)
	return s
}

// signerKeys maps client public keys (marshalled) to their private keys,
// for the agent test.
var signerKeys sync.Map

// startLocal launches one local-cloud host and waits until it runs.
func startLocal(t *testing.T) server {
	t.Helper()
	signer := clientKey(t)
	n := netSeq.Add(1)
	p, err := local.New(local.Options{
		StateDir:       t.TempDir(),
		Network:        fmt.Sprintf("127.78.%d.0/24", n),
		Port:           2222,
		Executable:     []string{os.Args[0]},
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		StopGrace:      3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, err := p.Launch(ctx, fleet.LaunchSpec{ClientToken: t.Name(), Fleet: "test", Role: "web", Label: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Terminate(context.Background(), in.ID); err != nil {
			t.Errorf("terminating local host: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for in.State != fleet.StateRunning {
		if time.Now().After(deadline) {
			t.Fatalf("local host %s is still %s", in.ID, in.State)
		}
		<-time.After(20 * time.Millisecond)
		if in, err = p.Instance(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	fps, err := p.HostKeyFingerprints(ctx, in.ID)
	if err != nil || len(fps) != 1 {
		t.Fatalf("fingerprints: %v, %v", fps, err)
	}
	return server{
		addr:        net.JoinHostPort(in.Address, strconv.Itoa(p.Port())),
		fingerprint: fps[0],
		user:        "tide",
		signer:      signer,
		scratch:     in.Tags[local.TagDataPath],
	}
}

const sshdPath = "/usr/sbin/sshd"

// needSSHD skips the test when Debian's sshd is missing, except under CI.
func needSSHD(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenSSH server missing under CI (apt-get install openssh-server): %v", err)
		}
		t.Skipf("OpenSSH server not installed: %v", err)
	}
}

// sshd is a Debian OpenSSH server run by a test on a loopback address.
type sshd struct {
	dir, addr  string
	hostSigner ssh.Signer
	cmd        *exec.Cmd
	stopFn     func()
}

// log returns what sshd logged.
func (s *sshd) log() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	return string(data)
}

// newSSHD prepares (but does not start) an sshd on a fresh loopback address
// with a host key of its own, accepting client for the current user.
func newSSHD(t *testing.T, client ssh.PublicKey) *sshd {
	t.Helper()
	needSSHD(t)
	if os.Geteuid() == 0 {
		// sshd run as root wants its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	ip := fmt.Sprintf("127.79.%d.1", netSeq.Add(1))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(client), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sshd{dir: dir, addr: addr}
	s.rekey(t)
	return s
}

// rekey gives the server a new host key (taking effect at the next start).
func (s *sshd) rekey(t *testing.T) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "host_key"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.hostSigner, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
}

// start runs sshd in the foreground until stop or the end of the test.
func (s *sshd) start(t *testing.T) {
	t.Helper()
	cfg := fmt.Sprintf(`ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
LogLevel VERBOSE
`, s.addr, filepath.Join(s.dir, "host_key"), filepath.Join(s.dir, "authorized_keys"), filepath.Join(s.dir, "sshd.pid"))
	cfgPath := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: processes sshd leaves behind must not hold up
	// waiting for it.
	logFile, err := os.OpenFile(filepath.Join(s.dir, "sshd.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", cfgPath)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	cmd := s.cmd
	t.Cleanup(func() { s.stopCmd(cmd, exited) })
	s.stopFn = func() { s.stopCmd(cmd, exited) }

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening on %s: %v\n%s", s.addr, err, s.log())
		}
	}
}

func (s *sshd) stopCmd(cmd *exec.Cmd, exited chan struct{}) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// stop kills the running sshd and waits for it.
func (s *sshd) stop() { s.stopFn() }

func startOpenSSH(t *testing.T) server {
	t.Helper()
	signer := clientKey(t)
	s := newSSHD(t, signer.PublicKey())
	s.start(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return server{
		addr:        s.addr,
		fingerprint: ssh.FingerprintSHA256(s.hostSigner.PublicKey()),
		user:        u.Username,
		signer:      signer,
		scratch:     t.TempDir(),
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
