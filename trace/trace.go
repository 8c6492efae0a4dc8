package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Point is one row of a trace: the load measured over the step that starts
// at At.
type Point struct {
	At    time.Time
	Value float64
}

// Trace is a load series on a fixed step. Points are in strictly increasing
// time order and every point lies on the grid Start + k*Step; missing grid
// instants are gaps.
type Trace struct {
	// Name is where the trace came from (a file name or a profile).
	Name string
	// Step is the fixed time between grid instants.
	Step   time.Duration
	Points []Point
}

// Gap is a run of grid instants with no row: From is the first missing
// instant and Missing how many steps are missing.
type Gap struct {
	From    time.Time
	Missing int
}

// ParseError is a problem at one line of a trace file.
type ParseError struct {
	File string
	Line int
	Err  error
}

// Error formats the problem as "file:line: message".
func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrEmpty is returned for a trace with a header but no rows.
var ErrEmpty = errors.New("trace has no rows")

// ReadFile reads a trace file; errors name the file and line.
func ReadFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading trace: %w", err)
	}
	defer f.Close()
	return Read(f, path)
}

// Read parses a trace from r; name is used in errors and as the trace's
// Name. The header must be "timestamp,<value column>" (the value column is
// usually "requests"). Timestamps must be RFC3339 in UTC, strictly
// increasing, and on one fixed step: the step is the most common difference
// between consecutive rows, and every difference must be a whole multiple
// of it (larger multiples are gaps). Values must be finite and not negative.
// Blank lines are ignored; a trailing CR is accepted.
func Read(r io.Reader, name string) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	perr := func(line int, format string, a ...any) error {
		return &ParseError{File: name, Line: line, Err: fmt.Errorf(format, a...)}
	}
	var (
		pts    []Point
		lines  []int // line number of each point, for step errors
		line   int
		header bool
	)
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if !header {
			header = true
			cols := strings.Split(text, ",")
			if len(cols) != 2 || strings.TrimSpace(strings.TrimPrefix(cols[0], "\ufeff")) != "timestamp" || strings.TrimSpace(cols[1]) == "" {
				return nil, perr(line, "header is %q: want timestamp,requests", text)
			}
			continue
		}
		ts, val, ok := strings.Cut(text, ",")
		if !ok || strings.Contains(val, ",") {
			return nil, perr(line, "want 2 columns (timestamp,requests), got %q", text)
		}
		ts, val = strings.TrimSpace(ts), strings.TrimSpace(val)
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return nil, perr(line, "timestamp %q is not RFC3339 (like 2006-01-02T15:04:05Z)", ts)
		}
		if _, off := at.Zone(); off != 0 {
			return nil, perr(line, "timestamp %q is not in UTC (want a Z suffix)", ts)
		}
		at = at.UTC()
		if val == "" {
			return nil, perr(line, "missing value: leave out the row for a gap instead of an empty cell")
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, perr(line, "value %q is not a finite number", val)
		}
		if v < 0 {
			return nil, perr(line, "value %s is negative", val)
		}
		if n := len(pts); n > 0 && !at.After(pts[n-1].At) {
			if at.Equal(pts[n-1].At) {
				return nil, perr(line, "timestamp %s repeats line %d", ts, lines[n-1])
			}
			return nil, perr(line, "timestamp %s is before the previous row's %s (line %d): rows must be in time order", ts, pts[n-1].At.Format(time.RFC3339), lines[n-1])
		}
		pts = append(pts, Point{At: at, Value: v})
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if !header {
		return nil, perr(1, "empty file: want a header timestamp,requests")
	}
	if len(pts) == 0 {
		return nil, &ParseError{File: name, Line: line, Err: ErrEmpty}
	}
	t := &Trace{Name: name, Points: pts}
	if len(pts) == 1 {
		return nil, perr(lines[0], "a trace needs at least two rows to have a step")
	}
	t.Step = modeStep(pts)
	for i := 1; i < len(pts); i++ {
		d := pts[i].At.Sub(pts[i-1].At)
		if d%t.Step != 0 {
			return nil, perr(lines[i], "timestamp %s is %s after the previous row: not a multiple of the trace's step %s",
				pts[i].At.Format(time.RFC3339), d, t.Step)
		}
	}
	return t, nil
}

// modeStep is the most common difference between consecutive points; ties
// go to the smaller difference.
func modeStep(pts []Point) time.Duration {
	counts := map[time.Duration]int{}
	for i := 1; i < len(pts); i++ {
		counts[pts[i].At.Sub(pts[i-1].At)]++
	}
	var best time.Duration
	for d, n := range counts {
		if n > counts[best] || (n == counts[best] && d < best) {
			best = d
		}
	}
	return best
}

// Start is the first point's time.
func (t *Trace) Start() time.Time { return t.Points[0].At }

// End is the end of the last point's step.
func (t *Trace) End() time.Time { return t.Points[len(t.Points)-1].At.Add(t.Step) }

// Gaps lists the runs of missing grid instants, in order.
func (t *Trace) Gaps() []Gap {
	var gaps []Gap
	for i := 1; i < len(t.Points); i++ {
		d := t.Points[i].At.Sub(t.Points[i-1].At)
		if d > t.Step {
			gaps = append(gaps, Gap{From: t.Points[i-1].At.Add(t.Step), Missing: int(d/t.Step) - 1})
		}
	}
	return gaps
}

// Until returns the trace cut after at: the points at or before at. The
// step is kept.
func (t *Trace) Until(at time.Time) *Trace {
	n := 0
	for n < len(t.Points) && !t.Points[n].At.After(at) {
		n++
	}
	return &Trace{Name: t.Name, Step: t.Step, Points: t.Points[:n:n]}
}

// Max is the largest value in the trace.
func (t *Trace) Max() float64 {
	m := 0.0
	for _, p := range t.Points {
		m = max(m, p.Value)
	}
	return m
}

// Write writes the trace as CSV with the header timestamp,requests.
func Write(w io.Writer, t *Trace) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("timestamp,requests\n")
	buf := make([]byte, 0, 64)
	for _, p := range t.Points {
		buf = p.At.UTC().AppendFormat(buf[:0], time.RFC3339)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, p.Value, 'f', -1, 64)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing trace: %w", err)
	}
	return nil
}
