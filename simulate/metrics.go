package simulate

import (
	"math"
	"time"
)

// Metrics sum up one strategy's timeline.
type Metrics struct {
	// InstanceHours is the host-hours the fleet cost: every host, pending
	// or ready, for every step, billed from launch to termination.
	InstanceHours float64 `json:"instance_hours"`
	// OracleInstanceHours is what a fleet that knew the future and started
	// instantly would cost: ceil(load/capacity) hosts each step, at least
	// the role's min.
	OracleInstanceHours float64 `json:"oracle_instance_hours"`
	// CostRatio is InstanceHours / OracleInstanceHours.
	CostRatio float64 `json:"instance_hours_ratio"`
	// UnderProvisionedShare is the share of steps whose ready hosts could not
	// serve the step's load (ready*capacity < load).
	UnderProvisionedShare float64 `json:"under_provisioned_share"`
	// OverProvisionedShare is the share of steps with more ready hosts than
	// the oracle's count for that step (ceil(load/capacity), at least min).
	OverProvisionedShare float64 `json:"over_provisioned_share"`
	// UnservedFraction is the load beyond ready capacity, summed over the
	// steps, divided by the total load.
	UnservedFraction float64 `json:"unserved_fraction"`
	// ScaleEvents counts the steps whose desired count differs from the
	// previous step's.
	ScaleEvents int `json:"scale_events"`
	// PeakHosts is the largest desired count.
	PeakHosts int `json:"peak_hosts"`
	// Winners counts the decisions by winning input (scheduler strategies).
	Winners map[string]int `json:"winners,omitempty"`
}

// Measure computes the metrics of a timeline whose rows are steps of the
// given length, for hosts of the given capacity and a role minimum min.
func Measure(rows []Row, step time.Duration, capacity float64, min int) Metrics {
	var (
		m               Metrics
		hosts, oracle   int
		under, over     int
		unserved, total float64
		prev            = -1
	)
	for _, r := range rows {
		hosts += r.Desired
		o := max(min, need(r.Load, capacity))
		oracle += o
		served := float64(r.Ready) * capacity
		if served < r.Load {
			under++
			unserved += r.Load - served
		}
		if r.Ready > o {
			over++
		}
		total += r.Load
		if prev >= 0 && r.Desired != prev {
			m.ScaleEvents++
		}
		prev = r.Desired
		m.PeakHosts = max(m.PeakHosts, r.Desired)
	}
	h := step.Hours()
	m.InstanceHours = float64(hosts) * h
	m.OracleInstanceHours = float64(oracle) * h
	if oracle > 0 {
		m.CostRatio = float64(hosts) / float64(oracle)
	}
	if n := len(rows); n > 0 {
		m.UnderProvisionedShare = float64(under) / float64(n)
		m.OverProvisionedShare = float64(over) / float64(n)
	}
	if total > 0 {
		m.UnservedFraction = unserved / total
	}
	for _, p := range []*float64{&m.InstanceHours, &m.OracleInstanceHours, &m.CostRatio, &m.UnderProvisionedShare, &m.OverProvisionedShare, &m.UnservedFraction} {
		*p = round(*p, 6)
	}
	return m
}

func round(v float64, digits int) float64 {
	s := math.Pow(10, float64(digits))
	return math.Round(v*s) / s
}
