package metrics

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/scheduler"
)

// Metrics are tide's collectors. All methods are safe for concurrent use.
type Metrics struct {
	clock clock.Clock

	desired, ready, pending *prometheus.GaugeVec
	load, forecast          *prometheus.GaugeVec
	decisions               *prometheus.CounterVec
	launches, terminations  *prometheus.CounterVec
	failures                *prometheus.CounterVec
	launchDuration          *prometheus.HistogramVec
	deployDuration          *prometheus.HistogramVec
	cloudDuration           *prometheus.HistogramVec
	cloudErrors             *prometheus.CounterVec
}

// Launch phases of tide_launch_duration_seconds.
const (
	PhaseAddress = "address" // launch call to an address
	PhaseSSH     = "ssh"     // address to SSH answering
	PhaseDeploy  = "deploy"  // SSH to deployed and ready
	PhaseTotal   = "total"   // launch call to ready
)

// New builds the collectors and registers them with reg (clk times cloud
// calls; nil means the wall clock).
func New(reg prometheus.Registerer, clk clock.Clock) (*Metrics, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	role := []string{"role"}
	m := &Metrics{
		clock: clk,
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_role_desired_hosts",
			Help: "Hosts the latest decision wants for the role."}, role),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_role_ready_hosts",
			Help: "Hosts of the role that are deployed and serving."}, role),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_role_pending_hosts",
			Help: "Hosts of the role launched but not ready yet."}, role),
		load: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_role_load",
			Help: "Latest load sample the decision used (absent while the metric is missing)."}, role),
		forecast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_role_forecast_load",
			Help: "Upper forecast of the load within the lead time that the decision used (absent without a forecast)."}, role),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_decisions_total",
			Help: "Decisions by role and the kind of input that won: policy, load, forecast, override, min, previous or other."}, []string{"role", "winner"}),
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_launches_total",
			Help: "Hosts launched and made ready."}, role),
		terminations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_terminations_total",
			Help: "Hosts terminated."}, role),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_failures_total",
			Help: "Host operations that failed, by kind (capacity, throttled, ssh-timeout, deploy, ...)."}, []string{"kind"}),
		launchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tide_launch_duration_seconds",
			Help:    "Duration of each phase of a launch: address, ssh, deploy, and the total.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}, []string{"role", "phase"}),
		deployDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tide_deploy_duration_seconds",
			Help:    "Duration of deploying the role's applications to one host.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}, role),
		cloudDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tide_cloud_api_call_duration_seconds",
			Help:    "Latency of cloud API calls, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10)}, []string{"op"}),
		cloudErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_cloud_api_errors_total",
			Help: "Cloud API calls that failed, by operation and kind."}, []string{"op", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.desired, m.ready, m.pending, m.load, m.forecast, m.decisions,
		m.launches, m.terminations, m.failures, m.launchDuration, m.deployDuration, m.cloudDuration, m.cloudErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering tide metrics: %w", err)
		}
	}
	return m, nil
}

// WinnerKind normalises a record's winner to the kind of input:
// "policy:business-hours" is policy; load, forecast, override, min and
// previous stay; anything else is other.
func WinnerKind(winner string) string {
	kind, _, _ := strings.Cut(winner, ":")
	switch kind {
	case "policy", "schedule", "window":
		return "policy"
	case "load", "forecast", "override", "min", "previous":
		return kind
	}
	return "other"
}

// ObserveDecision records one decision: the desired count, the load and
// forecast it used, and the winning input. The service hooks it to the
// loop's Recorder.
func (m *Metrics) ObserveDecision(rec scheduler.Record) {
	m.desired.WithLabelValues(rec.Role).Set(float64(rec.Desired))
	m.decisions.WithLabelValues(rec.Role, WinnerKind(rec.Winner)).Inc()
	if rec.Load != nil {
		m.load.WithLabelValues(rec.Role).Set(*rec.Load)
	} else {
		// A missing metric is no series, never a zero.
		m.load.DeleteLabelValues(rec.Role)
	}
	if rec.Forecast != nil {
		m.forecast.WithLabelValues(rec.Role).Set(*rec.Forecast)
	} else {
		m.forecast.DeleteLabelValues(rec.Role)
	}
}

// SetHosts records a role's ready and pending hosts from a fleet listing.
func (m *Metrics) SetHosts(role string, ready, pending int) {
	m.ready.WithLabelValues(role).Set(float64(ready))
	m.pending.WithLabelValues(role).Set(float64(pending))
}

// ForgetRole drops a role's series (after a reload removed the role).
func (m *Metrics) ForgetRole(role string) {
	for _, g := range []*prometheus.GaugeVec{m.desired, m.ready, m.pending, m.load, m.forecast} {
		g.DeleteLabelValues(role)
	}
	m.decisions.DeletePartialMatch(prometheus.Labels{"role": role})
}

// ObserveReport records what one reconcile did: launches with their phase
// durations, terminations, and failures by kind.
func (m *Metrics) ObserveReport(r deployer.Report) {
	for _, h := range r.Hosts {
		switch h.Action {
		case deployer.ActionLaunched:
			m.launches.WithLabelValues(h.Role).Inc()
			d := h.Durations
			m.launchDuration.WithLabelValues(h.Role, PhaseAddress).Observe(d.LaunchToAddress.Seconds())
			m.launchDuration.WithLabelValues(h.Role, PhaseSSH).Observe(d.AddressToSSH.Seconds())
			m.launchDuration.WithLabelValues(h.Role, PhaseDeploy).Observe(d.Deploy.Seconds())
			m.launchDuration.WithLabelValues(h.Role, PhaseTotal).Observe(d.Total().Seconds())
			m.deployDuration.WithLabelValues(h.Role).Observe(d.Deploy.Seconds())
		case deployer.ActionRemoved:
			m.terminations.WithLabelValues(h.Role).Inc()
		case deployer.ActionFailed:
			kind := h.Kind
			if kind == "" {
				kind = deployer.Kind(h.Err)
			}
			if kind == "" {
				kind = deployer.KindOther
			}
			m.failures.WithLabelValues(kind).Inc()
		}
	}
}

// ObserveDeploy records a deploy of a revision to one host of a role
// (outside a launch).
func (m *Metrics) ObserveDeploy(role string, d time.Duration) {
	m.deployDuration.WithLabelValues(role).Observe(d.Seconds())
}

// Failure counts a failure of a kind that happened outside a reconcile
// report (for example "apply" or "load").
func (m *Metrics) Failure(kind string) {
	m.failures.WithLabelValues(kind).Inc()
}
