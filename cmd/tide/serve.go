package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/cloud/aws"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/loadsource"
	"github.com/tideops/tide/loadsource/fromconfig"
	"github.com/tideops/tide/metrics"
	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/server"
	"github.com/tideops/tide/state"
)

func init() {
	register(command{Name: "serve", Summary: "run the service: decision loop, API, web interface, metrics", Run: runServe})
}

const serveHelp = `Runs tide as a service: every interval it observes each role's load,
decides, converges the fleet through the launch pipeline and records the
decision. It serves the JSON API under /api/ (bearer token), the web
interface at / and Prometheus metrics at /metrics.

The token comes from --token-file or TIDE_TOKEN. Without one, tide makes a
token in the state directory and listens on loopback only.

The schedule file is reloaded on SIGHUP and when it changes, after
validation: an invalid file is rejected and the old one stays in force.
SIGTERM or SIGINT stops the loop; a step in progress gets --grace to finish
so that no launch goes unrecorded.

--speed N runs the service's clock N times faster than the wall clock (a
demonstration: with synthetic load, an office day passes in minutes);
hosts still boot in real time.`

// serveFlags are tide serve's flags.
type serveFlags struct {
	file, listen, tokenFile, stateDir, start string
	speed                                    float64
	concurrency                              int
	grace, poll                              time.Duration
	dryRun                                   bool
}

func runServe(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f serveFlags
	fs.StringVar(&f.file, "c", "", "schedule file (required)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address of the API, web interface and metrics")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API token (env TIDE_TOKEN)")
	f.stateDir = defaultStateDir(e.Getenv)
	fs.StringVar(&f.stateDir, "state-dir", f.stateDir, "state directory (env TIDE_STATE_DIR; default $XDG_STATE_HOME/tide)")
	fs.Float64Var(&f.speed, "speed", 1, "run the service clock this many times faster than the wall clock (demonstrations)")
	fs.StringVar(&f.start, "start", "", "with --speed: the service clock's start, RFC3339 (default 07:00 of the last working day)")
	fs.IntVar(&f.concurrency, "concurrency", 10, "hosts worked on at once")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "time a step in progress gets to finish at shutdown")
	fs.DurationVar(&f.poll, "reload-poll", 2*time.Second, "how often the schedule file is checked for changes")
	fs.BoolVar(&f.dryRun, "dry-run", false, "decide and record, but never launch or terminate")
	if err := parseFlags(fs, args, serveHelp); err != nil {
		return err
	}
	if f.file == "" {
		return fmt.Errorf("-c FILE is required")
	}
	if f.speed < 1 {
		return fmt.Errorf("--speed: want at least 1, got %v", f.speed)
	}
	token, err := serveToken(e, f)
	if err != nil {
		return err
	}
	svc, err := newService(ctx, e, f)
	if err != nil {
		return err
	}
	defer svc.close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.listen, err)
	}
	srv, err := server.New(svc.serverOptions(token.value))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	if token.generated && isTerminal(e.Stdout) {
		fmt.Fprintf(e.Stdout, "tide serve: open %s#token=%s\n", url, token.value)
	} else {
		fmt.Fprintf(e.Stdout, "tide serve: listening on %s (API token: %s)\n", url, token.source)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); svc.loop.Run(ctx) }()
	go func() { defer wg.Done(); svc.runActing(ctx) }()
	go func() { defer wg.Done(); srv.Run(ctx) }()
	go func() { defer wg.Done(); svc.watch(ctx, f.poll) }()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err = hs.Serve(ln)
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	svc.logger.Info("stopped")
	return err
}

type apiToken struct {
	value, source string
	generated     bool
}

// serveToken finds the API token: --token-file, else TIDE_TOKEN, else one
// tide generates in the state directory (loopback addresses only).
func serveToken(e *env, f serveFlags) (apiToken, error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return apiToken{}, fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return apiToken{}, fmt.Errorf("--token-file %s: the token must be at least 16 characters", f.tokenFile)
		}
		return apiToken{value: t, source: "from " + f.tokenFile}, nil
	}
	if t := strings.TrimSpace(e.Getenv("TIDE_TOKEN")); t != "" {
		if len(t) < 16 {
			return apiToken{}, errors.New("TIDE_TOKEN must be at least 16 characters")
		}
		return apiToken{value: t, source: "from TIDE_TOKEN"}, nil
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return apiToken{}, fmt.Errorf("--listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return apiToken{}, fmt.Errorf("refusing to listen on %s without a token: set --token-file or TIDE_TOKEN", f.listen)
	}
	path := filepath.Join(f.stateDir, "api-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return apiToken{value: strings.TrimSpace(string(b)), source: "in " + path, generated: true}, nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return apiToken{}, err
	}
	t := hex.EncodeToString(buf)
	if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
		return apiToken{}, err
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return apiToken{}, fmt.Errorf("writing the API token: %w", err)
	}
	return apiToken{value: t, source: "in " + path, generated: true}, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// service is tide serve's parts, wired.
type service struct {
	e        *env
	flags    serveFlags
	logger   *slog.Logger
	clock    clock.Clock
	started  time.Time
	store    *state.Store
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	loop     *scheduler.Loop
	fleetCmd *fleetCmd
	actCtx   context.Context
	actStop  context.CancelFunc

	mu          sync.Mutex
	schedule    *config.Schedule
	fileHash    string
	configErr   error
	sources     *fromconfig.Sources
	forecasters map[string]*predictor.Online
	fleet       *deployer.Fleet
	closeFleet  func()
	inspected   map[string]inspection
	// inspectedSince is when the hosts last changed by an action:
	// inspections begun before are not cached (forgetInspections).
	inspectedSince time.Time

	// acting is held while the fleet is changed (a loop step's converge, a
	// rolling deploy), so that a deploy and a step never work on the same
	// hosts at once.
	acting sync.Mutex
	// pending are the newest desired counts not yet handed to a converge;
	// actKick wakes runActing; actErr is the last converge's error.
	pending map[string]int
	actKick chan struct{}
	actErr  error
	// authWait spaces converges out while the cloud refuses tide's
	// credentials.
	authWait authBackoff
}

// maxAuthBackoff is the longest wait between converges while the cloud
// refuses tide's credentials.
const maxAuthBackoff = 5 * time.Minute

// authBackoff spaces converges out while the cloud refuses tide's
// credentials, which retrying at every step does not fix: the first retry
// comes at the next step (a second later at least), then the wait doubles
// up to maxAuthBackoff. The
// decisions go on meanwhile; the newest counts are applied at the next
// attempt. Times are wall-clock times: the wait protects the cloud's API.
type authBackoff struct {
	wait  time.Duration // the last wait, 0 when the last converge authenticated
	until time.Time     // no converge before then
}

// failed records an authentication failure at now and returns the wait
// before the next attempt: first (the decision interval, a second at
// least) the first time, then twice the last wait, at most maxAuthBackoff.
func (b *authBackoff) failed(now time.Time, first time.Duration) time.Duration {
	switch {
	case b.wait == 0:
		b.wait = max(first, time.Second)
	default:
		b.wait *= 2
	}
	b.wait = min(b.wait, maxAuthBackoff)
	b.until = now.Add(b.wait)
	return b.wait
}

// waiting reports whether a converge at now would come too early.
func (b *authBackoff) waiting(now time.Time) bool { return now.Before(b.until) }

// reset ends the backoff: the cloud accepted the credentials, or new ones
// were loaded.
func (b *authBackoff) reset() { *b = authBackoff{} }

func newService(ctx context.Context, e *env, f serveFlags) (*service, error) {
	s, hash, err := loadSchedule(f.file)
	if err != nil {
		return nil, reportConfigError(e, err)
	}
	logger := e.Logger.With("fleet", s.Name)
	var clk clock.Clock = clock.Real{}
	if f.speed > 1 {
		origin := time.Now()
		if f.start != "" {
			if origin, err = time.Parse(time.RFC3339, f.start); err != nil {
				return nil, fmt.Errorf("--start: %w", err)
			}
		} else {
			origin = fromconfig.MorningBefore(origin, planZone(s))
		}
		clk = clock.NewScaled(origin, f.speed)
		logger.Info("service clock scaled", "speed", f.speed, "start", origin.Format(time.RFC3339))
	}
	stateDir, err := filepath.Abs(f.stateDir)
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	f.stateDir = stateDir
	store, err := state.Open(filepath.Join(stateDir, "fleets", s.Name), state.Options{})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("another tide serve is running for fleet %s: %w", s.Name, err)
		}
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg, clk)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc := &service{e: e, flags: f, logger: logger, clock: clk, started: clk.Now(), store: store, registry: reg,
		metrics: m, schedule: s, fileHash: hash, forecasters: map[string]*predictor.Online{}, actKick: make(chan struct{}, 1)}
	// Acting outlives the loop's context by the grace period, so that a
	// launch in progress at shutdown is seen through and recorded.
	svc.actCtx, svc.actStop = context.WithCancel(context.Background())
	if svc.sources, err = fromconfig.Build(s, fromconfig.Options{Clock: clk, ServiceStart: svc.started, Logger: logger}); err != nil {
		store.Close()
		return nil, err
	}
	if !f.dryRun {
		if err := svc.openFleet(ctx, s); err != nil {
			store.Close()
			return nil, err
		}
	}
	plan, err := svc.plan(ctx, s)
	if err != nil {
		svc.close()
		return nil, err
	}
	deps := scheduler.LoopDeps{Clock: clk, Load: svc, Record: svc, Overrides: store, Logger: logger}
	if !f.dryRun {
		deps.Act = svc
	}
	svc.loop = scheduler.NewLoop(plan, deps)
	return svc, nil
}

// loadSchedule loads and validates the schedule file and hashes its bytes.
func loadSchedule(path string) (*config.Schedule, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	s, err := config.Parse(path, b)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return s, hex.EncodeToString(sum[:]), nil
}

// openFleet builds the deployer's fleet for s, closing the previous one.
func (svc *service) openFleet(ctx context.Context, s *config.Schedule) error {
	file, stateDir, output, conc := svc.flags.file, svc.flags.stateDir, "text", svc.flags.concurrency
	c := &fleetCmd{file: &file, stateDir: &stateDir, output: &output, concurrency: &conc,
		wrapCloud: svc.metrics.Cloud, wrapHostKeys: svc.metrics.HostKeys}
	fl, closeFn, err := c.openSchedule(ctx, svc.e, s, nil, svc.e.Logger) // the deployer names the fleet itself
	if err != nil {
		return err
	}
	svc.mu.Lock()
	old := svc.closeFleet
	svc.fleet, svc.closeFleet, svc.fleetCmd = fl, closeFn, c
	// New credentials may have come with the new fleet: the next step
	// tries them.
	svc.authWait.reset()
	svc.mu.Unlock()
	if old != nil {
		old()
	}
	return nil
}

// plan builds the loop's roles for s: decision parameters, windows, the
// lead time measured for the role, and a forecaster fed with the role's
// stored history (kept across reloads).
func (svc *service) plan(ctx context.Context, s *config.Schedule) (*scheduler.Plan, error) {
	now := svc.clock.Now()
	desired, err := svc.store.Desired()
	if err != nil {
		return nil, err
	}
	p := &scheduler.Plan{Interval: s.Interval.D()}
	for _, r := range s.Roles {
		windows, err := s.Windows(r.Name)
		if err != nil {
			return nil, err
		}
		params := scheduler.ParamsFor(s, r)
		if params.LoadDriven {
			// Lead time from facts: the 90th percentile of measured
			// launch-to-ready durations (wall time, so scaled for a demo).
			measured := svc.store.LeadTime(r.Name, 0.9, 0)
			if measured > 0 {
				params.Lead = max(params.Lead, time.Duration(float64(measured)*svc.flags.speed))
			}
		}
		var fc scheduler.Forecaster
		if params.LoadDriven && params.Predict {
			fc = svc.forecaster(ctx, r.Name, params.Interval, now)
		}
		role := scheduler.NewRole(params, windows, fc)
		if d, ok := desired[r.Name]; ok {
			role.Restore(d.Count, d.At)
		}
		p.Roles = append(p.Roles, role)
	}
	return p, nil
}

// forecaster returns the role's forecaster, building it on first use from
// the stored samples, topped up from the source's own history.
func (svc *service) forecaster(ctx context.Context, role string, step time.Duration, now time.Time) *predictor.Online {
	svc.mu.Lock()
	fc, ok := svc.forecasters[role]
	svc.mu.Unlock()
	if ok {
		return fc
	}
	// The forecaster works on minutes at the finest: a short decision
	// interval (tests, demonstrations) does not make it keep weeks of seconds.
	step = max(step, time.Minute)
	fc = predictor.New(predictor.Options{Step: step})
	since := now.Add(-8 * 7 * 24 * time.Hour)
	stored, err := svc.store.Samples(role, since)
	if err != nil {
		svc.logger.Warn("reading load history failed", "role", role, "err", err)
	}
	last := since
	for _, smp := range stored {
		fc.Observe(smp.At, smp.Value)
		last = smp.At
	}
	if bf, ok := svc.sources.Backfill[role]; ok && now.Sub(last) > step {
		from := last.Add(step)
		if now.Sub(from) > 14*24*time.Hour {
			from = now.Add(-14 * 24 * time.Hour)
		}
		past, err := bf.Range(ctx, from, now, step)
		if err != nil {
			svc.logger.Warn("backfilling load history failed", "role", role, "err", err)
		}
		for _, smp := range past {
			fc.Observe(smp.At, smp.Value)
		}
		if err := svc.store.AppendSamples(role, past); err != nil {
			svc.logger.Warn("storing load history failed", "role", role, "err", err)
		}
		svc.logger.Info("load history backfilled", "role", role, "samples", len(past))
	}
	svc.mu.Lock()
	svc.forecasters[role] = fc
	svc.mu.Unlock()
	return fc
}

// Latest reads a role's load (scheduler.LoadReader) and keeps it.
func (svc *service) Latest(ctx context.Context, role string, now time.Time) (scheduler.Sample, error) {
	svc.mu.Lock()
	src := svc.sources.ByRole[role]
	svc.mu.Unlock()
	if src == nil {
		return scheduler.Sample{}, fmt.Errorf("role %s: %w", role, loadsource.ErrNoData)
	}
	smp, err := src.Latest(ctx, now)
	if err != nil {
		return smp, err
	}
	if err := svc.store.AppendSamples(role, []scheduler.Sample{smp}); err != nil {
		svc.logger.Warn("storing a load sample failed", "role", role, "err", err)
	}
	return smp, nil
}

// RecordDecision stores a decision and its count (scheduler.Recorder).
func (svc *service) RecordDecision(rec scheduler.Record) error {
	svc.metrics.ObserveDecision(rec)
	if err := svc.store.PutDesired(rec.Role, rec.Desired, rec.At); err != nil {
		return err
	}
	return svc.store.AppendDecision(rec)
}

// Apply hands the desired counts to the acting goroutine (runActing) and
// returns at once (scheduler.Actuator): a converge that takes minutes never
// holds up the next decision. Counts decided while a converge runs replace
// each other; the newest is applied next. The error returned is that of
// the last converge that finished.
func (svc *service) Apply(ctx context.Context, desired map[string]int) error {
	svc.mu.Lock()
	svc.pending = desired
	err := svc.actErr
	svc.mu.Unlock()
	select {
	case svc.actKick <- struct{}{}:
	default:
	}
	return err
}

// runActing converges the fleet to the newest desired counts each time
// Apply hands some over, until ctx ends; a converge in progress then gets
// the grace period to finish. While the cloud refuses tide's credentials,
// converges are spaced out (authBackoff): the counts handed over meanwhile
// wait, the newest replacing the others.
func (svc *service) runActing(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-svc.actKick:
		}
		svc.mu.Lock()
		if svc.authWait.waiting(time.Now()) {
			svc.mu.Unlock()
			continue
		}
		desired := svc.pending
		svc.pending = nil
		svc.mu.Unlock()
		if desired == nil {
			continue
		}
		err := svc.converge(ctx, desired)
		interval := svc.wallInterval()
		svc.mu.Lock()
		refused := errors.Is(err, aws.ErrAuthFailed)
		var wait time.Duration
		if refused {
			wait = svc.authWait.failed(time.Now(), interval)
			err = fmt.Errorf("%w (tide tries again in %s, waiting longer after each refusal, up to %s; "+
				"a schedule reload, such as SIGHUP, loads the credentials afresh and tries at once)", err, wait, maxAuthBackoff)
		} else {
			svc.authWait.reset()
		}
		svc.actErr = err
		svc.mu.Unlock()
		switch {
		case refused:
			svc.metrics.Failure("cloud-auth")
			svc.logger.Error("converging the fleet failed: the cloud refused the credentials", "err", err, "retry_in", wait)
		case err != nil:
			svc.logger.Error("converging the fleet failed", "err", err)
		}
	}
}

// wallInterval is the decision interval in wall-clock time (shorter than
// the schedule's under --speed).
func (svc *service) wallInterval() time.Duration {
	return time.Duration(float64(svc.currentSchedule().Interval.D()) / svc.flags.speed)
}

// converge converges the fleet once and keeps the measured launch-to-ready
// durations for the lead time.
func (svc *service) converge(ctx context.Context, desired map[string]int) error {
	svc.acting.Lock()
	defer svc.acting.Unlock()
	svc.mu.Lock()
	fl, fc := svc.fleet, svc.fleetCmd
	svc.mu.Unlock()
	if fl == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down already (the loop may pick a due tick over the
		// cancellation): the grace is for a step in progress, not a new one.
		return nil
	}
	// The loop's context ends at shutdown; acting gets the grace period.
	actCtx, cancel := context.WithCancel(svc.actCtx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(svc.flags.grace, cancel)
		context.AfterFunc(actCtx, func() { t.Stop() })
	})
	defer stop()
	// Once shutdown begins no new host work starts; work in flight gets
	// the grace period (actCtx) to finish and be recorded.
	rep, err := fl.ReconcileUntil(actCtx, ctx.Done(), desired)
	if err != nil {
		if errors.Is(err, deployer.ErrBusy) {
			svc.logger.Info("fleet busy (another tide is acting): trying at the next step")
			return nil
		}
		return err
	}
	now := time.Now()
	svc.metrics.ObserveReport(rep)
	for _, h := range rep.Hosts {
		if h.Action != deployer.ActionKept {
			// A host came, went or started: what the page shows of the
			// hosts is read afresh, not from a read taken mid-setup.
			svc.forgetInspections()
			break
		}
	}
	ready, pending := map[string]int{}, map[string]int{}
	for _, h := range rep.Hosts {
		switch {
		case h.Err != nil && h.Intended != deployer.ActionRemoved:
			pending[h.Role]++
		case h.Action == deployer.ActionKept || h.Action == deployer.ActionLaunched || h.Action == deployer.ActionStarted:
			ready[h.Role]++
		}
		if h.Action == deployer.ActionLaunched && h.Err == nil {
			if err := svc.store.AppendDuration(h.Role, state.DurationReady, h.Durations.Total(), now); err != nil {
				svc.logger.Warn("storing a duration failed", "role", h.Role, "err", err)
			}
		}
	}
	s := svc.currentSchedule()
	for _, r := range s.Roles {
		svc.metrics.SetHosts(r.Name, ready[r.Name], pending[r.Name])
	}
	if rep.Err() != nil {
		return rep.Err()
	}
	// As tide apply does: a schedule revision every host took enters the
	// revisions history, so that rollback can return to it.
	if err := recordApplied(actCtx, s, fc.stateDirAbs, fc.conv, now); err != nil {
		return fmt.Errorf("converged, but recording the revisions failed: %w", err)
	}
	return nil
}

// watch reloads the schedule on SIGHUP and when the file changes.
func (svc *service) watch(ctx context.Context, poll time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var lastMod time.Time
	if st, err := os.Stat(svc.flags.file); err == nil {
		lastMod = st.ModTime()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			svc.reload(ctx, "SIGHUP")
		case <-tick.C:
			st, err := os.Stat(svc.flags.file)
			if err != nil || st.ModTime().Equal(lastMod) {
				continue
			}
			lastMod = st.ModTime()
			svc.reload(ctx, "file changed")
		}
	}
}

// reload validates the schedule file and, when it is valid and changed,
// puts it in force; an invalid file leaves the old one in force.
func (svc *service) reload(ctx context.Context, why string) {
	s, hash, err := loadSchedule(svc.flags.file)
	if err == nil && s.Name != svc.currentSchedule().Name {
		err = fmt.Errorf("%s: the fleet's name changed from %q to %q; restart tide serve to manage another fleet", svc.flags.file, svc.currentSchedule().Name, s.Name)
	}
	svc.mu.Lock()
	same := err == nil && hash == svc.fileHash
	svc.mu.Unlock()
	if same {
		return
	}
	if err == nil {
		err = svc.install(ctx, s, hash)
	}
	svc.mu.Lock()
	svc.configErr = err
	svc.mu.Unlock()
	if err != nil {
		svc.metrics.Failure("config")
		svc.logger.Error("schedule reload rejected: the previous schedule stays in force", "reason", why, "err", err)
		return
	}
	svc.logger.Info("schedule reloaded", "reason", why, "roles", len(s.Roles))
}

func (svc *service) install(ctx context.Context, s *config.Schedule, hash string) error {
	svc.mu.Lock()
	pushed := svc.sources.Pushed
	svc.mu.Unlock()
	srcs, err := fromconfig.Build(s, fromconfig.Options{Clock: svc.clock, ServiceStart: svc.started, Pushed: pushed, Logger: svc.logger})
	if err != nil {
		return err
	}
	svc.mu.Lock()
	oldSrcs := svc.sources
	svc.sources = srcs
	svc.mu.Unlock()
	plan, err := svc.plan(ctx, s)
	if err == nil && !svc.flags.dryRun {
		err = svc.openFleet(ctx, s)
	}
	if err != nil {
		svc.mu.Lock()
		svc.sources = oldSrcs
		svc.mu.Unlock()
		return err
	}
	svc.mu.Lock()
	svc.schedule, svc.fileHash = s, hash
	svc.mu.Unlock()
	svc.loop.Reload(plan)
	return nil
}

func (svc *service) currentSchedule() *config.Schedule {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.schedule
}

// close releases everything, once the loop, the acting goroutine and the
// server have stopped (runServe defers it).
func (svc *service) close() {
	svc.actStop()
	svc.mu.Lock()
	closeFleet := svc.closeFleet
	svc.closeFleet = nil
	svc.mu.Unlock()
	if closeFleet != nil {
		closeFleet()
	}
	svc.store.Close()
}
