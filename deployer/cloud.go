package deployer

import (
	"context"

	"github.com/tideops/tide/fleet"
)

// Cloud is what the launch pipeline needs from a cloud provider.
//
// Error contract: Launch returns *fleet.InsufficientCapacityError when the
// cloud has no capacity and *fleet.ThrottledError when it refused the call
// for its rate; Terminate returns *fleet.NotFoundError when the instance does
// not exist (terminating an already terminated instance is not an error).
type Cloud interface {
	// List returns the fleet's instances in every state but terminated.
	List(ctx context.Context, fleetName string) ([]fleet.Instance, error)
	// Launch starts one instance. It is idempotent on spec.ClientToken: a
	// retry with the same token returns the instance the first call made.
	// The instance carries spec.AllTags() from the start.
	Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error)
	// Terminate stops and removes an instance.
	Terminate(ctx context.Context, id string) error
}

// HostKeys is what the pipeline needs to verify a new host's SSH key before
// it trusts the host: the key fingerprints (SHA256:...) the instance printed
// on its console at boot. It returns an empty list, not an error, when the
// console has nothing yet.
type HostKeys interface {
	HostKeyFingerprints(ctx context.Context, id string) ([]string, error)
}

// Starter is implemented by a Cloud that can start a stopped instance
// again, with its disk, its tags and its host key: the pipeline then starts
// a stopped instance that holds a wanted label instead of launching the
// label anew beside it, and starts a stopped host of a stateful role that
// is to be removed so that the Drainer can back its data up. Without it a
// stopped host of a stateful role that holds a wanted label is reported
// failed (ErrStoppedWithData), and its label is not launched again.
//
// Error contract: Start returns *fleet.NotFoundError for an instance the
// cloud does not know, *fleet.InsufficientCapacityError when the cloud has
// no capacity to start it and *fleet.ThrottledError when it refused the
// call for its rate. Starting a pending or running instance is not an
// error; one that cannot be started (terminated, shutting down) is. Start
// returns once the start is under way: the instance then shows pending
// until it has booted.
type Starter interface {
	Start(ctx context.Context, id string) error
}
