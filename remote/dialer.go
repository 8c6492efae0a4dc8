package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/tideops/tide/clock"
)

// ErrNoAnswer is wrapped by DialRetry's error when it gave up because its
// deadline passed or it ran out of attempts.
var ErrNoAnswer = errors.New("host did not answer")

// Backoff bounds DialRetry: the wait starts at Initial and doubles up to Max,
// each wait drawn at random from its upper half (jitter), and at most
// MaxAttempts dials are made.
type Backoff struct {
	Initial     time.Duration // first wait; default 250ms
	Max         time.Duration // longest wait; default 10s
	MaxAttempts int           // dials before giving up; default 50
}

// Config configures a Dialer.
type Config struct {
	// User is the remote user name. Required.
	User string
	// Signers authenticate the user (LoadIdentity, AgentSigners). Required.
	Signers []ssh.Signer
	// KnownHostsFile is the known_hosts file to verify hosts against and
	// to add new hosts to; it is created if missing. Required.
	KnownHostsFile string
	// Port is used for addresses given without one; default 22.
	Port int
	// Timeout bounds one dial, TCP connect and SSH handshake; default 15s.
	Timeout time.Duration
	// TrustOnFirstUse accepts the key of a host not yet in known_hosts when
	// the caller has no expected fingerprints for it (images that print no
	// keys on their console) and pins it in known_hosts from then on. It
	// never overrides a mismatch, nor a key that is not among fingerprints
	// the caller did expect.
	TrustOnFirstUse bool
	// Backoff bounds DialRetry.
	Backoff Backoff
	// Clock times DialRetry's waits and deadline; default the wall clock.
	Clock clock.Clock
	// Logger receives dial events (never keys or commands); default discards.
	Logger *slog.Logger
}

// Dialer opens verified SSH connections. It is safe for concurrent use.
type Dialer struct {
	user    string
	auth    []ssh.AuthMethod
	kh      *knownHosts
	port    string
	timeout time.Duration
	tofu    bool
	backoff Backoff
	clock   clock.Clock
	logger  *slog.Logger
}

// NewDialer checks cfg and returns a Dialer.
func NewDialer(cfg Config) (*Dialer, error) {
	if cfg.User == "" {
		return nil, errors.New("remote: no user")
	}
	if len(cfg.Signers) == 0 {
		return nil, errors.New("remote: no signers (identity file or ssh-agent)")
	}
	if cfg.KnownHostsFile == "" {
		return nil, errors.New("remote: no known_hosts file")
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("remote: bad port %d", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Backoff.Initial <= 0 {
		cfg.Backoff.Initial = 250 * time.Millisecond
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = 10 * time.Second
	}
	if cfg.Backoff.Max < cfg.Backoff.Initial {
		cfg.Backoff.Max = cfg.Backoff.Initial
	}
	if cfg.Backoff.MaxAttempts <= 0 {
		cfg.Backoff.MaxAttempts = 50
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	kh := &knownHosts{path: cfg.KnownHostsFile}
	if err := kh.ensure(); err != nil {
		return nil, err
	}
	return &Dialer{
		user:    cfg.User,
		auth:    []ssh.AuthMethod{ssh.PublicKeys(cfg.Signers...)},
		kh:      kh,
		port:    strconv.Itoa(cfg.Port),
		timeout: cfg.Timeout,
		tofu:    cfg.TrustOnFirstUse,
		backoff: cfg.Backoff,
		clock:   cfg.Clock,
		logger:  cfg.Logger.With("component", "ssh"),
	}, nil
}

// withPort adds the default port to an address that has none.
func (d *Dialer) withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), d.port)
}

// Dial connects to addr (host or host:port) once and verifies its host key:
// a key known_hosts holds for addr is accepted; a different one is a
// *HostKeyMismatchError; for a host known_hosts does not know, the key's
// SHA256 fingerprint must be in expected (or, with TrustOnFirstUse and an
// empty expected, any key is taken), and it is then added to known_hosts.
// The dial is bounded by the Dialer's timeout and by ctx.
func (d *Dialer) Dial(ctx context.Context, addr string, expected []string) (*Client, error) {
	addr = d.withPort(addr)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	known, err := d.kh.known(addr)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              d.user,
		Auth:              d.auth,
		HostKeyCallback:   d.verify(addr, normalizeFingerprints(expected)),
		HostKeyAlgorithms: hostKeyAlgorithms(known),
		Timeout:           d.timeout,
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	// The handshake has no context of its own: closing the connection when
	// ctx ends is what makes it give up.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return &Client{c: ssh.NewClient(c, chans, reqs), addr: addr, logger: d.logger}, nil
}

// DialRetry dials addr until it answers, waiting with exponential backoff
// and jitter between attempts, for at most the Dialer's MaxAttempts and
// until within has passed, whichever comes first; it never waits forever.
// Host key errors are returned at once, never retried. When it gives up,
// the error wraps ErrNoAnswer and the last dial error.
func (d *Dialer) DialRetry(ctx context.Context, addr string, expected []string, within time.Duration) (*Client, error) {
	start := d.clock.Now()
	deadline := start.Add(within)
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	wait := d.backoff.Initial
	for attempt := 1; ; attempt++ {
		c, err := d.Dial(ctx, addr, expected)
		if err == nil {
			if attempt > 1 {
				d.logger.Info("ssh host answered", "addr", addr, "attempts", attempt, "waited", d.clock.Now().Sub(start))
			}
			return c, nil
		}
		if IsHostKeyError(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dialing %s: %w within %s after %d attempts: %w", addr, ErrNoAnswer, within, attempt, err)
		}
		if attempt >= d.backoff.MaxAttempts {
			return nil, fmt.Errorf("dialing %s: %w after %d attempts: %w", addr, ErrNoAnswer, attempt, err)
		}
		// Equal jitter: half the wait fixed, half random.
		sleep := wait/2 + rand.N(wait/2+1)
		if !d.clock.Now().Add(sleep).Before(deadline) {
			return nil, fmt.Errorf("dialing %s: %w within %s after %d attempts: %w", addr, ErrNoAnswer, within, attempt, err)
		}
		d.logger.Debug("ssh dial failed, retrying", "addr", addr, "attempt", attempt, "wait", sleep, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dialing %s: %w within %s after %d attempts: %w", addr, ErrNoAnswer, within, attempt, err)
		case <-d.clock.After(sleep):
		}
		wait = min(wait*2, d.backoff.Max)
	}
}

// Forget removes addr (host or host:port) from known_hosts. Call it when the
// cloud says the instance that had the address is gone, since clouds (and
// the local cloud all the more) hand addresses out again.
func (d *Dialer) Forget(addr string) error {
	return d.kh.forget(d.withPort(addr))
}

// verify is the host key callback for one dial to addr.
func (d *Dialer) verify(addr string, expected []string) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		cb, err := d.kh.callback()
		if err != nil {
			return err
		}
		err = cb(addr, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("checking host key of %s: %w", addr, err)
		}
		got := ssh.FingerprintSHA256(key)
		if len(ke.Want) > 0 {
			return mismatch(addr, got, ke.Want)
		}
		switch {
		case slices.Contains(expected, got):
		case len(expected) == 0 && d.tofu:
			d.logger.Warn("trusting host key on first use", "addr", addr, "fingerprint", got)
		default:
			return &UnknownHostKeyError{Addr: addr, Got: got, Expected: expected}
		}
		return d.pin(addr, key, got)
	}
}

// pin adds key for addr to known_hosts, checking again under the file lock
// that no other dial or process pinned another key meanwhile.
func (d *Dialer) pin(addr string, key ssh.PublicKey, got string) error {
	unlock, err := d.kh.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cb, err := d.kh.callback()
	if err == nil {
		err = cb(addr, strAddr(addr), key)
	}
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil // pinned meanwhile, same key
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return mismatch(addr, got, ke.Want)
	case !errors.As(err, &ke):
		return fmt.Errorf("checking host key of %s: %w", addr, err)
	}
	if err := d.kh.add(addr, key); err != nil {
		return err
	}
	d.logger.Info("host key added to known_hosts", "addr", addr, "fingerprint", got)
	return nil
}

func mismatch(addr, got string, want []knownhosts.KnownKey) *HostKeyMismatchError {
	e := &HostKeyMismatchError{Addr: addr, Got: got}
	for _, w := range want {
		e.Want = append(e.Want, ssh.FingerprintSHA256(w.Key))
	}
	return e
}

// normalizeFingerprints trims the caller's fingerprints to the form
// ssh.FingerprintSHA256 prints: "SHA256:" and unpadded base64.
func normalizeFingerprints(fps []string) []string {
	out := make([]string, 0, len(fps))
	for _, fp := range fps {
		fp = strings.TrimRight(strings.TrimSpace(fp), "=")
		if fp == "" {
			continue
		}
		if !strings.HasPrefix(fp, "SHA256:") {
			fp = "SHA256:" + fp
		}
		out = append(out, fp)
	}
	return out
}

// LoadIdentity reads an unencrypted private key file (OpenSSH or PEM). For
// keys with a passphrase, use ssh-agent.
func LoadIdentity(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("identity %s has a passphrase: load it into ssh-agent instead", path)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing identity %s: %w", path, err)
	}
	return s, nil
}

// AgentSigners connects to the ssh-agent listening on socket (the value of
// SSH_AUTH_SOCK) and returns its keys as signers. The signers use the
// connection, so close the returned Closer only once done dialling.
func AgentSigners(ctx context.Context, socket string) ([]ssh.Signer, io.Closer, error) {
	if socket == "" {
		return nil, nil, errors.New("no ssh-agent: SSH_AUTH_SOCK is not set")
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to ssh-agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("listing ssh-agent keys: %w", err)
	}
	if len(signers) == 0 {
		conn.Close()
		return nil, nil, errors.New("ssh-agent holds no keys")
	}
	return signers, conn, nil
}
