package scheduler

import (
	"fmt"
	"strings"
	"time"
)

// Input is what one input proposed in a decision.
type Input struct {
	// Source names the input: "schedule:business-hours", "window:migration",
	// "load", "forecast", "override", "min", "previous".
	Source string `json:"source"`
	Count  int    `json:"count"`
	Detail Detail `json:"detail"`
	Won    bool   `json:"won,omitempty"`
}

// Step is a clamp or hold applied after the inputs were combined.
type Step struct {
	// Kind is one of clamp-min, clamp-max, stabilization, step-limit,
	// freeze, exact, pin.
	Kind   string `json:"kind"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Detail Detail `json:"detail"`
}

// Record is one decision for one role, readable by a person.
type Record struct {
	Role     string    `json:"role"`
	At       time.Time `json:"at"`
	Previous int       `json:"previous"`
	Desired  int       `json:"desired"`
	// Winner is the Source of the input that set the count before limits.
	Winner string  `json:"winner"`
	Inputs []Input `json:"inputs"`
	Steps  []Step  `json:"steps,omitempty"`
	// Load is the latest load sample used, if any.
	Load *float64 `json:"load,omitempty"`
	// Forecast is the upper forecast of the load within the lead time, if any.
	Forecast *float64 `json:"forecast,omitempty"`
	// Frozen is set when a missing or stale load metric froze the role.
	Frozen bool `json:"frozen,omitempty"`
}

// Summary is a one-line explanation: "web: 6 (schedule:business-hours; held by stabilization)".
func (r Record) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d", r.Role, r.Desired)
	if r.Desired != r.Previous {
		fmt.Fprintf(&b, " (was %d)", r.Previous)
	}
	fmt.Fprintf(&b, " by %s", r.Winner)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "; %s", s.Kind)
	}
	return b.String()
}

// String renders the whole record, one fact a line.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "role %s at %s: desired %d (previous %d)\n", r.Role, r.At.Format(time.RFC3339), r.Desired, r.Previous)
	fmt.Fprintf(&b, "  inputs:\n")
	for _, in := range r.Inputs {
		mark := " "
		if in.Won {
			mark = "*"
		}
		fmt.Fprintf(&b, "   %s %-28s %4d  %s\n", mark, in.Source, in.Count, in.Detail.String())
	}
	if len(r.Steps) > 0 {
		fmt.Fprintf(&b, "  then:\n")
		for _, s := range r.Steps {
			fmt.Fprintf(&b, "    %-14s %d -> %d  %s\n", s.Kind, s.From, s.To, s.Detail.String())
		}
	}
	fmt.Fprintf(&b, "  result: %d hosts, set by %s\n", r.Desired, r.Winner)
	return b.String()
}
