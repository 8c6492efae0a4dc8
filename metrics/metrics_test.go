package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/scheduler"
)

var t0 = time.Date(2025, 3, 28, 10, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry, *clock.Virtual) {
	t.Helper()
	reg := prometheus.NewRegistry()
	clk := clock.NewVirtual(t0)
	m, err := New(reg, clk)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg, clk
}

func ptr(v float64) *float64 { return &v }

func TestNewRefusesDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, nil); err == nil || !strings.Contains(err.Error(), "registering tide metrics") {
		t.Fatalf("second New = %v, want a registration error", err)
	}
}

func TestWinnerKind(t *testing.T) {
	tests := []struct{ winner, want string }{
		{"policy:business-hours", "policy"},
		{"schedule:office", "policy"},
		{"load", "load"},
		{"forecast", "forecast"},
		{"override", "override"},
		{"min", "min"},
		{"previous", "previous"},
		{"", "other"},
		{"something:new", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.winner, func(t *testing.T) {
			if got := WinnerKind(tt.winner); got != tt.want {
				t.Fatalf("WinnerKind(%q) = %q, want %q", tt.winner, got, tt.want)
			}
		})
	}
}

func TestObserveDecision(t *testing.T) {
	m, reg, _ := newMetrics(t)
	m.ObserveDecision(scheduler.Record{Role: "web", Desired: 6, Winner: "forecast", Load: ptr(420), Forecast: ptr(560)})
	m.ObserveDecision(scheduler.Record{Role: "web", Desired: 7, Winner: "policy:business-hours", Load: ptr(430), Forecast: ptr(580)})
	m.ObserveDecision(scheduler.Record{Role: "db", Desired: 2, Winner: "min"})
	m.SetHosts("web", 5, 2)
	m.SetHosts("db", 2, 0)
	want := `
# HELP tide_decisions_total Decisions by role and the kind of input that won: policy, load, forecast, override, min, previous or other.
# TYPE tide_decisions_total counter
tide_decisions_total{role="db",winner="min"} 1
tide_decisions_total{role="web",winner="forecast"} 1
tide_decisions_total{role="web",winner="policy"} 1
# HELP tide_role_desired_hosts Hosts the latest decision wants for the role.
# TYPE tide_role_desired_hosts gauge
tide_role_desired_hosts{role="db"} 2
tide_role_desired_hosts{role="web"} 7
# HELP tide_role_forecast_load Upper forecast of the load within the lead time that the decision used (absent without a forecast).
# TYPE tide_role_forecast_load gauge
tide_role_forecast_load{role="web"} 580
# HELP tide_role_load Latest load sample the decision used (absent while the metric is missing).
# TYPE tide_role_load gauge
tide_role_load{role="web"} 430
# HELP tide_role_pending_hosts Hosts of the role launched but not ready yet.
# TYPE tide_role_pending_hosts gauge
tide_role_pending_hosts{role="db"} 0
tide_role_pending_hosts{role="web"} 2
# HELP tide_role_ready_hosts Hosts of the role that are deployed and serving.
# TYPE tide_role_ready_hosts gauge
tide_role_ready_hosts{role="db"} 2
tide_role_ready_hosts{role="web"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tide_decisions_total", "tide_role_desired_hosts",
		"tide_role_forecast_load", "tide_role_load", "tide_role_pending_hosts", "tide_role_ready_hosts"); err != nil {
		t.Fatal(err)
	}

	// A frozen decision (load missing) removes the load and forecast
	// series instead of reporting zero.
	m.ObserveDecision(scheduler.Record{Role: "web", Desired: 7, Winner: "load", Frozen: true})
	if n := testutil.CollectAndCount(m.load); n != 0 {
		t.Errorf("tide_role_load has %d series after a frozen decision, want 0", n)
	}
	if n := testutil.CollectAndCount(m.forecast); n != 0 {
		t.Errorf("tide_role_forecast_load has %d series after a frozen decision, want 0", n)
	}

	m.ForgetRole("web")
	if got := testutil.ToFloat64(m.desired.WithLabelValues("db")); got != 2 {
		t.Errorf("db desired = %v after forgetting web", got)
	}
	if n := testutil.CollectAndCount(m.decisions); n != 1 {
		t.Errorf("decisions series after forgetting web = %d, want 1 (db)", n)
	}
}

func TestObserveReport(t *testing.T) {
	m, reg, _ := newMetrics(t)
	m.ObserveReport(deployer.Report{Hosts: []deployer.HostResult{
		{Label: "web-5", Role: "web", Action: deployer.ActionLaunched, Durations: deployer.Durations{LaunchToAddress: 12 * time.Second, AddressToSSH: 30 * time.Second, Deploy: 90 * time.Second}},
		{Label: "web-6", Role: "web", Action: deployer.ActionLaunched, Durations: deployer.Durations{LaunchToAddress: 8 * time.Second, AddressToSSH: 20 * time.Second, Deploy: 70 * time.Second}},
		{Label: "web-1", Role: "web", Action: deployer.ActionKept},
		{Label: "worker-3", Role: "worker", Action: deployer.ActionRemoved},
		{Label: "web-7", Role: "web", Action: deployer.ActionFailed, Kind: deployer.KindCapacity},
		{Label: "web-8", Role: "web", Action: deployer.ActionFailed, Err: &fleet.ThrottledError{Err: errors.New("slow down")}},
		{Label: "web-9", Role: "web", Action: deployer.ActionFailed},
	}})
	m.Failure("apply")
	m.ObserveDeploy("worker", 45*time.Second)
	want := `
# HELP tide_failures_total Host operations that failed, by kind (capacity, throttled, ssh-timeout, deploy, ...).
# TYPE tide_failures_total counter
tide_failures_total{kind="apply"} 1
tide_failures_total{kind="capacity"} 1
tide_failures_total{kind="other"} 1
tide_failures_total{kind="throttled"} 1
# HELP tide_launches_total Hosts launched and made ready.
# TYPE tide_launches_total counter
tide_launches_total{role="web"} 2
# HELP tide_terminations_total Hosts terminated.
# TYPE tide_terminations_total counter
tide_terminations_total{role="worker"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tide_failures_total", "tide_launches_total", "tide_terminations_total"); err != nil {
		t.Fatal(err)
	}
	// Histograms: count and sum per series.
	hist := map[string][2]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				key := mf.GetName()
				for _, l := range mt.GetLabel() {
					key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
				}
				hist[key] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
			}
		}
	}
	wantHist := map[string][2]float64{
		"tide_launch_duration_seconds,phase=address,role=web": {2, 20},
		"tide_launch_duration_seconds,phase=ssh,role=web":     {2, 50},
		"tide_launch_duration_seconds,phase=deploy,role=web":  {2, 160},
		"tide_launch_duration_seconds,phase=total,role=web":   {2, 230},
		"tide_deploy_duration_seconds,role=web":               {2, 160},
		"tide_deploy_duration_seconds,role=worker":            {1, 45},
	}
	for k, v := range wantHist {
		if hist[k] != v {
			t.Errorf("%s: count, sum = %v, want %v", k, hist[k], v)
		}
	}
	if len(hist) != len(wantHist) {
		t.Errorf("histogram series = %v, want %d", hist, len(wantHist))
	}
}

// fakeCloud takes a virtual time per call and one-shot errors.
type fakeCloud struct {
	clk  *clock.Virtual
	took time.Duration
	errs map[string]error
}

func (f *fakeCloud) call(op string) error {
	f.clk.Advance(f.took)
	err := f.errs[op]
	delete(f.errs, op)
	return err
}

func (f *fakeCloud) List(ctx context.Context, name string) ([]fleet.Instance, error) {
	if err := f.call("list"); err != nil {
		return nil, err
	}
	return []fleet.Instance{{ID: "i-1", Fleet: name}}, nil
}

func (f *fakeCloud) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	if err := f.call("launch"); err != nil {
		return fleet.Instance{}, err
	}
	return fleet.Instance{ID: "i-2", Label: spec.Label}, nil
}

func (f *fakeCloud) Terminate(ctx context.Context, id string) error { return f.call("terminate") }

func (f *fakeCloud) HostKeyFingerprints(ctx context.Context, id string) ([]string, error) {
	if err := f.call("host_keys"); err != nil {
		return nil, err
	}
	return []string{"SHA256:abc"}, nil
}

func TestCloudDecorator(t *testing.T) {
	m, reg, clk := newMetrics(t)
	inner := &fakeCloud{clk: clk, took: 250 * time.Millisecond, errs: map[string]error{
		"launch":    fmt.Errorf("launching web-5: %w", &fleet.InsufficientCapacityError{Type: "c6i.large", Zone: "eu-west-1a", Err: errors.New("InsufficientInstanceCapacity")}),
		"terminate": &fleet.NotFoundError{ID: "i-9"},
		"host_keys": context.DeadlineExceeded,
	}}
	c := m.Cloud(inner)
	keys := m.HostKeys(inner)
	ctx := context.Background()

	if got, err := c.List(ctx, "office"); err != nil || len(got) != 1 || got[0].Fleet != "office" {
		t.Fatalf("List = %v, %v", got, err)
	}
	_, err := c.Launch(ctx, fleet.LaunchSpec{Label: "web-5"})
	if !fleet.IsInsufficientCapacity(err) {
		t.Fatalf("Launch error %v lost its type through the decorator", err)
	}
	if got, err := c.Launch(ctx, fleet.LaunchSpec{Label: "web-5"}); err != nil || got.Label != "web-5" {
		t.Fatalf("second Launch = %v, %v", got, err)
	}
	if err := c.Terminate(ctx, "i-9"); !fleet.IsNotFound(err) {
		t.Fatalf("Terminate error %v lost its type", err)
	}
	if _, err := keys.HostKeyFingerprints(ctx, "i-2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("HostKeyFingerprints = %v", err)
	}
	want := `
# HELP tide_cloud_api_errors_total Cloud API calls that failed, by operation and kind.
# TYPE tide_cloud_api_errors_total counter
tide_cloud_api_errors_total{kind="canceled",op="host_keys"} 1
tide_cloud_api_errors_total{kind="capacity",op="launch"} 1
tide_cloud_api_errors_total{kind="not-found",op="terminate"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tide_cloud_api_errors_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tide_cloud_api_call_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = [2]float64{float64(mt.GetHistogram().GetSampleCount()), mt.GetHistogram().GetSampleSum()}
		}
	}
	wantDur := map[string][2]float64{"list": {1, 0.25}, "launch": {2, 0.5}, "terminate": {1, 0.25}, "host_keys": {1, 0.25}}
	if fmt.Sprint(got) != fmt.Sprint(wantDur) {
		t.Fatalf("call durations (count, sum) = %v, want %v", got, wantDur)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// startingFake is a cloud that starts stopped instances.
type startingFake struct{ *fakeCloud }

func (f startingFake) Start(ctx context.Context, id string) error { return f.call("start") }

// TestCloudDecoratorStarter: the wrapper starts instances (op "start")
// exactly when the cloud it wraps does, errors passing through typed.
func TestCloudDecoratorStarter(t *testing.T) {
	m, reg, clk := newMetrics(t)
	inner := &fakeCloud{clk: clk, took: time.Second, errs: map[string]error{"start": &fleet.NotFoundError{ID: "i-9"}}}
	if _, ok := m.Cloud(inner).(deployer.Starter); ok {
		t.Fatal("the wrapper of a cloud that cannot start instances is a Starter")
	}
	s, ok := m.Cloud(startingFake{inner}).(deployer.Starter)
	if !ok {
		t.Fatal("the wrapper of a Starter is no Starter")
	}
	if err := s.Start(context.Background(), "i-9"); !fleet.IsNotFound(err) {
		t.Fatalf("Start error %v lost its type", err)
	}
	if err := s.Start(context.Background(), "i-9"); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	want := `
# HELP tide_cloud_api_errors_total Cloud API calls that failed, by operation and kind.
# TYPE tide_cloud_api_errors_total counter
tide_cloud_api_errors_total{kind="not-found",op="start"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tide_cloud_api_errors_total"); err != nil {
		t.Fatal(err)
	}
}
