package local

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Files in a host's directory.
const (
	hostConfigFile = "host.json"
	hostLockFile   = "lock"
	consoleFile    = "console.log"
	hostKeyFile    = "ssh_host_ed25519_key"
	readyFile      = "ready"
	rootDir        = "root"
	dataDir        = "mnt"
)

// HostDirEnv is the environment variable that carries a host's directory to
// the process that runs it (besides its -dir flag).
const HostDirEnv = "TIDE_LOCAL_HOST_DIR"

// hostIDEnv marks every process of a host, so that Terminate finds them all.
const hostIDEnv = "TIDE_HOST_ID"

// hostConfig is what the provider tells a host process, in host.json.
type hostConfig struct {
	ID             string        `json:"id"`
	Address        string        `json:"address"` // IP
	Port           int           `json:"port"`
	BootDelay      time.Duration `json:"boot_delay"`
	AuthorizedKeys []string      `json:"authorized_keys"` // authorized_keys lines
}

func (c hostConfig) listenAddr() string {
	return net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
}

// RunHost runs the local-cloud host whose directory is dir until ctx ends:
// it generates its ed25519 host key at first boot, waits the boot delay,
// prints its host key fingerprints to the console log, serves SSH on its
// address and writes the ready marker. Commands run with /bin/sh -c in the
// host's root directory, each in its own process group, which is killed when
// the client disconnects before the command ends. When ctx ends, RunHost
// kills the running commands and returns nil.
func RunHost(ctx context.Context, dir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("host directory: %w", err)
	}
	cfg, err := readHostConfig(dir)
	if err != nil {
		return err
	}
	logger = logger.With("instance_id", cfg.ID)

	lock, err := os.OpenFile(filepath.Join(dir, hostLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening host lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("host %s is already running: %w", cfg.ID, err)
	}
	if err := os.Remove(filepath.Join(dir, readyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing ready marker: %w", err)
	}
	root := filepath.Join(dir, rootDir)
	if err := os.MkdirAll(filepath.Join(root, dataDir), 0o755); err != nil {
		return fmt.Errorf("creating host root: %w", err)
	}
	signer, err := hostKey(dir)
	if err != nil {
		return err
	}
	authorized, err := parseAuthorizedKeys(cfg.AuthorizedKeys)
	if err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		return nil
	case <-time.After(cfg.BootDelay):
	}

	if err := printConsole(dir, signer.PublicKey()); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.listenAddr())
	if err != nil {
		return fmt.Errorf("listening for ssh: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, readyFile), []byte(cfg.listenAddr()+"\n"), 0o644); err != nil {
		ln.Close()
		return err
	}
	logger.Info("local host booted", "addr", cfg.listenAddr())

	h := &host{
		id:       cfg.ID,
		root:     root,
		logger:   logger,
		sessions: map[*session]struct{}{},
		conns:    map[net.Conn]struct{}{},
	}
	h.config = &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if _, ok := authorized[string(key.Marshal())]; ok {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	h.config.AddHostKey(signer)
	return h.serve(ctx, ln)
}

// host is the SSH server of one running host.
type host struct {
	id     string
	root   string
	config *ssh.ServerConfig
	logger *slog.Logger

	mu       sync.Mutex
	sessions map[*session]struct{}
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func (h *host) serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				h.logger.Info("local host shutting down")
				h.shutdown()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			h.shutdown()
			return fmt.Errorf("accepting ssh connections: %w", err)
		}
		h.mu.Lock()
		h.conns[conn] = struct{}{}
		h.mu.Unlock()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.handleConn(conn)
			h.mu.Lock()
			delete(h.conns, conn)
			h.mu.Unlock()
		}()
	}
}

// shutdown kills every running command and closes every connection.
func (h *host) shutdown() {
	h.mu.Lock()
	for s := range h.sessions {
		s.kill(syscall.SIGKILL)
	}
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *host) handleConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // for the handshake only
	sc, chans, reqs, err := ssh.NewServerConn(conn, h.config)
	if err != nil {
		h.logger.Debug("ssh handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.handleSession(ch, creqs)
		}()
	}
	wg.Wait()
}

// session is one command running for one SSH channel.
type session struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done bool
}

// kill signals the command's process group, if it still runs.
func (s *session) kill(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil && !s.done {
		_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	}
}

func (h *host) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	s := &session{}
	h.mu.Lock()
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.sessions, s)
		h.mu.Unlock()
	}()

	var env []string
	finished := make(chan struct{})
	started := false
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err != nil || kv.Name == "" || strings.ContainsRune(kv.Name, '=') {
				_ = req.Reply(false, nil)
				continue
			}
			env = append(env, kv.Name+"="+kv.Value)
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			if err := h.start(s, ch, p.Command, env); err != nil {
				h.logger.Warn("starting command failed", "err", err)
				_ = req.Reply(false, nil)
				continue
			}
			started = true
			_ = req.Reply(true, nil)
			go func() {
				defer close(finished)
				h.wait(s, ch)
			}()
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil {
				if sig, ok := signals[p.Signal]; ok {
					s.kill(sig)
				}
			}
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		default: // shell, pty-req, subsystem, x11-req...: not offered
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
	// The channel is closed: either the command finished (wait closed it)
	// or the client went away first, and then its processes go too.
	s.kill(syscall.SIGKILL)
	if started {
		<-finished
	} else {
		ch.Close()
	}
}

// signals maps SSH signal names (RFC 4254 6.10) to signals.
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// start starts cmdline for session s.
func (h *host) start(s *session, ch ssh.Channel, cmdline string, extra []string) error {
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Dir = h.root
	cmd.Env = append([]string{
		"HOME=" + h.root,
		"TIDE_ROOT=" + h.root,
		"DATA=" + filepath.Join(h.root, dataDir),
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"LANG=C.UTF-8",
		"SHELL=/bin/sh",
		hostIDEnv + "=" + h.id,
	}, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// Processes left in the background holding stdout do not hold up the
	// exit status for long.
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	return nil
}

// wait waits for the command, reports its exit status and closes ch.
func (h *host) wait(s *session, ch ssh.Channel) {
	err := s.cmd.Wait()
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	st := s.cmd.ProcessState
	if err != nil && st == nil {
		h.logger.Warn("waiting for command failed", "err", err)
	}
	if st != nil {
		ws, _ := st.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			name := strings.TrimPrefix(signalName(ws.Signal()), "SIG")
			_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{Signal: name}))
		} else {
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(st.ExitCode())}))
		}
	}
	_ = ch.CloseWrite()
	ch.Close()
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return strconv.Itoa(int(sig))
}

// hostKey loads the host's ed25519 key, generating it at first boot.
func hostKey(dir string) (ssh.Signer, error) {
	path := filepath.Join(dir, hostKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("parsing host key: %w", err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generating host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("encoding host key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// printConsole appends the host key block to the console log the way
// cloud-init does on EC2.
func printConsole(dir string, key ssh.PublicKey) error {
	f, err := os.OpenFile(filepath.Join(dir, consoleFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening console log: %w", err)
	}
	var b strings.Builder
	b.WriteString("ec2: #############################################################\n")
	b.WriteString(fingerprintsBegin + "\n")
	fmt.Fprintf(&b, "ec2: 256 %s root@localhost (ED25519)\n", ssh.FingerprintSHA256(key))
	b.WriteString(fingerprintsEnd + "\n")
	b.WriteString("ec2: #############################################################\n")
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	fmt.Fprintf(&b, "%s root@localhost\n", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
	b.WriteString("-----END SSH HOST KEY KEYS-----\n")
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("writing console log: %w", err)
	}
	return f.Close()
}

func readHostConfig(dir string) (hostConfig, error) {
	var cfg hostConfig
	data, err := os.ReadFile(filepath.Join(dir, hostConfigFile))
	if err != nil {
		return cfg, fmt.Errorf("reading host config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("parsing host config: %w", err)
	}
	if cfg.ID == "" || cfg.Address == "" || cfg.Port <= 0 {
		return cfg, fmt.Errorf("host config in %s lacks id, address or port", dir)
	}
	return cfg, nil
}

func parseAuthorizedKeys(lines []string) (map[string]struct{}, error) {
	keys := map[string]struct{}{}
	for _, l := range lines {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return nil, fmt.Errorf("parsing authorized key: %w", err)
		}
		keys[string(k.Marshal())] = struct{}{}
	}
	return keys, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}
