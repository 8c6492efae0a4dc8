package forecast

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Sample is one observation of a trace.
type Sample struct {
	At    time.Time
	Value float64
}

// ReadTrace reads a trace CSV with a header and the columns timestamp
// (RFC 3339) and requests. Rows must be in time order.
func ReadTrace(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("reading trace header: empty file")
		}
		return nil, fmt.Errorf("reading trace header: %w", err)
	}
	if len(head) < 2 || strings.TrimSpace(head[0]) != "timestamp" {
		return nil, fmt.Errorf("reading trace header: got %q, want timestamp,requests", strings.Join(head, ","))
	}
	var out []Sample
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading trace line %d: %w", line, err)
		}
		at, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fmt.Errorf("reading trace line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("reading trace line %d: %w", line, err)
		}
		if n := len(out); n > 0 && !at.After(out[n-1].At) {
			return nil, fmt.Errorf("reading trace line %d: time %s not after %s", line, at.Format(time.RFC3339), out[n-1].At.Format(time.RFC3339))
		}
		out = append(out, Sample{At: at.UTC(), Value: v})
	}
}

// InferStep returns the most common positive interval between samples.
func InferStep(s []Sample) (time.Duration, error) {
	count := map[time.Duration]int{}
	for i := 1; i < len(s) && i < 10000; i++ {
		count[s[i].At.Sub(s[i-1].At)]++
	}
	best, bestN := time.Duration(0), 0
	for d, n := range count {
		if n > bestN || (n == bestN && d < best) {
			best, bestN = d, n
		}
	}
	if best <= 0 {
		return 0, errors.New("inferring step: fewer than two samples")
	}
	return best, nil
}
