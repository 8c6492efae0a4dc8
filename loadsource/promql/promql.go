package promql

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/tideops/tide/loadsource"
	"github.com/tideops/tide/scheduler"
)

// maxPoints is how many steps one range query asks for; Prometheus refuses
// more than 11000 points per series.
const maxPoints = 10000

// querier is the part of the Prometheus HTTP API that Source uses, with
// client_golang's own signatures.
type querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
	QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

var _ querier = v1.API(nil)

// Options tune a Source. The zero value gives the defaults.
type Options struct {
	// Timeout bounds each query (one HTTP request, and the server's
	// evaluation). Default 10s.
	Timeout time.Duration
	// Logger receives the server's warnings about a query. Default: none.
	Logger *slog.Logger
}

// Source is one role's load from a PromQL query. It is safe for
// concurrent use.
type Source struct {
	q       querier
	query   string
	timeout time.Duration
	log     *slog.Logger
}

var (
	_ loadsource.Source     = (*Source)(nil)
	_ loadsource.Backfiller = (*Source)(nil)
)

// NewClient returns a client for the Prometheus server at address
// ("http://127.0.0.1:9090"), to share among the roles' Sources.
func NewClient(address string) (api.Client, error) {
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", address, err)
	}
	return c, nil
}

// New returns a Source that evaluates query on the server client talks to.
func New(client api.Client, query string, o Options) (*Source, error) {
	if client == nil {
		return nil, fmt.Errorf("prometheus load source: a client is required")
	}
	return newSource(v1.NewAPI(client), query, o)
}

func newSource(q querier, query string, o Options) (*Source, error) {
	if query == "" {
		return nil, fmt.Errorf("prometheus load source: a query is required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{q: q, query: query, timeout: o.Timeout, log: o.Logger}, nil
}

// Query returns the PromQL query.
func (s *Source) Query() string { return s.query }

// Latest evaluates the query at now. The sample's time is the result's
// timestamp (the evaluation instant). Every error matches
// loadsource.ErrNoData and wraps its cause (a *v1.Error for a query the
// server rejected, a context error for a timeout, a network error).
func (s *Source) Latest(ctx context.Context, now time.Time) (scheduler.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, warnings, _, err := s.q.Query(ctx, s.query, now, v1.WithTimeout(s.timeout))
	if err != nil {
		return scheduler.Sample{}, fmt.Errorf("%w: query %q: %w", loadsource.ErrNoData, s.query, err)
	}
	s.warn(warnings)
	smp, err := sampleOf(v)
	if err != nil {
		return scheduler.Sample{}, fmt.Errorf("%w: query %q: %s", loadsource.ErrNoData, s.query, err)
	}
	return smp, nil
}

// Range evaluates the query every step from from to to, in as many range
// queries as Prometheus's point limit needs, each with the timeout. It
// leaves out the instants without a usable value (NaN, infinite, negative)
// and fails with an error matching loadsource.ErrNoData when the query has
// no series at all or several.
func (s *Source) Range(ctx context.Context, from, to time.Time, step time.Duration) ([]scheduler.Sample, error) {
	if step <= 0 {
		return nil, fmt.Errorf("prometheus range: step must be positive, got %s", step)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("prometheus range: end %s is before start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	var out []scheduler.Sample
	for start := from; !start.After(to); start = start.Add(maxPoints * step) {
		end := start.Add((maxPoints - 1) * step)
		if end.After(to) {
			end = to
		}
		part, err := s.rangeOnce(ctx, v1.Range{Start: start, End: end, Step: step})
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: query %q has no values between %s and %s", loadsource.ErrNoData, s.query,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return out, nil
}

func (s *Source) rangeOnce(ctx context.Context, r v1.Range) ([]scheduler.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, warnings, _, err := s.q.QueryRange(ctx, s.query, r, v1.WithTimeout(s.timeout))
	if err != nil {
		return nil, fmt.Errorf("%w: range query %q: %w", loadsource.ErrNoData, s.query, err)
	}
	s.warn(warnings)
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: range query %q gave a %s, want a range of one series", loadsource.ErrNoData, s.query, typeName(v))
	}
	switch len(m) {
	case 0:
		return nil, nil // no series in this chunk; Range judges the whole
	case 1:
	default:
		return nil, fmt.Errorf("%w: range query %q gave %d series, want one (aggregate it with sum or max)", loadsource.ErrNoData, s.query, len(m))
	}
	out := make([]scheduler.Sample, 0, len(m[0].Values))
	for _, p := range m[0].Values {
		if usable(float64(p.Value)) {
			out = append(out, scheduler.Sample{At: p.Timestamp.Time().UTC(), Value: float64(p.Value)})
		}
	}
	return out, nil
}

func (s *Source) warn(w v1.Warnings) {
	if len(w) > 0 {
		s.log.Warn("prometheus query warnings", "query", s.query, "warnings", []string(w))
	}
}

// sampleOf reads the one number of an instant query's result.
func sampleOf(v model.Value) (scheduler.Sample, error) {
	var smp scheduler.Sample
	switch r := v.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return smp, fmt.Errorf("no series (metric absent or stale)")
		case 1:
		default:
			return smp, fmt.Errorf("%d series, want one (aggregate it with sum or max)", len(r))
		}
		smp = scheduler.Sample{At: r[0].Timestamp.Time().UTC(), Value: float64(r[0].Value)}
	case *model.Scalar:
		smp = scheduler.Sample{At: r.Timestamp.Time().UTC(), Value: float64(r.Value)}
	default:
		return smp, fmt.Errorf("result is a %s, want an instant vector of one series or a scalar", typeName(v))
	}
	if !usable(smp.Value) {
		return scheduler.Sample{}, fmt.Errorf("value %g is not a load", smp.Value)
	}
	return smp, nil
}

// usable reports whether v can be a load: finite and not negative.
func usable(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0
}

func typeName(v model.Value) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().String()
}
