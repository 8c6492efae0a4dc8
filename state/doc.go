// Package state keeps what tide must remember across restarts in one
// embedded bbolt database in the service's data directory: operator
// overrides, the decision history, the load history the predictor is
// rebuilt from, launch-to-ready durations and each role's last desired
// count. (Launches resume after a crash through the deployer's label
// cache and per-label client tokens, not through this store.)
//
// Every mutation is one bbolt read-write transaction, so it is either on
// disk whole or not at all, including the pruning that bounds each history.
// The file is locked while open: a second process on the same directory gets
// ErrLocked after the lock timeout instead of waiting for ever.
//
// Methods take no context.Context: they only touch local disk and finish in
// microseconds to milliseconds (one fsync per mutation). Retention is
// computed from the times passed in (a record's At, a sample's At, the now
// given to Overrides), never from a clock, so tests and the simulator stay
// deterministic.
//
// state depends on scheduler for its value types (Record, Override, Sample)
// and on nothing that does I/O other than bbolt: no clouds, SSH or HTTP.
package state
