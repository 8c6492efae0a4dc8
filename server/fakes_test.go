package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/scheduler"
)

// world is a stateful in-memory stand-in for the service: roles, a fleet,
// history, overrides, and decisions that follow the active override the way
// the scheduler's do (a pin wins; a floor wins when it is higher).
type world struct {
	clk   clock.Clock
	start time.Time

	mu        sync.Mutex
	roles     []RoleInfo
	base      map[string]int // desired count without override
	overrides map[string]scheduler.Override
	hosts     []Host
	samples   map[string][]scheduler.Sample
	history   []scheduler.Record // oldest first
	applyErr  error
	configErr error
	weekStart time.Time // when set, the week starts here instead of now

	// releases is each application's history, oldest first, and the index
	// of its current revision; onHostsOnly are releases the history lost
	// that a host of the app still holds, by label.
	releases    map[string]*fakeHistory
	onHostsOnly map[string]map[string]string
	rollbacks   [][2]string // app, to as asked
	replaces    []ReplaceRequest

	kicks    atomic.Int32
	applies  atomic.Int32
	deploys  chan [2]string
	failNext error // one-shot error for the next store call
}

// fakeHistory is an application's history in a world.
type fakeHistory struct {
	revs []string
	cur  int
}

func newWorld(clk clock.Clock) *world {
	now := clk.Now()
	w := &world{clk: clk, start: now, overrides: map[string]scheduler.Override{},
		samples: map[string][]scheduler.Sample{}, deploys: make(chan [2]string, 4),
		roles: []RoleInfo{
			{Name: "db", Min: 2, Max: 2, InstanceType: "m6i.xlarge", Zones: []string{"eu-west-1a", "eu-west-1b"}, Apps: []string{"postgres"}, Stateful: true},
			{Name: "web", Min: 2, Max: 12, InstanceType: "c6i.large", Zones: []string{"eu-west-1a", "eu-west-1b"}, LoadDriven: true, Capacity: 100, Apps: []string{"dms-web"}},
			{Name: "worker", Min: 1, Max: 8, InstanceType: "c6i.xlarge", Zones: []string{"eu-west-1a"}, Apps: []string{"dms-worker"}},
		},
		base: map[string]int{"db": 2, "web": 4, "worker": 2},
		// dms-web was rolled back from v1.5.0 to v1.4.2; postgres has
		// never changed; web-1 still holds v1.3.7, gone from the history.
		releases: map[string]*fakeHistory{
			"dms-web":    {revs: []string{"v1.4.0", "v1.4.1", "v1.4.2", "v1.5.0"}, cur: 2},
			"dms-worker": {revs: []string{"v1.4.1", "v1.4.2"}, cur: 1},
			"postgres":   {revs: []string{"16.2"}, cur: 0},
		},
		onHostsOnly: map[string]map[string]string{"dms-web": {"web-1": "v1.3.7"}},
	}
	// A day of web load: office hours on a base, sampled every 5 minutes.
	for t := now.Add(-24 * time.Hour).Truncate(5 * time.Minute); !t.After(now); t = t.Add(5 * time.Minute) {
		w.samples["web"] = append(w.samples["web"], scheduler.Sample{At: t, Value: webLoad(t)})
	}
	// Decisions every 15 minutes for the day.
	prev := map[string]int{}
	for t := now.Add(-24 * time.Hour).Truncate(15 * time.Minute); !t.After(now); t = t.Add(15 * time.Minute) {
		for _, r := range w.roles {
			rec := w.decide(r, t, nil)
			if p, ok := prev[r.Name]; ok {
				rec.Previous = p
			}
			prev[r.Name] = rec.Desired
			w.history = append(w.history, rec)
		}
	}
	zones := []string{"eu-west-1a", "eu-west-1b"}
	n := 0
	for _, r := range w.roles {
		for i := 1; i <= w.base[r.Name]; i++ {
			n++
			h := Host{Label: fleet.Label(r.Name, i), Role: r.Name, InstanceID: fmt.Sprintf("i-0%07x", 0xa11ce+n*7919),
				Address: fmt.Sprintf("10.0.%d.%d", i%2, 10+n), Zone: zones[i%2], State: fleet.StateRunning,
				Revision: "v1.4.2", Processes: 4, Ready: true, LaunchedAt: now.Add(-time.Duration(n*47) * time.Minute)}
			if r.Name == "worker" && i == 2 {
				h.State, h.Ready, h.Processes, h.Revision = fleet.StatePending, false, 0, ""
			}
			w.hosts = append(w.hosts, h)
		}
	}
	return w
}

// webLoad is a working-day curve: about 120 at night, 520 at midday.
func webLoad(t time.Time) float64 {
	h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60
	office := math.Max(0, math.Sin((h-7)/11*math.Pi))
	return 120 + 400*office + 25*math.Sin(float64(t.Unix()/300))
}

// decide mirrors the scheduler's combination of a base count and an override.
func (w *world) decide(r RoleInfo, at time.Time, ov *scheduler.Override) scheduler.Record {
	base := w.base[r.Name]
	rec := scheduler.Record{Role: r.Name, At: at, Previous: base, Desired: base, Winner: "policy:business-hours"}
	inputs := []scheduler.Input{{Source: "policy:business-hours", Count: base, Detail: scheduler.Text("weekdays 07:00-19:00 Europe/Paris: " + fmt.Sprint(base) + " hosts")}}
	if r.LoadDriven {
		load := webLoad(at)
		need := int(math.Ceil(load * 1.2 / r.Capacity))
		inputs = append(inputs, scheduler.Input{Source: "load", Count: need, Detail: scheduler.Text(fmt.Sprintf("load %.4g + 20%% headroom at %.4g per host", load, r.Capacity))})
		rec.Load = &load
		up := webLoad(at.Add(20*time.Minute)) * 1.15
		rec.Forecast = &up
		if need > base {
			rec.Desired, rec.Winner = need, "load"
		}
	}
	inputs = append(inputs, scheduler.Input{Source: "min", Count: r.Min, Detail: scheduler.Text("role minimum")})
	if ov != nil && ov.Active(at) && (ov.Kind == scheduler.Pin || ov.Count > rec.Desired) {
		inputs = append([]scheduler.Input{{Source: "override", Count: ov.Count, Detail: scheduler.Text(fmt.Sprintf("%s %d: %q", ov.Kind, ov.Count, ov.Reason))}}, inputs...)
		rec.Desired, rec.Winner = ov.Count, "override"
		if ov.Kind == scheduler.Pin {
			rec.Steps = append(rec.Steps, scheduler.Step{Kind: "pin", From: ov.Count, To: ov.Count, Detail: scheduler.Text("pinned by an operator")})
		}
	}
	for i := range inputs {
		inputs[i].Won = inputs[i].Source == rec.Winner
	}
	rec.Inputs = inputs
	return rec
}

// Last implements Decisions: the decision now, given the active override.
func (w *world) Last() ([]scheduler.Record, time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clk.Now()
	var out []scheduler.Record
	for _, r := range w.roles {
		var ov *scheduler.Override
		if o, ok := w.overrides[r.Name]; ok {
			ov = &o
		}
		out = append(out, w.decide(r, now, ov))
	}
	return out, now, w.applyErr
}

func (w *world) Decisions(role string, since time.Time, limit int) ([]scheduler.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.takeFailure(); err != nil {
		return nil, err
	}
	var out []scheduler.Record
	for i := len(w.history) - 1; i >= 0; i-- {
		rec := w.history[i]
		if (role == "" || rec.Role == role) && !rec.At.Before(since) {
			out = append(out, rec)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (w *world) Samples(role string, since time.Time) ([]scheduler.Sample, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []scheduler.Sample
	for _, s := range w.samples[role] {
		if !s.At.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (w *world) takeFailure() error {
	err := w.failNext
	w.failNext = nil
	return err
}

func (w *world) PutOverride(o scheduler.Override) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.takeFailure(); err != nil {
		return err
	}
	w.overrides[o.Role] = o
	return nil
}

func (w *world) Overrides(now time.Time) ([]scheduler.Override, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []scheduler.Override
	for _, o := range w.overrides {
		if o.Active(now) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out, nil
}

func (w *world) DeleteOverride(role string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.overrides[role]
	delete(w.overrides, role)
	return ok, nil
}

func (w *world) Hosts(ctx context.Context) ([]Host, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Host(nil), w.hosts...), nil
}

func (w *world) Forecast(role string, now time.Time) (Forecast, error) {
	if role != "web" {
		return Forecast{}, errors.New("insufficient history for a forecast")
	}
	f := Forecast{Model: "mstl-ets", Quantile: 0.95}
	for t := now.Truncate(15 * time.Minute).Add(15 * time.Minute); t.Before(now.Add(3 * time.Hour)); t = t.Add(15 * time.Minute) {
		p := webLoad(t)
		spread := 0.08 + 0.05*t.Sub(now).Hours()
		f.Points = append(f.Points, ForecastPoint{At: t, Point: p, Lower: p * (1 - spread), Upper: p * (1 + spread)})
	}
	return f, nil
}

func (w *world) Week(now time.Time) (WeekView, error) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		loc = time.UTC
	}
	wk := WeekView{Zone: loc.String(), Roles: []string{"db", "web", "worker"}}
	w.mu.Lock()
	if !w.weekStart.IsZero() {
		now = w.weekStart
	}
	w.mu.Unlock()
	start := now.In(loc).Truncate(time.Hour)
	prevName, prevOff := start.Zone()
	for h := 0; h < 7*24; h++ {
		at := start.Add(time.Duration(h) * time.Hour).In(loc)
		dst := ""
		if name, off := at.Zone(); off != prevOff {
			dst = fmt.Sprintf("%s -> %s (UTC%+d -> UTC%+d)", prevName, name, prevOff/3600, off/3600)
			prevName, prevOff = name, off
		}
		office := at.Weekday() != time.Saturday && at.Weekday() != time.Sunday && at.Hour() >= 7 && at.Hour() < 19
		web, worker := 2, 1
		if office {
			web, worker = 4, 3
		}
		if at.Weekday() == time.Sunday && at.Hour() >= 1 && at.Hour() < 5 {
			worker = 8 // the weekly batch
		}
		wk.Hours = append(wk.Hours, WeekHour{At: at, Counts: map[string]int{"db": 2, "web": web, "worker": worker}, DST: dst})
	}
	return wk, nil
}

func (w *world) Roles() []RoleInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]RoleInfo(nil), w.roles...)
}

func (w *world) Apply(ctx context.Context) error {
	w.applies.Add(1)
	return nil
}

func (w *world) Deploy(ctx context.Context, app, revision string) error {
	select {
	case w.deploys <- [2]string{app, revision}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if revision == "bad" {
		return errors.New("deploying dms-web bad: revision not found")
	}
	return nil
}

// Rollback moves the app's current revision as tide does: within the
// history, or onto a new branch for a release only hosts hold. "bad" fails.
func (w *world) Rollback(ctx context.Context, app, to string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rollbacks = append(w.rollbacks, [2]string{app, to})
	if to == "bad" {
		return errors.New("rollout refused before any host was changed: web-1 has no release bad")
	}
	h := w.releases[app]
	switch i := slices.Index(h.revs, to); {
	case to == "" && h.cur == 0:
		return fmt.Errorf("no earlier release of %s recorded", app)
	case to == "":
		h.cur--
	case i >= 0:
		h.cur = i
	default:
		h.revs = append(h.revs[:h.cur+1:h.cur+1], to)
		h.cur = len(h.revs) - 1
	}
	for _, r := range w.roles {
		if slices.Contains(r.Apps, app) {
			for i := range w.hosts {
				if w.hosts[i].Role == r.Name && w.hosts[i].Revision != "" {
					w.hosts[i].Revision = h.revs[h.cur]
				}
			}
		}
	}
	return nil
}

// Releases shows an app's fake history the way tide rollback --list does:
// every running host of its roles holds the whole history up to current.
func (w *world) Releases(ctx context.Context, app string) (ReleaseView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.takeFailure(); err != nil {
		return ReleaseView{}, err
	}
	h := w.releases[app]
	v := ReleaseView{App: app, Current: h.revs[h.cur]}
	if h.cur > 0 {
		v.Rollback = h.revs[h.cur-1]
	}
	var labels []string
	for _, r := range w.roles {
		if !slices.Contains(r.Apps, app) {
			continue
		}
		for _, x := range w.hosts {
			if x.Role != r.Name || x.State != fleet.StateRunning {
				continue
			}
			hr := HostReleases{Label: x.Label, Role: x.Role, Answered: true, Current: v.Current}
			if old, ok := w.onHostsOnly[app][x.Label]; ok {
				hr.Releases = append(hr.Releases, old)
			}
			hr.Releases = append(hr.Releases, h.revs[:h.cur+1]...)
			v.Hosts = append(v.Hosts, hr)
			labels = append(labels, x.Label)
		}
	}
	for i, rev := range h.revs {
		row := ReleaseRow{Revision: rev, State: ReleaseEarlier}
		switch {
		case i == h.cur:
			row.State = ReleaseCurrent
		case i > h.cur:
			row.State = ReleaseRolledBackFrom
		}
		if i <= h.cur {
			row.Hosts = labels
		}
		v.History = append(v.History, row)
	}
	for label, rev := range w.onHostsOnly[app] {
		if !slices.Contains(h.revs, rev) && slices.Contains(labels, label) {
			v.History = append(v.History, ReleaseRow{Revision: rev, State: ReleaseOnHostsOnly, Hosts: []string{label}})
		}
	}
	return v, nil
}

func (w *world) Push(role string, s scheduler.Sample) error {
	if s.Value < 0 {
		return errors.New("negative load")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples[role] = append(w.samples[role], s)
	return nil
}

// options wires a world into server options.
func (w *world) options(token string) Options {
	return Options{Name: "office-dms", Token: token, Decisions: w, History: w, Overrides: w, Fleet: w, Forecasts: w,
		Schedule: w, Actions: w, Releases: w, Samples: w, Clock: w.clk, OnOverride: func() { w.kicks.Add(1) },
		ConfigError: func() error {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.configErr
		}}
}

var (
	_ Decisions = (*world)(nil)
	_ History   = (*world)(nil)
	_ Overrides = (*world)(nil)
	_ Fleet     = (*world)(nil)
	_ Forecasts = (*world)(nil)
	_ Schedule  = (*world)(nil)
	_ Actions   = (*world)(nil)
	_ Releases  = (*world)(nil)
	_ Samples   = (*world)(nil)
)

// Replace records the request; a label of no host fails as the fleet's
// Replace does, naming the fleet's labels. Each host is removed (its
// reason replaced, or replaced-data-discarded with DiscardData, its
// backup having failed) and its label launched on a new instance; a
// discarded host's replacement restores the role's applications from
// backups taken an hour before.
func (w *world) Replace(ctx context.Context, r ReplaceRequest) (*ActionResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replaces = append(w.replaces, r)
	byLabel := map[string]Host{}
	var labels []string
	for _, h := range w.hosts {
		labels = append(labels, h.Label)
		byLabel[h.Label] = h
	}
	for _, l := range r.Labels {
		if !slices.Contains(labels, l) {
			return nil, fmt.Errorf("replacing %s: no host of the fleet has the label; the fleet's labels: %s", l, strings.Join(labels, ", "))
		}
	}
	res := &ActionResult{}
	for _, l := range r.Labels {
		h := byLabel[l]
		reason := "replaced"
		if r.DiscardData {
			reason = "replaced-data-discarded"
			d := DiscardedHost{Label: l, InstanceID: h.InstanceID, BackupError: "draining " + l + ": dial tcp " + h.Address + ":22: connect: no route to host"}
			for _, ri := range w.roles {
				if ri.Name != h.Role {
					continue
				}
				for _, app := range ri.Apps {
					at := w.clk.Now().Add(-time.Hour).UTC()
					d.Restored = append(d.Restored, Restore{Role: h.Role, App: app,
						Key: fmt.Sprintf("backups/office-dms/%s/%s/%s.tar.zst", h.Role, app, at.Format("20060102T150405Z")), CreatedAt: &at})
				}
			}
			res.Discarded = append(res.Discarded, d)
		}
		res.Hosts = append(res.Hosts,
			HostOutcome{Label: l, InstanceID: h.InstanceID, Action: "removed", Reason: reason},
			HostOutcome{Label: l, InstanceID: h.InstanceID + "-new", Action: "launched"})
	}
	return res, nil
}
