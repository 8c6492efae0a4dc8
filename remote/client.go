package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// ExitError says a remote command ran and exited with a non-zero status (or
// was killed by a signal, then Code is -1 and Signal names it).
type ExitError struct {
	Code   int
	Signal string
	Stderr []byte
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(string(e.Stderr))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	what := fmt.Sprintf("exit status %d", e.Code)
	if e.Signal != "" {
		what = "killed by signal " + e.Signal
	}
	if msg == "" {
		return "remote command: " + what
	}
	return fmt.Sprintf("remote command: %s: %s", what, msg)
}

// Client is one SSH connection to a host. It is safe for concurrent use:
// each Run opens its own session.
type Client struct {
	c      *ssh.Client
	addr   string
	logger *slog.Logger
}

// Addr returns the host:port the client is connected to.
func (c *Client) Addr() string { return c.addr }

// Run runs cmd on the host, feeding it stdin (nil for none), and returns
// what it wrote. A non-zero exit is an *ExitError. When ctx ends first, the
// command is sent SIGKILL, its session closed, and ctx's error returned
// without output; a stdin reader that blocks may then be left to its
// reading goroutine until it returns.
//
// Whether the command dies is up to the server: local-cloud hosts kill the
// session's process group; OpenSSH honours the signal for ordinary users
// but refuses it for root logins (no privilege separation after
// authentication), where a command only notices its session is gone when it
// next writes output.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) (stdout, stderr []byte, err error) {
	var out, errb bytes.Buffer
	err = c.run(ctx, cmd, stdin, &out, &errb)
	if err != nil && ctx.Err() != nil && !isExit(err) {
		// The output buffers may still be written to until the session is
		// torn down: none of it is returned.
		return nil, nil, err
	}
	var x *ExitError
	if errors.As(err, &x) {
		x.Stderr = errb.Bytes()
	}
	return out.Bytes(), errb.Bytes(), err
}

// StderrLimit is how much of a streamed command's standard error Stream
// keeps for its *ExitError: the last StderrLimit bytes.
const StderrLimit = 64 << 10

// Stream runs cmd on the host as Run does, but copies its standard output
// to stdout as it arrives instead of holding it: tide's memory does not
// grow with the output. Of standard error only the last StderrLimit bytes
// are kept, for the *ExitError of a non-zero exit.
//
// When ctx ends, or stdout fails a write, the command is sent SIGKILL and
// its session closed; Stream returns ctx's error or the write's, and
// stdout is never written to after Stream returned.
func (c *Client) Stream(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	tail := &tailBuffer{max: StderrLimit}
	g := &gate{w: stdout, failed: make(chan struct{})}
	err := c.run(ctx, cmd, stdin, g, tail, g.failed)
	g.close()
	if werr := g.error(); werr != nil {
		return fmt.Errorf("running command on %s: writing its output: %w", c.addr, werr)
	}
	var x *ExitError
	if errors.As(err, &x) {
		x.Stderr = tail.bytes()
	}
	return err
}

// run runs cmd with its output going to stdout and stderr, and returns nil,
// an *ExitError (without Stderr, which the caller fills in) or another
// error. It returns early, killing the command, when ctx ends or a channel
// in stop closes.
func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer, stop ...<-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := c.c.NewSession()
	if err != nil {
		return fmt.Errorf("opening ssh session on %s: %w", c.addr, err)
	}
	defer s.Close()
	s.Stdout = stdout
	s.Stderr = stderr
	if stdin != nil {
		s.Stdin = stdin
	}
	if err := s.Start(cmd); err != nil {
		return fmt.Errorf("starting command on %s: %w", c.addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	var failed <-chan struct{} // nil: never ready
	if len(stop) > 0 {
		failed = stop[0]
	}
	select {
	case err = <-done:
	case <-failed:
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		c.logger.Debug("ssh command stopped: its output could not be written", "addr", c.addr)
		return fmt.Errorf("running command on %s: output not written", c.addr)
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		c.logger.Debug("ssh command cancelled", "addr", c.addr)
		return fmt.Errorf("running command on %s: %w", c.addr, ctx.Err())
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		x := &ExitError{Code: ee.ExitStatus()}
		if sig := ee.Signal(); sig != "" {
			x.Code, x.Signal = -1, sig
		}
		return x
	default:
		return fmt.Errorf("running command on %s: %w", c.addr, err)
	}
}

func isExit(err error) bool {
	var x *ExitError
	return errors.As(err, &x)
}

// gate passes writes on to w until it is closed or a write fails; the
// first failure closes failed. Writes after close are refused, so that the
// SSH session's copying goroutine, which may outlive the command's
// session, never touches w once Stream has returned.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
	err    error
	failed chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if g.closed {
		return 0, errGateClosed
	}
	n, err := g.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		g.err = err
		close(g.failed)
	}
	return n, err
}

var errGateClosed = errors.New("command output after the command was given up")

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gate) error() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.b = append(t.b[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.b) + len(p) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	t.b = append(t.b, p...)
	return n, nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}

// Upload writes r to path on the host with the given permission bits,
// creating the parent directory. It streams r into `cat` on the command's
// stdin, writes to a temporary file next to path and renames it, so that a
// failed upload never leaves a half-written path.
func (c *Client) Upload(ctx context.Context, path string, r io.Reader, mode fs.FileMode) error {
	q := ShellQuote(path)
	cmd := fmt.Sprintf(`set -e; umask 077; mkdir -p "$(dirname %[1]s)"; t=%[1]s.tide-upload.$$; trap 'rm -f "$t"' EXIT; cat > "$t"; chmod %[2]o "$t"; mv -f "$t" %[1]s; trap - EXIT`,
		q, mode.Perm())
	if _, _, err := c.Run(ctx, cmd, r); err != nil {
		return fmt.Errorf("uploading %s: %w", path, err)
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// ShellQuote quotes s for a POSIX shell, in single quotes.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
