// Package fleet holds the value types every other part of tide shares: an
// instance as a cloud reports it, what to launch, the tags tide puts on its
// hosts, and the typed errors that clouds return so that callers can branch
// on kinds of failure (not found, capacity, throttling).
//
// fleet is a leaf: it imports nothing from tide.
package fleet
