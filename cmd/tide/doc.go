// Command tide is the autoscaling scheduler: one binary with subcommands
// (tide help lists them). cmd/tide is the only place that wires
// tide's packages together; nothing imports it.
package main
