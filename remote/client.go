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
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s, err := c.c.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("opening ssh session on %s: %w", c.addr, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout = &out
	s.Stderr = &errb
	if stdin != nil {
		s.Stdin = stdin
	}
	if err := s.Start(cmd); err != nil {
		return nil, nil, fmt.Errorf("starting command on %s: %w", c.addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		c.logger.Debug("ssh command cancelled", "addr", c.addr)
		// The output buffers may still be written to until the session is
		// torn down: none of it is returned.
		return nil, nil, fmt.Errorf("running command on %s: %w", c.addr, ctx.Err())
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.Bytes(), errb.Bytes(), nil
	case errors.As(err, &ee):
		x := &ExitError{Code: ee.ExitStatus(), Stderr: errb.Bytes()}
		if sig := ee.Signal(); sig != "" {
			x.Code, x.Signal = -1, sig
		}
		return out.Bytes(), errb.Bytes(), x
	default:
		return out.Bytes(), errb.Bytes(), fmt.Errorf("running command on %s: %w", c.addr, err)
	}
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
