// Package scheduler decides how many hosts each role should have.
//
// A decision combines the role's inputs (schedule proposals from policies,
// the load need from the latest sample and the forecast, an operator
// override) and applies limits (min/max clamps, scale-down stabilization,
// step limits, freezing on a missing load metric). Every decision is a
// Record that says what each input proposed, which won, and what held or
// clamped the result, so that a person can read why. A record's details
// keep their numbers and are worded when read (String, JSON), so that
// decisions nobody reads, as in the simulator, cost no formatting.
//
// The same Role code runs in the service on the wall clock and in the
// simulator on a virtual clock. scheduler imports config, policies and
// predictor; it knows nothing of clouds, SSH or HTTP.
package scheduler
