// Package fromconfig builds each role's load source from its schedule
// file: a PromQL query on a Prometheus server (one client per server
// URL), samples pushed to tide's API, a synthetic load profile or a trace
// file, the last two replayed at their speed.
//
// It is wiring, kept out of cmd/tide so that it is tested: it depends on
// config, loadgen, trace, loadsource and loadsource/promql, and on nothing
// that the service itself is made of (scheduler's loop, state, clouds).
package fromconfig
