package fromconfig

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/api"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/loadgen"
	"github.com/tideops/tide/loadsource"
	"github.com/tideops/tide/loadsource/promql"
	"github.com/tideops/tide/trace"
)

// Options say what the sources share.
type Options struct {
	// Clock checks pushed samples' times. Default clock.Real{}.
	Clock clock.Clock
	// ServiceStart is the service-clock instant replays start from.
	// Default Clock.Now().
	ServiceStart time.Time
	// Pushed is reused, with its samples, when the service reloads its
	// schedule. Nil: Build makes one if a role takes pushed samples.
	Pushed *loadsource.Pushed
	// Logger receives the Prometheus sources' warnings. Default: none.
	Logger *slog.Logger
}

// Sources are the load sources of a schedule's load-driven roles.
type Sources struct {
	// ByRole holds each load-driven role's source; roles without a load
	// policy are absent.
	ByRole map[string]loadsource.Source
	// Backfill holds the sources that can give past load (Prometheus,
	// synthetic, trace), by role, to rebuild the predictor at start.
	Backfill map[string]loadsource.Backfiller
	// Pushed takes the samples pushed to the API for the roles whose source
	// is push; nil when none is.
	Pushed *loadsource.Pushed
}

// Build makes the sources of every load-driven role of s. Trace files are
// read now, relative to the schedule file's directory.
func Build(s *config.Schedule, o Options) (*Sources, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.ServiceStart.IsZero() {
		o.ServiceStart = o.Clock.Now()
	}
	out := &Sources{ByRole: map[string]loadsource.Source{}, Backfill: map[string]loadsource.Backfiller{}}
	clients := map[string]api.Client{}
	var pushRoles []string
	for _, r := range s.Roles {
		lp := r.Policies.Load
		if lp == nil {
			continue
		}
		src := lp.Source
		switch {
		case src.Prometheus != nil:
			c := clients[src.Prometheus.URL]
			if c == nil {
				var err error
				if c, err = promql.NewClient(src.Prometheus.URL); err != nil {
					return nil, fmt.Errorf("role %s: %w", r.Name, err)
				}
				clients[src.Prometheus.URL] = c
			}
			ps, err := promql.New(c, src.Prometheus.Query, promql.Options{Timeout: src.Prometheus.Timeout.D(), Logger: o.Logger})
			if err != nil {
				return nil, fmt.Errorf("role %s: %w", r.Name, err)
			}
			out.ByRole[r.Name], out.Backfill[r.Name] = ps, ps
		case src.Push:
			pushRoles = append(pushRoles, r.Name)
		case src.Synthetic != nil:
			rp, err := synthetic(r, src.Synthetic, o.ServiceStart)
			if err != nil {
				return nil, fmt.Errorf("role %s: %w", r.Name, err)
			}
			out.ByRole[r.Name], out.Backfill[r.Name] = rp, rp
		case src.Trace != nil:
			rp, err := replayTrace(s, src.Trace, o.ServiceStart)
			if err != nil {
				return nil, fmt.Errorf("role %s: %w", r.Name, err)
			}
			out.ByRole[r.Name], out.Backfill[r.Name] = rp, rp
		default:
			return nil, fmt.Errorf("role %s: the load policy has no source", r.Name)
		}
	}
	if len(pushRoles) > 0 {
		out.Pushed = o.Pushed
		if out.Pushed == nil {
			out.Pushed = loadsource.NewPushed(o.Clock, loadsource.PushedOptions{})
		}
		out.Pushed.SetRoles(pushRoles)
		for _, name := range pushRoles {
			out.ByRole[name] = out.Pushed.Role(name)
		}
	}
	return out, nil
}

// speedOf treats an unset speed as real time.
func speedOf(v float64) float64 {
	if v <= 0 {
		return 1
	}
	return v
}

// synthetic replays a loadgen profile. At real speed the load follows the
// service's clock (the profile at now). Faster, the replay starts at 07:00
// of the last working day (Monday to Friday) that began before
// serviceStart, in the time zone of the role's first cron window (UTC
// without one), so that a demonstration shows the morning rise within
// minutes.
func synthetic(r config.Role, sy *config.SyntheticSource, serviceStart time.Time) (*loadsource.Replay, error) {
	loc := time.UTC
	for _, w := range r.Policies.Schedule {
		if w.TimeZone != "" {
			l, err := time.LoadLocation(w.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("synthetic load: time zone of window %s: %w", w.Name, err)
			}
			loc = l
			break
		}
	}
	g, err := loadgen.New(sy.Profile, loadgen.Options{Seed: sy.Seed, Peak: sy.Peak, Location: loc})
	if err != nil {
		return nil, fmt.Errorf("synthetic load: %w", err)
	}
	speed := speedOf(sy.Speed)
	start := serviceStart
	if speed > 1 {
		start = MorningBefore(serviceStart, loc)
	}
	return loadsource.NewReplay(g.At, start, serviceStart, speed)
}

// MorningBefore is 07:00 local on the last Monday to Friday whose 07:00 is
// at or before t.
func MorningBefore(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	d := time.Date(lt.Year(), lt.Month(), lt.Day(), 7, 0, 0, 0, loc)
	for d.After(t) || d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = time.Date(d.Year(), d.Month(), d.Day()-1, 7, 0, 0, 0, loc)
	}
	return d
}

// replayTrace replays a trace file from its start, looping.
func replayTrace(s *config.Schedule, ts *config.TraceSource, serviceStart time.Time) (*loadsource.Replay, error) {
	path := ts.File
	if !filepath.IsAbs(path) && s.File != "" {
		path = filepath.Join(filepath.Dir(s.File), path)
	}
	tr, err := trace.ReadFile(path)
	if err != nil {
		return nil, err
	}
	load, err := loadsource.TraceLoad(tr, true)
	if err != nil {
		return nil, err
	}
	return loadsource.NewReplay(load, tr.Start(), serviceStart, speedOf(ts.Speed))
}
