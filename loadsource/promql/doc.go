// Package promql reads a role's load from a Prometheus server with a
// PromQL query, through client_golang's API client.
//
// A query must give one number: an instant vector of exactly one series
// or a scalar (aggregate with sum() or max() when the metric has several
// series). Anything else (an error, a timeout, no series, several series,
// NaN, a negative value) is a missing load, an error matching
// loadsource.ErrNoData; it is never read as zero.
//
// promql depends on loadsource, scheduler's Sample and the Prometheus
// client only; it knows nothing of the service, state or clouds.
package promql
