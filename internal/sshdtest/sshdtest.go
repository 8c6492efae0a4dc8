package sshdtest

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Path is where Debian installs the OpenSSH server.
const Path = "/usr/sbin/sshd"

// Need skips the test when Debian's sshd is missing, except under CI
// (env CI=true), where it fails the test instead.
func Need(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenSSH server missing under CI (apt-get install openssh-server): %v", err)
		}
		t.Skipf("OpenSSH server not installed: %v", err)
	}
}

// Options says how to prepare a server.
type Options struct {
	// Client is the public key the server accepts for the current user.
	Client ssh.PublicKey
	// Subnet is the first two octets of the loopback address, such as
	// "127.79": the server listens on Subnet.N.1, N counting the servers
	// this process prepared, so that tests (and the tests of other
	// packages, given another Subnet) can run in parallel.
	Subnet string
}

// seq numbers the servers this process prepares.
var seq atomic.Int32

// Server is a Debian OpenSSH server run by a test on a loopback address.
type Server struct {
	// Addr is host:port, where the server listens.
	Addr string
	// Port is the port of Addr.
	Port int
	// User is the current user's name, as whom clients log in.
	User string
	// Scratch is a temporary directory the test may write to.
	Scratch string

	dir        string // the server's configuration, keys and log
	hostSigner ssh.Signer
	stop       func()
}

// New prepares (but does not start) an sshd on a fresh loopback address
// with a host key of its own, accepting opts.Client for the current user.
// It skips or fails the test as Need does when sshd is missing.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	Need(t)
	if os.Geteuid() == 0 {
		// sshd run as root wants its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	subnet := opts.Subnet
	if subnet == "" {
		subnet = "127.79"
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s.%d.1:0", subnet, seq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(opts.Client), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, Port: port, User: u.Username, Scratch: t.TempDir(), dir: dir}
	s.Rekey(t)
	return s
}

// Start prepares an sshd as New does and runs it as Server.Start does.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(t, opts)
	s.Start(t)
	return s
}

// HostSigner returns the server's host key (the one it runs with after
// its next start).
func (s *Server) HostSigner() ssh.Signer { return s.hostSigner }

// HostKeyFingerprint returns the SHA256 fingerprint of the server's host
// key.
func (s *Server) HostKeyFingerprint() string {
	return ssh.FingerprintSHA256(s.hostSigner.PublicKey())
}

// Log returns what sshd logged.
func (s *Server) Log() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	return string(data)
}

// Rekey gives the server a new host key (taking effect at the next start).
func (s *Server) Rekey(t testing.TB) {
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

// Start runs sshd in the foreground until Stop or the end of the test, and
// returns once it accepts connections. Its cleanup kills sshd's process
// group.
func (s *Server) Start(t testing.TB) {
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
MaxSessions 100
LogLevel VERBOSE
`, s.Addr, filepath.Join(s.dir, "host_key"), filepath.Join(s.dir, "authorized_keys"), filepath.Join(s.dir, "sshd.pid"))
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
	cmd := exec.Command(Path, "-D", "-e", "-f", cfgPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	t.Cleanup(stop)
	s.stop = stop

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening on %s: %v\n%s", s.Addr, err, s.Log())
		}
	}
}

// Stop kills the running sshd and waits for it.
func (s *Server) Stop() {
	if s.stop != nil {
		s.stop()
	}
}
