package simulate

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"
)

// TimelineHeader is the first line of a timeline CSV.
const TimelineHeader = "timestamp,role,load,forecast,desired,ready"

// WriteTimeline writes tide's timeline as CSV: the header
// timestamp,role,load,forecast,desired,ready, then one row per trace row.
// load is written as the trace has it (shortest form), forecast with two
// decimals or empty when the decision used none.
func WriteTimeline(w io.Writer, results ...*Result) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(TimelineHeader + "\n")
	buf := make([]byte, 0, 128)
	for _, res := range results {
		for _, r := range res.Tide.Rows {
			buf = r.At.UTC().AppendFormat(buf[:0], time.RFC3339)
			buf = append(buf, ',')
			buf = append(buf, res.Role...)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, r.Load, 'f', -1, 64)
			buf = append(buf, ',')
			if r.HasForecast() {
				buf = strconv.AppendFloat(buf, r.Forecast, 'f', 2, 64)
			}
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(r.Desired), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(r.Ready), 10)
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("writing timeline: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing timeline: %w", err)
	}
	return nil
}

// Summary is the JSON summary of a simulation. Tide's metrics appear both
// at the top level (so `jq .instance_hours` reads tide's figure) and under
// "tide"; the baselines' under "baselines".
type Summary struct {
	Metrics
	Role         string             `json:"role"`
	Trace        string             `json:"trace"`
	Start        time.Time          `json:"start"`
	End          time.Time          `json:"end"`
	Steps        int                `json:"steps"`
	Step         string             `json:"step"`
	Lead         string             `json:"lead"`
	Capacity     float64            `json:"capacity_per_instance"`
	Min          int                `json:"min"`
	Max          int                `json:"max"`
	Gaps         int                `json:"gaps"`
	MissingSteps int                `json:"missing_steps"`
	Tide         Metrics            `json:"tide"`
	Baselines    map[string]Metrics `json:"baselines"`
	// Notes say how the figures are defined.
	Notes map[string]string `json:"notes"`
}

// Summarize builds the JSON summary of a result.
func (r *Result) Summarize() Summary {
	s := Summary{
		Metrics: r.Tide.Metrics, Tide: r.Tide.Metrics,
		Role: r.Role, Trace: r.Trace, Steps: len(r.Tide.Rows),
		Step: r.Step.String(), Lead: r.Lead.String(), Capacity: r.Capacity, Min: r.Min, Max: r.Max,
		Gaps: len(r.Gaps), Baselines: map[string]Metrics{},
		Notes: map[string]string{
			"instance_hours":          "host-hours billed from launch to termination, pending hosts included",
			"oracle_instance_hours":   "host-hours of ceil(load/capacity) hosts each step, at least min, ready at once",
			"under_provisioned_share": "share of steps with ready*capacity < load",
			"over_provisioned_share":  "share of steps with more ready hosts than the oracle's count",
			"unserved_fraction":       "load above ready capacity, summed over steps, over total load",
			"scale_events":            "steps whose desired count differs from the previous step's",
			"gaps":                    "runs of missing trace rows: no decision, no row and no cost there",
			"baselines":               "static_peak: ceil(max load/capacity) throughout; reactive: target tracking with 20% headroom, same lead, min, max and stabilization, no forecast, no windows; schedule_only: the role's windows and min, no load",
		},
	}
	if n := len(r.Tide.Rows); n > 0 {
		s.Start = r.Tide.Rows[0].At
		s.End = r.Tide.Rows[n-1].At.Add(r.Step)
	}
	for _, g := range r.Gaps {
		s.MissingSteps += g.Missing
	}
	for _, b := range r.Baselines {
		s.Baselines[b.Strategy] = b.Metrics
	}
	return s
}
