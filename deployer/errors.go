package deployer

import (
	"context"
	"errors"
	"fmt"

	"github.com/tideops/tide/fleet"
)

// Sentinel errors of the pipeline. Callers branch on them with errors.Is;
// the error returned around them says which host and which step.
var (
	// ErrHostKeyMismatch says a host presented a key that contradicts
	// known_hosts or the fingerprints its console printed. Dialers wrap it;
	// the pipeline never retries it.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrAddressTimeout says a launched instance got no address in time.
	ErrAddressTimeout = errors.New("no address before the deadline")
	// ErrSSHTimeout says a host did not answer SSH before the deadline.
	ErrSSHTimeout = errors.New("host did not answer ssh before the deadline")
	// ErrInstanceGone says an instance left the running states while the
	// pipeline was working on it.
	ErrInstanceGone = errors.New("instance is gone")
	// ErrBusy says another process is reconciling the same fleet.
	ErrBusy = errors.New("another reconcile of this fleet is running")
	// ErrUnlabelled says a host of the fleet has no label tag, no cache
	// entry and no LABEL file: tide does not know what it is and leaves it.
	ErrUnlabelled = errors.New("host has no label")
	// ErrStopping marks host work that was not started because the caller
	// asked no new work to start (a service shutting down).
	ErrStopping = errors.New("not started: stopping")
	// ErrHostsFailed is wrapped by Report.Err when any host failed.
	ErrHostsFailed = errors.New("hosts failed")
	// ErrReplaceHost is wrapped by a Deployer's error when the host is
	// beyond repair (its convergence failed every attempt): the pipeline
	// removes it, through the Drainer, so that the next reconcile launches
	// its label on a new host.
	ErrReplaceHost = errors.New("host must be replaced")
	// ErrUnknownLabel says Replace was given a label no host of the
	// fleet holds.
	ErrUnknownLabel = errors.New("no host of the fleet has the label")
	// ErrFixedRole says Replace was given a label of a Fixed role (static
	// hosts): tide neither terminates nor launches them.
	ErrFixedRole = errors.New("the role's hosts are fixed (static hosts): tide neither terminates nor launches them")
	// ErrSkipped marks a replacement not started because an earlier one
	// of its role failed: a role's hosts are replaced one at a time, and
	// the first failure stops the rest.
	ErrSkipped = errors.New("not started: an earlier replacement of its role failed")
	// ErrStoppedWithData says a stopped instance of a stateful role holds
	// data the pipeline cannot reach: the cloud cannot start it (it is no
	// Starter), so its data can be neither used nor backed up. The host is
	// kept, and a label it holds is not launched anew beside it.
	ErrStoppedWithData = errors.New("stopped and holds the role's data")
)

// Kinds of failure reported per host (HostResult.Kind).
const (
	KindCapacity        = "capacity"
	KindThrottled       = "throttled"
	KindNotFound        = "not-found"
	KindHostKeyMismatch = "host-key-mismatch"
	KindAddressTimeout  = "address-timeout"
	KindSSHTimeout      = "ssh-timeout"
	KindInstanceGone    = "instance-gone"
	KindUnlabelled      = "unlabelled"
	KindDeploy          = "deploy"
	KindBeforeTerminate = "before-terminate"
	KindCanceled        = "canceled"
	KindStopping        = "stopping"
	KindSkipped         = "skipped"
	KindStopped         = "stopped-with-data"
	KindStart           = "start"
	KindOther           = "other"
)

// StepError says which step of a host's pipeline failed.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// Kind classifies a host's failure for reports and retry decisions.
func Kind(err error) string {
	var se *StepError
	switch {
	case err == nil:
		return ""
	case fleet.IsInsufficientCapacity(err):
		return KindCapacity
	case fleet.IsThrottled(err):
		return KindThrottled
	case fleet.IsNotFound(err):
		return KindNotFound
	case errors.Is(err, ErrHostKeyMismatch):
		return KindHostKeyMismatch
	case errors.Is(err, ErrAddressTimeout):
		return KindAddressTimeout
	case errors.Is(err, ErrSSHTimeout):
		return KindSSHTimeout
	case errors.Is(err, ErrInstanceGone):
		return KindInstanceGone
	case errors.Is(err, ErrUnlabelled):
		return KindUnlabelled
	case errors.Is(err, ErrStopping):
		return KindStopping
	case errors.Is(err, ErrSkipped):
		return KindSkipped
	case errors.Is(err, ErrStoppedWithData):
		return KindStopped
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindCanceled
	case errors.As(err, &se) && se.Step == StepStarting:
		return KindStart
	case errors.As(err, &se) && se.Step == StepDeploying:
		return KindDeploy
	case errors.As(err, &se) && se.Step == StepDraining:
		return KindBeforeTerminate
	}
	return KindOther
}
