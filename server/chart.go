package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Point is one value of a chart series.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// Chart is what a role's chart shows: over the past hours, the load, the
// forecast the decisions used, the desired and the ready counts; ahead of
// now, the forecast with its band.
//
// Where each series comes from: load from History.Samples (the highest
// sample per pixel-sized bucket, so peaks survive); desired and the
// forecast used from History.Decisions (Record.Desired, Record.Forecast);
// ready from snapshots of the fleet the server keeps in memory (every
// GET /api/fleet and every SampleInterval while Run runs), so the ready
// line starts when the server started; the forecast ahead from Forecasts.
type Chart struct {
	Role string    `json:"role"`
	From time.Time `json:"from"`
	Now  time.Time `json:"now"`
	// Capacity is the load one host carries: the page draws host counts
	// on a second axis scaled by it, so desired x capacity meets the load.
	Capacity     float64   `json:"capacity,omitempty"`
	Load         []Point   `json:"load"`
	ForecastUsed []Point   `json:"forecast_used"`
	Desired      []Point   `json:"desired"`
	Ready        []Point   `json:"ready"`
	Forecast     *Forecast `json:"forecast,omitempty"`
	// ForecastNote says why there is no forecast ahead.
	ForecastNote string `json:"forecast_note,omitempty"`
}

// chartPoints bounds each past series, about one point per pixel.
const chartPoints = 600

func (s *Server) getChart(w http.ResponseWriter, r *http.Request) error {
	info, err := s.roleInfo(r.PathValue("role"), http.StatusNotFound)
	if err != nil {
		return err
	}
	hours := 24
	if v := r.URL.Query().Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 168 {
			return errorf(http.StatusBadRequest, "hours must be a whole number from 1 to 168, not %q", v)
		}
		hours = n
	}
	now := s.o.Clock.Now()
	from := now.Add(-time.Duration(hours) * time.Hour)
	c := Chart{Role: info.Name, From: from, Now: now, Capacity: info.Capacity,
		Load: []Point{}, ForecastUsed: []Point{}, Desired: []Point{}, Ready: s.ready.since(info.Name, from)}
	if s.o.History != nil {
		samples, err := s.o.History.Samples(info.Name, from)
		if err != nil {
			return fmt.Errorf("reading load samples of %s: %w", info.Name, err)
		}
		load := make([]Point, 0, len(samples))
		for _, sm := range samples {
			load = append(load, Point{sm.At, sm.Value})
		}
		c.Load = downsample(load, from, now, chartPoints)
		recs, err := s.o.History.Decisions(info.Name, from, 0)
		if err != nil {
			return fmt.Errorf("reading decisions of %s: %w", info.Name, err)
		}
		slices.Reverse(recs) // oldest first
		var used []Point
		for i, rec := range recs {
			if i == 0 || i == len(recs)-1 || rec.Desired != recs[i-1].Desired {
				c.Desired = append(c.Desired, Point{rec.At, float64(rec.Desired)})
			}
			if rec.Forecast != nil {
				used = append(used, Point{rec.At, *rec.Forecast})
			}
		}
		c.ForecastUsed = downsample(used, from, now, chartPoints)
	}
	if s.o.Forecasts != nil && info.LoadDriven {
		f, err := s.o.Forecasts.Forecast(info.Name, now)
		if err != nil {
			c.ForecastNote = err.Error()
		} else {
			if f.Points == nil {
				f.Points = []ForecastPoint{}
			}
			c.Forecast = &f
		}
	}
	return ok(w, c)
}

// downsample keeps at most about n points: the highest of each of n equal
// buckets between from and to, so that peaks survive.
func downsample(ps []Point, from, to time.Time, n int) []Point {
	if len(ps) <= n || !to.After(from) {
		if ps == nil {
			return []Point{}
		}
		return ps
	}
	width := to.Sub(from) / time.Duration(n)
	if width <= 0 {
		width = 1
	}
	out := make([]Point, 0, n+1)
	bucket := int64(-1)
	for _, p := range ps {
		b := int64(p.At.Sub(from) / width)
		if b != bucket || len(out) == 0 {
			out = append(out, p)
			bucket = b
			continue
		}
		if last := &out[len(out)-1]; p.Value > last.Value {
			*last = p
		}
	}
	return out
}

// sampleFleet records the ready count of every role from one fleet listing.
func (s *Server) sampleFleet(ctx context.Context) {
	if s.o.Fleet == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(s.o.SampleInterval, 10*time.Second))
	defer cancel()
	hosts, err := s.o.Fleet.Hosts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("sampling the fleet failed", "err", err)
		}
		return
	}
	s.ready.observe(s.o.Clock.Now(), s.o.Schedule.Roles(), hosts)
}

// readyHistory keeps each role's ready count over time, in memory: a
// point when the count changes and at most one a minute otherwise.
type readyHistory struct {
	keep   time.Duration
	mu     sync.Mutex
	byRole map[string][]Point
}

func newReadyHistory(keep time.Duration) *readyHistory {
	return &readyHistory{keep: keep, byRole: map[string][]Point{}}
}

func (h *readyHistory) observe(now time.Time, roles []RoleInfo, hosts []Host) {
	counts := map[string]int{}
	for _, r := range roles {
		counts[r.Name] = 0
	}
	for _, host := range hosts {
		if _, known := counts[host.Role]; known && host.Ready {
			counts[host.Role]++
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cut := now.Add(-h.keep)
	for role, n := range counts {
		ps := h.byRole[role]
		i := 0
		for i < len(ps) && ps[i].At.Before(cut) {
			i++
		}
		ps = ps[i:]
		if k := len(ps); k > 0 && (now.Before(ps[k-1].At) || (ps[k-1].Value == float64(n) && now.Sub(ps[k-1].At) < time.Minute)) {
			h.byRole[role] = ps
			continue
		}
		h.byRole[role] = append(ps, Point{now, float64(n)})
	}
}

func (h *readyHistory) since(role string, from time.Time) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Point{}
	for _, p := range h.byRole[role] {
		if !p.At.Before(from) {
			out = append(out, p)
		}
	}
	return out
}
