package loadsource

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/trace"
)

// Replay plays a load back faster than real time, for demonstrations: with
// speed 60 an office day passes in 24 minutes.
//
// The instant the service lives in (now, on its clock) maps to an instant
// of the load (trace time):
//
//	traceTime = traceStart + (now - serviceStart) * speed
//
// Latest(now) returns the load at traceTime stamped At = now, the wall
// clock instant it stands for, so the scheduler's staleness checks and the
// decision history stay on the service's clock. The predictor then sees a
// compressed week: its daily season arrives every 24h/speed of wall time.
type Replay struct {
	load         func(time.Time) float64
	traceStart   time.Time
	serviceStart time.Time
	speed        float64
}

var (
	_ Source     = (*Replay)(nil)
	_ Backfiller = (*Replay)(nil)
)

// NewReplay returns a replay of load (a loadgen Generator's At, or
// TraceLoad of a trace) that maps serviceStart to traceStart and runs speed
// times faster than the clock. A load returning NaN means no data there.
func NewReplay(load func(time.Time) float64, traceStart, serviceStart time.Time, speed float64) (*Replay, error) {
	if load == nil {
		return nil, fmt.Errorf("replay: a load function is required")
	}
	if !(speed > 0) || math.IsInf(speed, 0) {
		return nil, fmt.Errorf("replay: speed must be a positive number, got %g", speed)
	}
	return &Replay{load: load, traceStart: traceStart, serviceStart: serviceStart, speed: speed}, nil
}

// TraceTime maps an instant of the service's clock to the load's time. ok
// is false when the result does not fit in a time.Duration from traceStart.
func (r *Replay) TraceTime(now time.Time) (t time.Time, ok bool) {
	d := float64(now.Sub(r.serviceStart)) * r.speed
	if math.Abs(d) >= math.MaxInt64 {
		return time.Time{}, false
	}
	return r.traceStart.Add(time.Duration(d)), true
}

// Latest returns the load at TraceTime(now), stamped At = now.
func (r *Replay) Latest(_ context.Context, now time.Time) (scheduler.Sample, error) {
	tt, ok := r.TraceTime(now)
	if !ok {
		return scheduler.Sample{}, fmt.Errorf("%w: replay instant for %s is out of range", ErrNoData, now.Format(time.RFC3339))
	}
	v := r.load(tt)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return scheduler.Sample{}, fmt.Errorf("%w: replayed load at %s is %g", ErrNoData, tt.Format(time.RFC3339), v)
	}
	return scheduler.Sample{At: now, Value: v}, nil
}

// Range returns Latest at from, from+step, ... up to to, leaving out the
// instants without data: the history a service started at from would have
// seen (instants before serviceStart map before traceStart).
func (r *Replay) Range(ctx context.Context, from, to time.Time, step time.Duration) ([]scheduler.Sample, error) {
	if step <= 0 {
		return nil, fmt.Errorf("replay range: step must be positive, got %s", step)
	}
	var out []scheduler.Sample
	for t := from; !t.After(to); t = t.Add(step) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s, err := r.Latest(ctx, t); err == nil {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: replay has no load between %s and %s", ErrNoData, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return out, nil
}

// TraceLoad turns a trace into a load function: at t it returns the value
// of the point whose step holds t, and NaN in a gap or outside the trace.
// With loop set, times outside the trace wrap around into it (a one-week
// trace replays week after week).
func TraceLoad(tr *trace.Trace, loop bool) (func(time.Time) float64, error) {
	if tr == nil || len(tr.Points) == 0 {
		return nil, fmt.Errorf("trace load: %w", trace.ErrEmpty)
	}
	if tr.Step <= 0 {
		return nil, fmt.Errorf("trace load %s: step must be positive, got %s", tr.Name, tr.Step)
	}
	pts := tr.Points
	start, end := tr.Start(), tr.End()
	span := end.Sub(start)
	return func(t time.Time) float64 {
		if loop {
			off := t.Sub(start) % span
			if off < 0 {
				off += span
			}
			t = start.Add(off)
		}
		if t.Before(start) || !t.Before(end) {
			return math.NaN()
		}
		// The last point at or before t.
		i, found := slices.BinarySearchFunc(pts, t, func(p trace.Point, t time.Time) int { return p.At.Compare(t) })
		if !found {
			i--
		}
		if t.Sub(pts[i].At) >= tr.Step {
			return math.NaN() // in a gap
		}
		return pts[i].Value
	}, nil
}

func sortSamples(s []scheduler.Sample) {
	slices.SortStableFunc(s, func(a, b scheduler.Sample) int { return a.At.Compare(b.At) })
}
