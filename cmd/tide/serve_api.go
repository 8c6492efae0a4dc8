package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/server"
)

// serverOptions adapts the service's parts to what the server consumes.
func (svc *service) serverOptions(token string) server.Options {
	o := server.Options{
		Name:       svc.currentSchedule().Name,
		Token:      token,
		Decisions:  svc.loop,
		History:    svc.store,
		Overrides:  svc.store,
		Forecasts:  serviceForecasts{svc},
		Schedule:   serviceSchedule{svc},
		Actions:    serviceActions{svc},
		Releases:   serviceReleases{svc},
		OnOverride: svc.loop.Kick,
		ConfigError: func() error {
			svc.mu.Lock()
			defer svc.mu.Unlock()
			return svc.configErr
		},
		Metrics: svc.registry,
		Clock:   svc.clock,
		// The server narrows the logger to its component itself.
		Logger: svc.logger,
	}
	if !svc.flags.dryRun {
		o.Fleet = serviceFleet{svc}
	}
	svc.mu.Lock()
	if svc.sources.Pushed != nil {
		o.Samples = svc.sources.Pushed
	}
	svc.mu.Unlock()
	return o
}

// serviceFleet lists the hosts for the page and the API.
type serviceFleet struct{ svc *service }

func (f serviceFleet) Hosts(ctx context.Context) ([]server.Host, error) {
	f.svc.mu.Lock()
	fl := f.svc.fleet
	f.svc.mu.Unlock()
	if fl == nil {
		return nil, nil
	}
	sts, err := fl.Status(ctx)
	if err != nil {
		return nil, err
	}
	states := f.svc.hostStates(ctx, fl, sts)
	out := make([]server.Host, 0, len(sts))
	for i, h := range sts {
		sh := server.Host{Label: h.Label, Role: h.Role, InstanceID: h.InstanceID, Address: h.Address,
			Zone: h.Zone, State: h.State, LaunchedAt: h.LaunchedAt}
		if st := states[i]; st != nil {
			sh.Revision = revisionsOf(*st)
			for _, a := range st.Apps {
				sh.Processes += a.Running
			}
			sh.Ready = st.Ready && h.Labelled
		}
		out = append(out, sh)
	}
	return out, nil
}

// hostStates inspects the hosts over SSH, reusing an inspection younger
// than ten seconds: the page refreshes every few seconds and must not keep
// every host busy answering.
func (svc *service) hostStates(ctx context.Context, fl *deployer.Fleet, sts []deployer.HostStatus) []*converge.HostState {
	now := time.Now()
	out := make([]*converge.HostState, len(sts))
	var stale []deployer.HostStatus
	var where []int
	svc.mu.Lock()
	for i, h := range sts {
		c, ok := svc.inspected[h.InstanceID]
		if ok && now.Sub(c.at) < 10*time.Second {
			out[i] = c.state
			continue
		}
		stale = append(stale, h)
		where = append(where, i)
	}
	svc.mu.Unlock()
	if len(stale) == 0 {
		return out
	}
	fresh := inspectHosts(ctx, svc.currentSchedule(), fl, stale, svc.flags.concurrency)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.inspected == nil || len(svc.inspected) > 4*len(sts)+64 {
		svc.inspected = map[string]inspection{}
	}
	for k, st := range fresh {
		out[where[k]] = st
		if !now.Before(svc.inspectedSince) {
			svc.inspected[stale[k].InstanceID] = inspection{at: now, state: st}
		}
	}
	return out
}

// forgetInspections drops the hosts' inspected states once a deploy or a
// rollback changed the hosts: the page shows the change at once. An
// inspection begun before is not kept either.
func (svc *service) forgetInspections() {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.inspected = map[string]inspection{}
	svc.inspectedSince = time.Now()
}

// inspection is a host's state as last read over SSH.
type inspection struct {
	at    time.Time
	state *converge.HostState
}

// serviceForecasts gives each role's forecast two hours ahead.
type serviceForecasts struct{ svc *service }

func (f serviceForecasts) Forecast(role string, now time.Time) (server.Forecast, error) {
	f.svc.mu.Lock()
	fc, ok := f.svc.forecasters[role]
	f.svc.mu.Unlock()
	if !ok {
		return server.Forecast{}, fmt.Errorf("role %s has no forecast (not load-driven, or prediction off)", role)
	}
	step := f.svc.currentSchedule().Interval.D()
	if step <= 0 {
		step = time.Minute
	}
	horizon := 2 * time.Hour
	point, upper, err := fc.Steps(now, horizon)
	if err != nil {
		if errors.Is(err, predictor.ErrInsufficientHistory) {
			return server.Forecast{}, fmt.Errorf("no forecast yet: less than one season of history")
		}
		return server.Forecast{}, err
	}
	out := server.Forecast{Model: "mstl+ets", Quantile: 0.95, Points: make([]server.ForecastPoint, len(point))}
	base := now.Truncate(step)
	for i := range point {
		lower := max(2*point[i]-upper[i], 0)
		out.Points[i] = server.ForecastPoint{At: base.Add(time.Duration(i+1) * step), Point: point[i], Lower: lower, Upper: upper[i]}
	}
	return out, nil
}

// serviceSchedule gives the schedule in force.
type serviceSchedule struct{ svc *service }

func (s serviceSchedule) Week(now time.Time) (server.WeekView, error) {
	loc, roles, rows, err := computeWeek(s.svc.currentSchedule(), now)
	if err != nil {
		return server.WeekView{}, err
	}
	v := server.WeekView{Zone: loc.String(), Roles: roles, Hours: make([]server.WeekHour, len(rows))}
	for i, r := range rows {
		v.Hours[i] = server.WeekHour{At: r.At, Counts: r.Counts, DST: r.DST}
	}
	return v, nil
}

func (s serviceSchedule) Roles() []server.RoleInfo {
	sch := s.svc.currentSchedule()
	out := make([]server.RoleInfo, 0, len(sch.Roles))
	for _, r := range sch.Roles {
		info := server.RoleInfo{Name: r.Name, Min: r.Min, Max: r.Max, InstanceType: r.InstanceType, Zones: r.Zones,
			LoadDriven: r.Policies.Load != nil}
		if info.LoadDriven {
			info.Capacity = r.Capacity
			if t := r.Policies.Load.TargetPerInstance; t > 0 {
				info.Capacity = t
			}
		}
		for _, a := range sch.AppsOf(r.Name) {
			info.Apps = append(info.Apps, a.Name)
		}
		info.Stateful = r.Stateful
		// The static cloud's hosts, listed in the file, are never
		// launched nor terminated: the page offers no replace for them.
		info.Fixed = sch.Cloud.Provider == "static" || len(r.Hosts) > 0
		out = append(out, info)
	}
	return out
}

// serviceActions are the operator's triggers.
type serviceActions struct{ svc *service }

// Apply asks the loop for a step now: decide and converge.
func (a serviceActions) Apply(context.Context) error {
	a.svc.loop.Kick()
	return nil
}

// Deploy rolls a revision of an application through its hosts, one host of
// a role at a time, while the loop's steps wait; it is recorded as tide
// deploy records it, so that new hosts get the revision too.
func (a serviceActions) Deploy(ctx context.Context, app, revision string) error {
	svc := a.svc
	what := fmt.Sprintf("deploy %s@%s", app, revision)
	svc.acting.Lock()
	defer svc.acting.Unlock()
	d, fl, err := svc.rolloutFlags(what, app)
	if err != nil {
		return err
	}
	s := svc.currentSchedule()
	if _, ok := s.Application(app); !ok {
		return fmt.Errorf("deploy: no application %q in %s", app, s.File)
	}
	e, out := svc.rolloutEnv()
	err = d.rollout(ctx, e, s, fl, map[string]string{app: revision}, "deploy")
	svc.forgetInspections()
	if err != nil {
		return fmt.Errorf("%s: %s", what, rolloutFailure(err, out))
	}
	if err := svc.recorded(ctx, what, s); err != nil {
		return err
	}
	svc.logger.Info("deployed", "app", app, "revision", revision)
	return nil
}

// Rollback returns the hosts of an application to an earlier release (to,
// or one step back when to is empty) as tide rollback does, through the
// same function, while the loop's steps wait; the revision is recorded so
// that the loop and new hosts keep it.
func (a serviceActions) Rollback(ctx context.Context, app, to string) error {
	svc := a.svc
	what := "rollback " + app
	if to != "" {
		what += " to " + to
	}
	svc.acting.Lock()
	defer svc.acting.Unlock()
	d, fl, err := svc.rolloutFlags(what, app)
	if err != nil {
		return err
	}
	s := svc.currentSchedule()
	e, out := svc.rolloutEnv()
	rev, err := d.rollback(ctx, e, s, fl, app, to)
	svc.forgetInspections()
	if err != nil {
		return fmt.Errorf("%s: %s", what, rolloutFailure(err, out))
	}
	if err := svc.recorded(ctx, what, s); err != nil {
		return err
	}
	svc.logger.Info("rolled back", "app", app, "revision", rev)
	return nil
}

// Replace gives the named hosts new ones as tide replace does, through
// the same function, while the loop's steps wait. With DiscardData it logs
// what each host's replacement restores before any host is touched, and
// each host terminated without a verified backup after. The action fails
// when any host failed, with the report tide replace prints. Its result
// (each host's outcome, and what was discarded) is returned whether it
// failed or not, once hosts were acted on.
func (a serviceActions) Replace(ctx context.Context, r server.ReplaceRequest) (*server.ActionResult, error) {
	svc := a.svc
	what := "replace " + strings.Join(r.Labels, ", ")
	svc.acting.Lock()
	defer svc.acting.Unlock()
	svc.mu.Lock()
	fl := svc.fleet
	svc.mu.Unlock()
	if fl == nil {
		return nil, fmt.Errorf("%s: tide serve is not acting on the fleet (--dry-run)", what)
	}
	s := svc.currentSchedule()
	if err := replaceable(s); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	why := strings.TrimSpace(r.Reason)
	if r.DiscardData && why == "" {
		return nil, fmt.Errorf("%s: discarding data needs a reason", what)
	}
	e, out := svc.rolloutEnv()
	logger := svc.logger.With("component", "replace")
	rep, discarded, err := replaceHosts(ctx, e, logger, s, svc.flags.stateDir, r.Labels, r.DiscardData, why,
		func(ctx context.Context) (deployer.Report, error) {
			return fl.Replace(ctx, r.Labels, deployer.ReplaceOptions{DiscardData: r.DiscardData})
		})
	svc.forgetInspections()
	svc.loop.Kick()
	res := replaceResult(rep, discarded)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	if rep.Err() != nil {
		printReport(out, "replace", rep)
		printDiscarded(out, discarded, why)
		return res, fmt.Errorf("%s: %s", what, strings.TrimSpace(out.String()))
	}
	logger.Info("replaced", "labels", r.Labels, "discard_data", r.DiscardData, "discarded", len(discarded))
	return res, nil
}

// replaceResult is the server's copy of a replace's report and of the
// hosts whose data it discarded; nil when no host was acted on.
func replaceResult(rep deployer.Report, discarded []discardedHost) *server.ActionResult {
	if len(rep.Hosts) == 0 && len(discarded) == 0 {
		return nil
	}
	res := &server.ActionResult{}
	for _, h := range rep.Hosts {
		o := server.HostOutcome{Label: h.Label, InstanceID: h.InstanceID, Action: string(h.Action), Reason: h.Reason}
		if h.Err != nil {
			o.Error = h.Err.Error()
		}
		res.Hosts = append(res.Hosts, o)
	}
	for _, d := range discarded {
		sd := server.DiscardedHost{Label: d.Label, InstanceID: d.InstanceID, BackupError: d.BackupErr}
		for _, p := range d.Restored {
			rs := server.Restore{Role: p.role, App: p.app, Key: p.b.Key}
			if p.b.Key != "" {
				at := p.b.CreatedAt
				rs.CreatedAt = &at
			}
			sd.Restored = append(sd.Restored, rs)
		}
		res.Discarded = append(res.Discarded, sd)
	}
	return res
}

// rolloutFlags are tide deploy's and rollback's flags for an action of the
// service: one host of a role at a time, on the fleet the loop acts on.
// Without a fleet (--dry-run) the action is refused.
func (svc *service) rolloutFlags(what, app string) (*deployFlags, *deployer.Fleet, error) {
	svc.mu.Lock()
	fl, c := svc.fleet, svc.fleetCmd
	svc.mu.Unlock()
	if fl == nil || c == nil {
		return nil, nil, fmt.Errorf("%s: tide serve is not acting on the fleet (--dry-run)", what)
	}
	batch, output := 1, "text"
	cc := *c
	cc.output = &output
	return &deployFlags{fleetCmd: &cc, app: &app, batch: &batch}, fl, nil
}

// rolloutEnv is the env a rollout of the service prints to: a buffer, for
// the action's error.
func (svc *service) rolloutEnv() (*env, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return &env{Stdout: out, Stderr: out, Stdin: strings.NewReader(""), Getenv: svc.e.Getenv, Logger: svc.e.Logger}, out
}

// rolloutFailure is the error of a failed rollout: what it printed when it
// reported the failure itself (its hosts and the error), else err.
func rolloutFailure(err error, out *bytes.Buffer) string {
	var exit exitError
	if errors.As(err, &exit) && out.Len() > 0 {
		return strings.TrimSpace(out.String())
	}
	return err.Error()
}

// recorded follows a rollout that recorded a revision: the fleet's
// converger read the recorded revisions when it was built, so it is built
// again (or the next step would converge the hosts back), and the loop
// is asked for a step.
func (svc *service) recorded(ctx context.Context, what string, s *config.Schedule) error {
	if err := svc.openFleet(ctx, s); err != nil {
		return fmt.Errorf("%s: done, but reopening the fleet failed: %w", what, err)
	}
	svc.loop.Kick()
	return nil
}

// serviceReleases gives an application's release history, as tide
// rollback --list prints it, with the hosts' states the page's fleet
// shows (inspected at most ten seconds ago).
type serviceReleases struct{ svc *service }

func (r serviceReleases) Releases(ctx context.Context, app string) (server.ReleaseView, error) {
	svc := r.svc
	svc.mu.Lock()
	fl := svc.fleet
	svc.mu.Unlock()
	s := svc.currentSchedule()
	from := func(ctx context.Context) ([]server.HostReleases, error) {
		if fl == nil {
			return nil, nil // --dry-run: no hosts are read
		}
		return appReleases(ctx, s, fl, app, func(ctx context.Context, hs []deployer.HostStatus) []*converge.HostState {
			return svc.hostStates(ctx, fl, hs)
		})
	}
	return listReleases(ctx, s, svc.flags.stateDir, app, from)
}

var (
	_ server.Actions  = serviceActions{}
	_ server.Releases = serviceReleases{}
)
