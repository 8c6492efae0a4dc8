package remote_test

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/tideops/tide/remote"
)

func TestRun(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := connect(t, b.start(t))
			for _, tt := range []struct {
				name       string
				cmd        string
				stdin      string
				wantOut    string
				wantErrOut string
				wantCode   int // 0: success; -1: killed by wantSignal
				wantSignal string
			}{
				{name: "success", cmd: "echo hello", wantOut: "hello\n"},
				{name: "exit code and stderr", cmd: "echo out; echo oops >&2; exit 3", wantOut: "out\n", wantErrOut: "oops\n", wantCode: 3},
				{name: "stdin", cmd: "tr a-z A-Z", stdin: "label web-3\n", wantOut: "LABEL WEB-3\n"},
				{name: "command not found", cmd: "no-such-command-tide", wantCode: 127},
				{name: "killed by a signal", cmd: "kill -KILL $$", wantCode: -1, wantSignal: "KILL"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					var stdin *strings.Reader
					if tt.stdin != "" {
						stdin = strings.NewReader(tt.stdin)
					}
					var out, errOut []byte
					var err error
					if stdin != nil {
						out, errOut, err = c.Run(context.Background(), tt.cmd, stdin)
					} else {
						out, errOut, err = c.Run(context.Background(), tt.cmd, nil)
					}
					if string(out) != tt.wantOut {
						t.Errorf("stdout %q, want %q", out, tt.wantOut)
					}
					if tt.wantErrOut != "" && string(errOut) != tt.wantErrOut {
						t.Errorf("stderr %q, want %q", errOut, tt.wantErrOut)
					}
					if tt.wantCode == 0 {
						if err != nil {
							t.Errorf("err %v, want success", err)
						}
						return
					}
					var ee *remote.ExitError
					if !errors.As(err, &ee) {
						t.Fatalf("err %v, want an ExitError", err)
					}
					if ee.Code != tt.wantCode || ee.Signal != tt.wantSignal {
						t.Errorf("exit %d signal %q, want %d %q", ee.Code, ee.Signal, tt.wantCode, tt.wantSignal)
					}
					if string(ee.Stderr) != string(errOut) {
						t.Errorf("ExitError.Stderr %q, want stderr %q", ee.Stderr, errOut)
					}
				})
			}
		})
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := b.start(t)
			c := connect(t, srv)
			ctx := context.Background()
			// The test and the host share this machine's filesystem.
			path := filepath.Join(srv.scratch, "it's deep", "LABEL")
			if err := c.Upload(ctx, path, strings.NewReader("web-3\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != "web-3\n" {
				t.Errorf("uploaded file: %q, %v", got, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("uploaded file mode: %v, %v; want 0640", fi.Mode(), err)
			}
			// Overwriting replaces the content whole.
			if err := c.Upload(ctx, path, strings.NewReader("db-1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); string(got) != "db-1\n" {
				t.Errorf("after second upload: %q", got)
			}
			leftovers, _ := filepath.Glob(path + ".tide-upload.*")
			if len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
			var ee *remote.ExitError
			err = c.Upload(ctx, "/dev/null/cannot/be", strings.NewReader("x"), 0o644)
			if !errors.As(err, &ee) {
				t.Errorf("upload under a non-directory: %v, want an ExitError", err)
			}
		})
	}
}

func TestRunCancelKillsCommand(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := b.start(t)
			c := connect(t, srv)
			pidFile := filepath.Join(srv.scratch, "pid")
			// A command that neither reads nor writes only dies if the
			// server honours the client's signal request (or kills the
			// session's processes itself, as local hosts do). OpenSSH
			// refuses signals for root logins (no privilege separation
			// after authentication); there, the command has to write to
			// notice that its session is gone.
			cmd := "echo $$ > '" + pidFile + "'; exec sleep 300"
			if b.name == "openssh" && srv.user == "root" {
				cmd = "echo $$ > '" + pidFile + "'; while :; do echo tick; sleep 0.05; done"
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, err := c.Run(ctx, cmd, nil)
				done <- err
			}()
			pid := waitPID(t, pidFile)
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled run: %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			deadline := time.Now().Add(10 * time.Second)
			for processAlive(pid) {
				if time.Now().After(deadline) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("remote command %d still runs after cancel", pid)
				}
				<-time.After(20 * time.Millisecond)
			}
			// The connection stays usable.
			if out, _, err := c.Run(context.Background(), "echo still", nil); err != nil || string(out) != "still\n" {
				t.Errorf("after cancel: %q, %v", out, err)
			}
		})
	}
}

// waitPID polls until the file holds a pid.
func waitPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (zombies count as gone).
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func otherKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	return clientKey(t).PublicKey()
}

func TestHostKeyVerification(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := b.start(t)
			ctx := context.Background()
			wrong := ssh.FingerprintSHA256(otherKey(t))

			t.Run("new host with an unexpected key is refused", func(t *testing.T) {
				d, kh := dialerFor(t, srv, nil)
				for _, expected := range [][]string{nil, {wrong}} {
					_, err := d.Dial(ctx, srv.addr, expected)
					var u *remote.UnknownHostKeyError
					if !errors.As(err, &u) || u.Got != srv.fingerprint {
						t.Errorf("expected %v: %v, want an UnknownHostKeyError for %s", expected, err, srv.fingerprint)
					}
				}
				if data, _ := os.ReadFile(kh); len(data) != 0 {
					t.Errorf("refused key pinned: %q", data)
				}
			})

			t.Run("new host with an expected key is pinned", func(t *testing.T) {
				d, kh := dialerFor(t, srv, nil)
				// As the cloud's console prints it, padded or not.
				c, err := d.Dial(ctx, srv.addr, []string{wrong, " " + srv.fingerprint + "= "})
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				data, _ := os.ReadFile(kh)
				if !strings.HasPrefix(string(data), knownhosts.Normalize(srv.addr)+" ssh-ed25519 ") {
					t.Errorf("known_hosts = %q, want a line for %s", data, knownhosts.Normalize(srv.addr))
				}
				c, err = d.Dial(ctx, srv.addr, nil)
				if err != nil {
					t.Fatalf("dialing a pinned host without expected keys: %v", err)
				}
				c.Close()
			})

			t.Run("mismatch is typed and not retried", func(t *testing.T) {
				counter := newRetryCounter()
				d, kh := dialerFor(t, srv, func(c *remote.Config) { c.Logger = slog.New(counter) })
				line := knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, otherKey(t)) + "\n"
				if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := d.DialRetry(ctx, srv.addr, []string{srv.fingerprint}, 30*time.Second)
				var mm *remote.HostKeyMismatchError
				if !errors.As(err, &mm) || mm.Got != srv.fingerprint || len(mm.Want) != 1 {
					t.Fatalf("dial with another key pinned: %v, want a HostKeyMismatchError", err)
				}
				if !remote.IsHostKeyError(err) {
					t.Error("IsHostKeyError is false for a mismatch")
				}
				if n := counter.n.Load(); n != 0 {
					t.Errorf("mismatch retried %d times", n)
				}
				// Once forgotten (the instance was replaced), the new key is
				// accepted when expected.
				if err := d.Forget(srv.addr); err != nil {
					t.Fatal(err)
				}
				c, err := d.Dial(ctx, srv.addr, []string{srv.fingerprint})
				if err != nil {
					t.Fatalf("after Forget: %v", err)
				}
				c.Close()
			})

			t.Run("trust on first use", func(t *testing.T) {
				d, kh := dialerFor(t, srv, func(c *remote.Config) { c.TrustOnFirstUse = true })
				if _, err := d.Dial(ctx, srv.addr, []string{wrong}); err == nil {
					t.Error("TOFU took a key that is not among the expected ones")
				}
				c, err := d.Dial(ctx, srv.addr, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if data, _ := os.ReadFile(kh); !strings.Contains(string(data), "ssh-ed25519") {
					t.Errorf("TOFU did not pin the key: %q", data)
				}
			})
		})
	}
}

func TestOpenSSHNewHostKeyIsAMismatch(t *testing.T) {
	t.Parallel()
	signer := clientKey(t)
	s := newSSHD(t, signer.PublicKey())
	s.start(t)
	old := ssh.FingerprintSHA256(s.hostSigner.PublicKey())
	srv := server{addr: s.addr, fingerprint: old, user: currentUser(t), signer: signer}
	d, _ := dialerFor(t, srv, nil)
	ctx := context.Background()
	c, err := d.Dial(ctx, s.addr, []string{old})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// The machine at the address is replaced by one with another key.
	s.stop()
	s.rekey(t)
	s.start(t)
	fresh := ssh.FingerprintSHA256(s.hostSigner.PublicKey())
	_, err = d.Dial(ctx, s.addr, []string{fresh})
	var mm *remote.HostKeyMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("dial after the host key changed: %v, want a HostKeyMismatchError", err)
	}
	if mm.Got != fresh || len(mm.Want) != 1 || mm.Want[0] != old || mm.Addr != s.addr {
		t.Errorf("mismatch %+v, want got %s want [%s] at %s", mm, fresh, old, s.addr)
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	srv := server{}
	if u := os.Getenv("USER"); u != "" {
		srv.user = u
	}
	if srv.user == "" && os.Geteuid() == 0 {
		srv.user = "root"
	}
	if srv.user == "" {
		t.Skip("cannot tell the current user name")
	}
	return srv.user
}

func TestDialRetryWaitsForLateHost(t *testing.T) {
	t.Parallel()
	signer := clientKey(t)
	s := newSSHD(t, signer.PublicKey())
	fp := ssh.FingerprintSHA256(s.hostSigner.PublicKey())
	counter := newRetryCounter()
	d, _ := dialerFor(t, server{user: currentUser(t), signer: signer}, func(c *remote.Config) {
		c.Logger = slog.New(counter)
	})
	type result struct {
		c   *remote.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := d.DialRetry(context.Background(), s.addr, []string{fp}, 60*time.Second)
		done <- result{c, err}
	}()
	// The host boots only after the dialer has been turned away twice.
	for n := 0; n < 2; {
		select {
		case n = <-counter.retries:
		case r := <-done:
			t.Fatalf("DialRetry returned before the host booted: %v", r.err)
		case <-time.After(30 * time.Second):
			t.Fatal("DialRetry is not retrying")
		}
	}
	s.start(t)
	r := <-done
	if r.err != nil {
		t.Fatalf("DialRetry: %v", r.err)
	}
	defer r.c.Close()
	if out, _, err := r.c.Run(context.Background(), "echo booted", nil); err != nil || string(out) != "booted\n" {
		t.Errorf("late host: %q, %v", out, err)
	}
	if n := counter.n.Load(); n < 2 {
		t.Errorf("%d retries, want at least 2", n)
	}
}

func TestDialRetryGivesUp(t *testing.T) {
	t.Parallel()
	// An address where nothing listens, and one that accepts TCP but never
	// speaks SSH (a host stuck at boot).
	deadAddr := freeAddr(t, "127.79.250.1")
	mute, err := net.Listen("tcp", "127.79.250.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	srv := server{user: "tide", signer: clientKey(t)}

	for _, tt := range []struct {
		name        string
		addr        string
		backoff     remote.Backoff
		timeout     time.Duration
		within      time.Duration
		maxAttempts int32 // retries expected at most (attempts - 1)
	}{
		{"deadline, nothing listening", deadAddr, remote.Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, MaxAttempts: 1000}, time.Second, 1500 * time.Millisecond, 1000},
		{"deadline, handshake hangs", mute.Addr().String(), remote.Backoff{Initial: 100 * time.Millisecond, MaxAttempts: 1000}, 400 * time.Millisecond, 1500 * time.Millisecond, 1000},
		{"attempts", deadAddr, remote.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxAttempts: 3}, time.Second, time.Minute, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			counter := newRetryCounter()
			d, _ := dialerFor(t, srv, func(c *remote.Config) {
				c.Backoff = tt.backoff
				c.Timeout = tt.timeout
				c.Logger = slog.New(counter)
			})
			start := time.Now()
			_, err := d.DialRetry(context.Background(), tt.addr, nil, tt.within)
			elapsed := time.Since(start)
			if !errors.Is(err, remote.ErrNoAnswer) {
				t.Fatalf("err %v, want ErrNoAnswer", err)
			}
			// Generous bound: the point is that it stops, not how fast.
			if elapsed > tt.within+5*time.Second {
				t.Errorf("gave up after %s, deadline was %s", elapsed, tt.within)
			}
			if n := counter.n.Load(); n > tt.maxAttempts {
				t.Errorf("%d retries, want at most %d", n, tt.maxAttempts)
			}
		})
	}

	t.Run("caller's context", func(t *testing.T) {
		t.Parallel()
		d, _ := dialerFor(t, srv, func(c *remote.Config) { c.Timeout = time.Minute })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := d.DialRetry(ctx, mute.Addr().String(), nil, time.Hour)
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if err == nil {
				t.Error("DialRetry succeeded against a mute host")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("DialRetry ignored its context")
		}
	})
}

// freeAddr returns host:port on ip where nothing listens.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestAgentSigners(t *testing.T) {
	t.Parallel()
	srv := startLocal(t)
	// An ssh-agent on a socket of its own, empty at first.
	keyring := agent.NewKeyring()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()
	ctx := context.Background()
	if _, _, err := remote.AgentSigners(ctx, sock); err == nil {
		t.Error("an empty agent gave signers")
	}
	if _, _, err := remote.AgentSigners(ctx, ""); err == nil {
		t.Error("no SSH_AUTH_SOCK gave signers")
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: srvPrivateKey(t, srv)}); err != nil {
		t.Fatal(err)
	}
	signers, closer, err := remote.AgentSigners(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	srv.signer = signers[0]
	c := connect(t, srv)
	if out, _, err := c.Run(ctx, "echo agent", nil); err != nil || string(out) != "agent\n" {
		t.Errorf("run with an agent key: %q, %v", out, err)
	}
}

// srvPrivateKey returns the private half of the server's client key.
func srvPrivateKey(t *testing.T, srv server) any {
	t.Helper()
	k, ok := signerKeys.Load(string(srv.signer.PublicKey().Marshal()))
	if !ok {
		t.Fatal("no private key recorded for the server's client key")
	}
	return k
}

func TestLoadIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	// A throwaway key with the passphrase "secret", made by ssh-keygen with
	// one KDF round (generating one here costs seconds under -race).
	locked, err := os.ReadFile(filepath.Join("testdata", "id_ed25519_passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name    string
		path    string
		wantErr string
	}{
		{"openssh key", write("id_ed25519", pem.EncodeToMemory(plain)), ""},
		{"passphrase", write("id_locked", locked), "ssh-agent"},
		{"garbage", write("junk", []byte("not a key")), "parsing identity"},
		{"missing", filepath.Join(dir, "none"), "reading identity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := remote.LoadIdentity(tt.path)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("LoadIdentity: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want one mentioning %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the passphrase: %v", err)
			}
		})
	}
}

func TestNewDialerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	s := clientKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	for _, tt := range []struct {
		name string
		cfg  remote.Config
	}{
		{"no user", remote.Config{Signers: []ssh.Signer{s}, KnownHostsFile: kh}},
		{"no signers", remote.Config{User: "u", KnownHostsFile: kh}},
		{"no known_hosts", remote.Config{User: "u", Signers: []ssh.Signer{s}}},
		{"bad port", remote.Config{User: "u", Signers: []ssh.Signer{s}, KnownHostsFile: kh, Port: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := remote.NewDialer(tt.cfg); err == nil {
				t.Error("NewDialer accepted a bad config")
			}
		})
	}
}
