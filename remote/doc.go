// Package remote is tide's SSH client: it dials hosts with keys from an
// identity file or ssh-agent, verifies their host keys against a known_hosts
// file (accepting a new host only when its fingerprint is one the cloud
// printed on the host's console, or on first use when the caller says so),
// retries dials with bounded exponential backoff, runs commands and uploads
// files.
//
// A host key that differs from the one known_hosts holds is a
// *HostKeyMismatchError: work on that host stops and the error is reported,
// never ignored or retried.
//
// remote must not import any other tide package but clock: clouds, the
// deployer and the scheduler use it, not the other way round.
package remote
