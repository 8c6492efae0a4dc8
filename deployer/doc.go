// Package deployer acts on hosts: the label-aware launch pipeline that turns
// a desired count per role into labelled, reachable, deployed hosts, and the
// removal path (a hook before termination, then terminate).
//
// A Fleet plans with pure functions (labels role-1..role-N, a zone per
// label, duplicates and extras to remove) over what the cloud lists, cross-
// referenced with a label cache file, then runs the launch pipeline per
// label in parallel: launch with a deterministic client token, poll for an
// address, SSH with backoff and a deadline, verify the host key, write the
// label to <data path>/LABEL, and hand over to a Deployer hook.
//
// A Drainer's error keeps its host. Replace, which gives named labels new
// hosts, is the one place where that refusal can be overridden, and only
// when its caller says so (ReplaceOptions.DiscardData); the result then
// records the reason and the error.
//
// A stopped instance that holds a wanted label is started again (when the
// cloud is a Starter) rather than replaced: its disk, data and host key
// are kept, and it goes the launch pipeline's way from its address on.
// A start that fails (or whose host stops again before it is labelled and
// converged) is remembered in the label cache: the next reconcile replaces
// a stateless role's host instead of starting it again, and starts a
// stateful role's again, its error counting the failed starts.
//
// A duplicate removed beside the live host that keeps its label goes to
// the Drainer's BeforeTerminateDuplicate when it is a DuplicateDrainer: the
// live host holds the label's data, and the duplicate's must not be backed
// up as the role's latest.
//
// deployer declares the small interfaces it consumes (Cloud, Starter,
// HostKeys, Dialer, Host, Deployer, Drainer, DuplicateDrainer, Progress); cmd/tide adapts the cloud
// providers and the SSH client to them. It must not import scheduler,
// remote, cmd or any cloud package.
package deployer
