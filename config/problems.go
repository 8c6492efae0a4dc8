package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a schedule file, at a position in it.
type Problem struct {
	// File is the path the schedule was read from; empty for a schedule
	// built in Go.
	File string
	// Line and Col are 1-based; zero when the position is unknown.
	Line, Col int
	// Path names the field, like "roles[1].policies.schedule[0].start";
	// empty for problems with the file as a whole.
	Path string
	// Msg says what is wrong, in lower case.
	Msg string
}

// String formats the problem as FILE:LINE:COL: PATH: MSG, leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	switch {
	case p.Line > 0 && p.Col > 0:
		fmt.Fprintf(&b, "%d:%d:", p.Line, p.Col)
	case p.Line > 0:
		fmt.Fprintf(&b, "%d:", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a schedule file. It is the error Parse,
// Load and Validate return when a schedule is not usable; use errors.As to
// get at the individual problems.
type Problems []Problem

// Error prints one problem a line, in file order.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by position, then path, so that reports read
// top to bottom; problems without a position come first.
func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Path < b.Path
	})
}
