// Package static is the provider for machines that already exist: label and
// address pairs listed in the schedule file. tide deploys to them and starts
// or stops their processes, but never launches or terminates them: Launch and
// Terminate always fail with ErrStatic.
//
// static imports only fleet from tide; it must never import the deployer or
// the scheduler.
package static
