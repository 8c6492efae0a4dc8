package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/scheduler"
)

// Decisions gives the latest decision of each role. *scheduler.Loop
// satisfies it.
type Decisions interface {
	// Last returns the latest decision of each role, the time of the last
	// step and the error of its act phase.
	Last() ([]scheduler.Record, time.Time, error)
}

// History is the stored past: decisions and load samples. The state store
// satisfies it.
type History interface {
	// Decisions returns a role's decisions at or after since, newest first,
	// at most limit (limit <= 0: all); an empty role means every role.
	Decisions(role string, since time.Time, limit int) ([]scheduler.Record, error)
	// Samples returns a role's load samples at or after since, oldest first.
	Samples(role string, since time.Time) ([]scheduler.Sample, error)
}

// Overrides stores operators' overrides. The state store satisfies it.
type Overrides interface {
	// PutOverride stores an override, replacing the role's previous one.
	PutOverride(o scheduler.Override) error
	// Overrides lists the overrides in force at now.
	Overrides(now time.Time) ([]scheduler.Override, error)
	// DeleteOverride removes a role's override and reports whether there was one.
	DeleteOverride(role string) (bool, error)
}

// Fleet lists the hosts as they are now.
type Fleet interface {
	Hosts(ctx context.Context) ([]Host, error)
}

// Forecasts gives a role's forecast series ahead of now. An error (for
// example predictor.ErrInsufficientHistory) is shown as a note, not a failure.
type Forecasts interface {
	Forecast(role string, now time.Time) (Forecast, error)
}

// Schedule describes the roles and their scheduled counts for the coming
// week, from the schedule file in force.
type Schedule interface {
	// Week returns the scheduled counts hour by hour for 7 days from now.
	Week(now time.Time) (WeekView, error)
	// Roles returns the roles of the schedule file in force.
	Roles() []RoleInfo
}

// Actions are the triggers an operator can pull. The server runs them in
// the background, one at a time; their outcome shows in /api/status.
type Actions interface {
	// Apply converges the fleet to the current decisions now.
	Apply(ctx context.Context) error
	// Deploy deploys a revision of an application to the hosts that run it.
	Deploy(ctx context.Context, app, revision string) error
	// Rollback returns the hosts of an application to an earlier release:
	// to, a revision of its history or a release still on its hosts, or
	// with to empty the one before the current revision.
	Rollback(ctx context.Context, app, to string) error
	// Replace gives the hosts of r.Labels new ones, as tide replace does:
	// each is drained, a stateful role's data backed up and verified, the
	// host terminated and its label launched again. With r.DiscardData a
	// host whose drain or backup fails is terminated all the same (its
	// data since the newest verified backup is lost), for r.Reason. The
	// result, kept in the action's status even when err is not nil, says
	// what was done to each host and what was discarded.
	Replace(ctx context.Context, r ReplaceRequest) (*ActionResult, error)
}

// Releases gives an application's release history and the releases on
// its hosts, for the page and for rollbacks.
type Releases interface {
	// Releases returns the history of app, a known application.
	Releases(ctx context.Context, app string) (ReleaseView, error)
}

// Samples takes load samples pushed to the API. *loadsource.Pushed
// satisfies it.
type Samples interface {
	Push(role string, s scheduler.Sample) error
}

// ReleaseView is an application's release history: the JSON of
// `tide rollback --list --output json`.
type ReleaseView struct {
	App string `json:"app"`
	// Current is the revision the application's hosts converge to.
	Current string `json:"current"`
	// Rollback is where a rollback goes; empty when Current is the oldest
	// revision of the history.
	Rollback string `json:"rollback,omitempty"`
	// History lists the history oldest first, then the releases found
	// only on hosts.
	History []ReleaseRow `json:"history"`
	// Hosts are the running hosts of the application's roles.
	Hosts []HostReleases `json:"hosts"`
}

// The states of a ReleaseRow.
const (
	ReleaseEarlier        = "earlier"          // before Current: where rollbacks go
	ReleaseCurrent        = "current"          // the current revision
	ReleaseRolledBackFrom = "rolled back from" // after Current: a rollback left it
	ReleaseOnHostsOnly    = "on hosts only"    // no longer in the history, still on a host
)

// ReleaseRow is one revision of a ReleaseView.
type ReleaseRow struct {
	Revision string `json:"revision"`
	// State is ReleaseEarlier, ReleaseCurrent, ReleaseRolledBackFrom or
	// ReleaseOnHostsOnly.
	State string `json:"state"`
	// Hosts are the labels of the hosts holding the release complete.
	Hosts []string `json:"hosts"`
}

// HostReleases is one host's releases of an application.
type HostReleases struct {
	Label string `json:"label"`
	Role  string `json:"role"`
	// Answered is false when the host could not be read.
	Answered bool `json:"answered"`
	// Current is the release the host's current points to.
	Current string `json:"current,omitempty"`
	// Releases are the complete releases on disk, oldest deployed first.
	Releases []string `json:"releases"`
}

// Host is one host as the page and the API show it.
type Host struct {
	Label      string      `json:"label"`
	Role       string      `json:"role"`
	InstanceID string      `json:"instance_id"`
	Address    string      `json:"address"`
	Zone       string      `json:"zone"`
	State      fleet.State `json:"state"`
	// Revision is the deployed revision, if known.
	Revision string `json:"revision,omitempty"`
	// Processes is how many of the host's application processes run.
	Processes int `json:"processes"`
	// Ready is set when the host is labelled, deployed and serving.
	Ready      bool      `json:"ready"`
	LaunchedAt time.Time `json:"launched_at"`
}

// RoleInfo is a role of the schedule file.
type RoleInfo struct {
	Name         string   `json:"name"`
	Min          int      `json:"min"`
	Max          int      `json:"max"`
	InstanceType string   `json:"instance_type,omitempty"`
	Zones        []string `json:"zones,omitempty"`
	LoadDriven   bool     `json:"load_driven"`
	// Capacity is the load one host carries (0 when not load-driven).
	Capacity float64 `json:"capacity,omitempty"`
	// Apps are the applications deployed on the role's hosts.
	Apps []string `json:"apps,omitempty"`
	// Stateful is set when the role's data is backed up before a host
	// of it is terminated (and restored on a new one).
	Stateful bool `json:"stateful,omitempty"`
	// Fixed is set when tide neither launches nor terminates the role's
	// hosts (the static cloud's, listed in the schedule file): they
	// cannot be replaced.
	Fixed bool `json:"fixed,omitempty"`
}

// Forecast is a role's forecast series ahead of now.
type Forecast struct {
	Model    string          `json:"model,omitempty"`
	Quantile float64         `json:"quantile,omitempty"`
	Points   []ForecastPoint `json:"points"`
}

// ForecastPoint is the forecast at one time: the point forecast and its
// band (Lower may be zero when the model gives only an upper quantile).
type ForecastPoint struct {
	At    time.Time `json:"at"`
	Point float64   `json:"point"`
	Lower float64   `json:"lower"`
	Upper float64   `json:"upper"`
}

// WeekView is the scheduled count of every role hour by hour, in the
// schedule's time zone (the JSON of `tide plan --week --output json`).
type WeekView struct {
	Zone  string     `json:"zone"`
	Roles []string   `json:"roles"`
	Hours []WeekHour `json:"hours"`
}

// WeekHour is one hour of the week; DST describes a clock change that
// happened just before it ("CET -> CEST (UTC+1 -> UTC+2)").
type WeekHour struct {
	At     time.Time      `json:"at"`
	Counts map[string]int `json:"counts"`
	DST    string         `json:"dst_change,omitempty"`
}

// Options configure a Server. Token, Decisions and Schedule are required;
// a nil History, Overrides, Fleet, Forecasts, Actions, Releases or Samples
// turns the routes that need it into 501 Not Implemented. Without Releases
// a rollback is not checked before it starts (the action refuses an
// unknown revision) and its status names no revision when it goes one
// step back.
type Options struct {
	// Name is the fleet's name, shown in the page's title.
	Name string
	// Token is the bearer token every /api/ route but /api/health requires.
	Token string

	Decisions Decisions
	History   History
	Overrides Overrides
	Fleet     Fleet
	Forecasts Forecasts
	Schedule  Schedule
	Actions   Actions
	Releases  Releases
	Samples   Samples

	// OnOverride is called after an override is stored or cleared (the
	// service kicks the loop so that the decision changes at once).
	OnOverride func()
	// ConfigError returns the error of the last schedule reload, or nil.
	ConfigError func() error
	// Metrics is served at /metrics, without the token (nil: no /metrics).
	Metrics prometheus.Gatherer

	Clock  clock.Clock
	Logger *slog.Logger

	// SampleInterval is how often Run samples the fleet for the chart's
	// ready line (default 30s).
	SampleInterval time.Duration
	// ActionTimeout bounds one apply, deploy, rollback or replace (default 30m).
	ActionTimeout time.Duration
	// MaxBody bounds a request body (default 64 KiB).
	MaxBody int64
}

// Server serves the API, /metrics and the web interface.
type Server struct {
	o       Options
	logger  *slog.Logger
	token   [32]byte
	handler http.Handler
	ready   *readyHistory

	actCtx    context.Context
	actCancel context.CancelFunc
	actWG     sync.WaitGroup
	actMu     sync.Mutex
	action    *ActionStatus
}

// ActionStatus is the latest apply, deploy, rollback or replace: running,
// or finished with its outcome.
type ActionStatus struct {
	Kind string `json:"kind"` // apply, deploy, rollback or replace
	App  string `json:"app,omitempty"`
	// Revision is the revision deployed, or rolled back to.
	Revision string `json:"revision,omitempty"`
	// Labels are the hosts a replace gives new ones.
	Labels []string `json:"labels,omitempty"`
	// DiscardData and Reason are a replace's: hosts whose backup fails
	// are terminated all the same, for that reason.
	DiscardData bool       `json:"discard_data,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Started     time.Time  `json:"started"`
	Finished    *time.Time `json:"finished,omitempty"`
	Running     bool       `json:"running"`
	Error       string     `json:"error,omitempty"`
	// Result is what a finished action did, when it says (a replace
	// does), whether it failed or not.
	Result *ActionResult `json:"result,omitempty"`
}

// ActionResult is what an action did: each host it touched and, for a
// replace that discarded data, what was lost.
type ActionResult struct {
	Hosts     []HostOutcome   `json:"hosts,omitempty"`
	Discarded []DiscardedHost `json:"discarded,omitempty"`
}

// HostOutcome is what an action did to one host.
type HostOutcome struct {
	Label      string `json:"label"`
	InstanceID string `json:"instance_id,omitempty"`
	// Action is launched, started, kept, removed or failed.
	Action string `json:"action"`
	// Reason says why a host was removed (replaced,
	// replaced-data-discarded, start-failed, ...).
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// DiscardedHost is a host a replace terminated although its drain or
// backup failed: what it wrote after the backup its replacement
// restored is lost.
type DiscardedHost struct {
	Label       string `json:"label"`
	InstanceID  string `json:"instance_id"`
	BackupError string `json:"backup_error"`
	// Restored is, for each application of the host's role, what its
	// replacement restored.
	Restored []Restore `json:"restored"`
}

// Restore is the backup a new host restored for one application. App is
// empty when the role is not stateful (it keeps no backup); Key is empty
// when there was no verified backup (the new host started empty).
type Restore struct {
	Role      string     `json:"role"`
	App       string     `json:"app,omitempty"`
	Key       string     `json:"key,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// New checks the options and returns a server.
func New(o Options) (*Server, error) {
	switch {
	case o.Token == "":
		return nil, errors.New("server: a token is required")
	case o.Decisions == nil:
		return nil, errors.New("server: Decisions is required")
	case o.Schedule == nil:
		return nil, errors.New("server: Schedule is required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 30 * time.Second
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = 30 * time.Minute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.OnOverride == nil {
		o.OnOverride = func() {}
	}
	if o.ConfigError == nil {
		o.ConfigError = func() error { return nil }
	}
	s := &Server{o: o, logger: o.Logger.With("component", "server"), token: sha256.Sum256([]byte(o.Token)),
		ready: newReadyHistory(25 * time.Hour)}
	s.actCtx, s.actCancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run samples the fleet every SampleInterval for the chart's ready line
// until ctx ends; then it cancels a running action and waits for it.
func (s *Server) Run(ctx context.Context) error {
	defer func() {
		s.actMu.Lock()
		s.actCancel() // under actMu: no action starts after this
		s.actMu.Unlock()
		s.actWG.Wait()
	}()
	for {
		s.sampleFleet(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.o.Clock.After(s.o.SampleInterval):
		}
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.auth(apiHandler(s, h)))
	}
	api("GET /api/status", s.getStatus)
	api("GET /api/fleet", s.getFleet)
	api("GET /api/roles", s.getRoles)
	api("GET /api/roles/{role}/chart", s.getChart)
	api("GET /api/decisions", s.getDecisions)
	api("GET /api/schedule", s.getSchedule)
	api("GET /api/overrides", s.getOverrides)
	api("POST /api/overrides", s.postOverride)
	api("DELETE /api/overrides/{role}", s.deleteOverride)
	api("POST /api/apply", s.postApply)
	api("POST /api/deploy", s.postDeploy)
	api("POST /api/rollback", s.postRollback)
	api("POST /api/replace", s.postReplace)
	api("GET /api/releases", s.getReleases)
	api("POST /api/samples", s.postSamples)
	mux.Handle("GET /api/health", apiHandler(s, s.getHealth))
	if s.o.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.o.Metrics, promhttp.HandlerOpts{}))
	}
	s.webRoutes(mux)
	return s.recoverer(s.headers(apiFallbacks(mux)))
}

// auth requires the bearer token, compared in constant time.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tide"`)
			msg := "missing bearer token: send Authorization: Bearer <token>"
			if ok {
				msg = "invalid token"
			}
			writeJSON(w, http.StatusUnauthorized, errorBody{msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headers sets the security headers of every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a 500 and a log line.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, errorBody{"internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// apiFallbacks answers /api/ requests that match no route with a JSON 404,
// or a JSON 405 when the path exists for other methods (the mux's own
// answers are plain text).
func apiFallbacks(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path)})
	})
}

// statusRecorder captures the status and headers of the mux's fallback handler.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

// The scheduler's loop is the service's source of decisions.
var _ Decisions = (*scheduler.Loop)(nil)

// Serve serves on ln until ctx ends, then shuts down gracefully (giving
// requests in flight up to ten seconds). The HTTP server has timeouts so
// that slow clients cannot hold connections open.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down http: %w", err)
	}
	return nil
}
