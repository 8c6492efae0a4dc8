package deployer

import (
	"context"
	"io"

	"github.com/tideops/tide/fleet"
)

// Host is a connected host: what the pipeline and its hooks need to act on
// it. remote's SSH client implements it through a small adapter in cmd/tide.
type Host interface {
	// Run runs cmd with /bin/sh on the host, feeding it stdin (which may be
	// nil), and returns its standard output. A command that exits non-zero
	// is an error.
	Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
	// Close ends the connection.
	Close() error
}

// Dialer connects to hosts. Dial makes one attempt: the pipeline retries
// with exponential backoff until its SSH deadline, fetching the expected
// fingerprints again before each attempt.
//
// expected holds the SHA256 fingerprints the cloud printed on the
// instance's console (empty when it printed nothing yet, or for clouds that
// cannot tell). An error that wraps ErrHostKeyMismatch is final: the host
// presented a key that contradicts known_hosts or the console, and work on
// it stops. Any other error is retried.
type Dialer interface {
	Dial(ctx context.Context, inst fleet.Instance, expected []string) (Host, error)
}

// Forgetter is optionally implemented by a Dialer that keeps known hosts:
// after an instance is terminated its address may be given to another
// instance with another key, so the pipeline asks to forget it.
type Forgetter interface {
	Forget(address string) error
}

// Deployer converges a labelled host: set it up, deploy its applications,
// run its processes. It must be idempotent: it is called for new hosts and,
// on every reconcile, for kept ones.
type Deployer interface {
	Converge(ctx context.Context, host Host, inst fleet.Instance, role string) error
}

// Drainer is the hook called before a host is terminated: drain its
// processes and, for a stateful role, back its data up and verify the
// backup. host is nil when the host could not be reached; the hook then
// decides whether termination may go ahead. An error prevents termination.
type Drainer interface {
	BeforeTerminate(ctx context.Context, host Host, inst fleet.Instance) error
}

// DuplicateDrainer is optionally implemented by a Drainer that drains a
// label's duplicate apart: another, live host holds the label and its
// data, so the duplicate's data, maybe older, must not be backed up as
// the role's latest. The pipeline calls BeforeTerminateDuplicate instead
// of BeforeTerminate for such a host, and does not start a stopped one
// first. host is nil when the host is stopped or could not be reached. An
// error prevents termination. A Drainer without it is called as for any
// other host.
type DuplicateDrainer interface {
	BeforeTerminateDuplicate(ctx context.Context, host Host, inst fleet.Instance) error
}

// NopDeployer is the Deployer that does nothing: the launch pipeline ends
// with the label written.
type NopDeployer struct{}

var _ Deployer = NopDeployer{}

// Converge returns nil.
func (NopDeployer) Converge(context.Context, Host, fleet.Instance, string) error { return nil }
