// Package main is the tide binary. cmd/tide is the only place that wires
// tide's packages together; nothing imports it.
package main
