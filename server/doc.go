// Package server is tide's HTTP face: a JSON API under /api/ behind a
// bearer token, the Prometheus /metrics endpoint and the web interface (plain
// HTML, CSS and JavaScript embedded in the binary, no build step).
//
// The operator's actions, POST /api/apply, /api/deploy {app, revision} and
// /api/rollback {app, to?} (to a revision of GET /api/releases?app=NAME,
// the application's history as tide rollback --list shows it; without to,
// one step back) and /api/replace {labels, discard_data?, reason?} (new hosts
// for the named ones, as tide replace gives; discarding data needs a
// reason), run in the background one at a time and answer 202; their
// outcome shows in GET /api/status (a replace's with its result: what was
// done to each host, and for each host whose data was discarded, the
// backup error and the backup its replacement restored).
//
// server consumes the rest of tide through small interfaces it declares
// (Decisions, History, Overrides, Fleet, Forecasts, Schedule, Actions,
// Releases, Samples); cmd/tide adapts the scheduler loop, the state store,
// the deployer and the predictor to them. server imports scheduler and
// fleet for their value types only; it must not depend on clouds, SSH, the
// state store or the deployer, so that it can be tested with in-memory
// fakes and driven by a real browser.
package server
