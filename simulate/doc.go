// Package simulate replays a load trace through tide's decision code
// (scheduler.Role) on a virtual clock, with simulated hosts that become
// ready a lead time after they were asked for, and compares the outcome
// with baselines run alongside on the same trace: a static fleet sized for
// the peak, reactive target tracking, and the schedule alone.
//
// Semantics, step by step (the trace's rows are the steps):
//
//   - At each row's instant t the role observes the row's load, then
//     decides. A decision at t therefore uses only trace values up to and
//     including t; the forecast it uses looks lead+step ahead of t.
//   - The simulated fleet follows each decision at once: hosts asked for at
//     t become ready from the first step at or after t+lead; hosts removed
//     are removed at once, pending ones first (newest first), then ready
//     ones. Ready is the count of hosts able to serve during the step.
//   - The fleet starts warm: at the first row the first decision's hosts
//     are all ready, for tide and every baseline alike.
//   - A gap in the trace (grid instants with no row) is time the trace does
//     not cover: no decision is made there, no row is written and nothing is
//     counted; pending hosts keep maturing across it; the forecaster sees
//     the gap as missing samples. The first decision after a gap sees that
//     row's fresh sample (and stabilization windows measured in time have
//     usually passed).
//   - Hosts are billed from launch to termination: instance_hours counts
//     every host of the fleet (pending or ready) for each step.
//
// simulate imports scheduler, policies, trace and predictor-style
// forecasters through scheduler.Forecaster; it does no I/O of its own
// beyond the writers it is given, and knows nothing of clouds or SSH.
package simulate
