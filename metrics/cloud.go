package metrics

import (
	"context"

	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
)

// Cloud wraps a cloud so that every call's latency lands in
// tide_cloud_api_call_duration_seconds{op} and every error in
// tide_cloud_api_errors_total{op,kind}, with kinds as deployer.Kind names
// them (capacity, throttled, not-found, canceled, other). Errors pass
// through unchanged, so the error contract of deployer.Cloud holds. The
// wrapper is a deployer.Starter (op "start") exactly when inner is one.
func (m *Metrics) Cloud(inner deployer.Cloud) deployer.Cloud {
	c := &cloud{m: m, inner: inner}
	if s, ok := inner.(deployer.Starter); ok {
		return &startingCloud{cloud: c, starter: s}
	}
	return c
}

// HostKeys wraps a host key source the same way (op "host_keys").
func (m *Metrics) HostKeys(inner deployer.HostKeys) deployer.HostKeys {
	return &hostKeys{m: m, inner: inner}
}

type cloud struct {
	m     *Metrics
	inner deployer.Cloud
}

var _ deployer.Cloud = (*cloud)(nil)

// timed runs fn and records its latency and error under op.
func (m *Metrics) timed(op string, fn func() error) error {
	start := m.clock.Now()
	err := fn()
	m.cloudDuration.WithLabelValues(op).Observe(m.clock.Now().Sub(start).Seconds())
	if err != nil {
		m.cloudErrors.WithLabelValues(op, deployer.Kind(err)).Inc()
	}
	return err
}

func (c *cloud) List(ctx context.Context, fleetName string) ([]fleet.Instance, error) {
	var out []fleet.Instance
	err := c.m.timed("list", func() (err error) {
		out, err = c.inner.List(ctx, fleetName)
		return err
	})
	return out, err
}

func (c *cloud) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	var out fleet.Instance
	err := c.m.timed("launch", func() (err error) {
		out, err = c.inner.Launch(ctx, spec)
		return err
	})
	return out, err
}

func (c *cloud) Terminate(ctx context.Context, id string) error {
	return c.m.timed("terminate", func() error { return c.inner.Terminate(ctx, id) })
}

// startingCloud is the wrapper of a cloud that starts stopped instances.
type startingCloud struct {
	*cloud
	starter deployer.Starter
}

var _ deployer.Starter = (*startingCloud)(nil)

func (c *startingCloud) Start(ctx context.Context, id string) error {
	return c.m.timed("start", func() error { return c.starter.Start(ctx, id) })
}

type hostKeys struct {
	m     *Metrics
	inner deployer.HostKeys
}

var _ deployer.HostKeys = (*hostKeys)(nil)

func (h *hostKeys) HostKeyFingerprints(ctx context.Context, id string) ([]string, error) {
	var out []string
	err := h.m.timed("host_keys", func() (err error) {
		out, err = h.inner.HostKeyFingerprints(ctx, id)
		return err
	})
	return out, err
}
