// Package policies turns a role's declared policies (cron windows in a time
// zone, one-off dated windows) into proposals at a given instant, each with
// a reason a person can read.
//
// policies is pure: no I/O, no clouds, no clock of its own; every question
// takes the time as a parameter.
package policies
