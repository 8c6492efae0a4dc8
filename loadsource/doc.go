// Package loadsource gives the service each role's current load, one
// scheduler.Sample at a time, from wherever the load is measured: samples
// pushed to tide's API (Pushed), a replay of a trace or a synthetic load
// profile faster than real time for demonstrations (Replay), or a
// Prometheus server (subpackage promql).
//
// The contract every source keeps: a load that cannot be measured is an
// error matching ErrNoData, never a zero. A zero would tell the scheduler
// that nobody uses the role and let it scale down; a missing metric makes
// it hold the current count instead.
//
// loadsource depends on scheduler (for Sample) and trace only; it knows
// nothing of clouds, SSH, state or the HTTP API that feeds Pushed.
package loadsource
