// Package metrics holds tide's Prometheus collectors (names prefixed
// tide_): hosts desired, ready and pending per role, load and forecast per
// role, decisions by winning input, launches, terminations, failures by
// kind, launch and deploy durations, and a decorator around the cloud that
// records the latency and errors of every cloud API call.
//
// The collectors are built against a prometheus.Registerer passed in, so
// that tests gather from a fresh registry. metrics reads scheduler records
// and deployer reports and wraps deployer.Cloud; it must not depend on cloud
// implementations, SSH, the state store or the HTTP server.
package metrics
