package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/scheduler"
)

// httpError is an error with the status the client gets.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error string `json:"error"`
}

// apiHandler adapts a handler that returns an error: an *httpError goes to
// the client as is; any other error is logged and answered with a 500 that
// names what failed but none of its internals.
func apiHandler(s *Server, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if errors.As(err, &he) {
			if he.status >= 500 {
				s.logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", he.status, "err", err)
			}
			writeJSON(w, he.status, errorBody{he.msg})
			return
		}
		s.logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

// decode reads one JSON value strictly: bounded size, no unknown fields,
// nothing after the value.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.o.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "request body is empty: send a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errorf(http.StatusBadRequest, "request body is not valid JSON: it ends in the middle of a value")
		case errors.As(err, &syntax):
			return errorf(http.StatusBadRequest, "request body is not valid JSON at byte %d: %v", syntax.Offset, err)
		case errors.As(err, &typ):
			return errorf(http.StatusBadRequest, "field %q must be of type %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return errorf(http.StatusBadRequest, "request body has an %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
		}
		return errorf(http.StatusBadRequest, "request body has data after the JSON object")
	}
	return nil
}

func unavailable(what string) error {
	return errorf(http.StatusNotImplemented, "%s is not available in this server", what)
}

// roleInfo returns the role of the schedule in force, or a 400/404 naming
// the known roles.
func (s *Server) roleInfo(name string, status int) (RoleInfo, error) {
	roles := s.o.Schedule.Roles()
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		if r.Name == name {
			return r, nil
		}
		names = append(names, r.Name)
	}
	if name == "" {
		return RoleInfo{}, errorf(status, "role is required (one of %s)", strings.Join(names, ", "))
	}
	return RoleInfo{}, errorf(status, "unknown role %q (known roles: %s)", name, strings.Join(names, ", "))
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) error {
	return ok(w, map[string]string{"status": "ok"})
}

type statusView struct {
	Name        string        `json:"name,omitempty"`
	Now         time.Time     `json:"now"`
	LastStep    *time.Time    `json:"last_step,omitempty"`
	ApplyError  string        `json:"apply_error,omitempty"`
	ConfigError string        `json:"config_error,omitempty"`
	Action      *ActionStatus `json:"action,omitempty"`
	Features    []string      `json:"features"`
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) error {
	_, last, applyErr := s.o.Decisions.Last()
	v := statusView{Name: s.o.Name, Now: s.o.Clock.Now(), Action: s.actionStatus(), Features: s.features()}
	if !last.IsZero() {
		v.LastStep = &last
	}
	if applyErr != nil {
		v.ApplyError = applyErr.Error()
	}
	if err := s.o.ConfigError(); err != nil {
		v.ConfigError = err.Error()
	}
	return ok(w, v)
}

// features lists the optional parts this server has, so the page hides
// what it cannot do.
func (s *Server) features() []string {
	var f []string
	add := func(on bool, name string) {
		if on {
			f = append(f, name)
		}
	}
	add(s.o.History != nil, "history")
	add(s.o.Overrides != nil, "overrides")
	add(s.o.Fleet != nil, "fleet")
	add(s.o.Forecasts != nil, "forecasts")
	add(s.o.Actions != nil, "actions")
	add(s.o.Releases != nil, "releases")
	add(s.o.Samples != nil, "samples")
	add(s.o.Metrics != nil, "metrics")
	return f
}

func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) error {
	if s.o.Fleet == nil {
		return unavailable("the fleet")
	}
	hosts, err := s.o.Fleet.Hosts(r.Context())
	if err != nil {
		return errorf(http.StatusBadGateway, "listing the fleet: %v", err)
	}
	s.ready.observe(s.o.Clock.Now(), s.o.Schedule.Roles(), hosts)
	sort.SliceStable(hosts, func(i, j int) bool {
		if hosts[i].Role != hosts[j].Role {
			return hosts[i].Role < hosts[j].Role
		}
		return labelLess(hosts[i].Label, hosts[j].Label)
	})
	if hosts == nil {
		hosts = []Host{}
	}
	return ok(w, map[string]any{"hosts": hosts})
}

// labelLess orders web-2 before web-10.
func labelLess(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, '-'), strings.LastIndexByte(b, '-')
	if ia > 0 && ib > 0 && a[:ia] == b[:ib] {
		na, ea := strconv.Atoi(a[ia+1:])
		nb, eb := strconv.Atoi(b[ib+1:])
		if ea == nil && eb == nil {
			return na < nb
		}
	}
	return a < b
}

type roleView struct {
	RoleInfo
	Decision *scheduler.Record   `json:"decision,omitempty"`
	Summary  string              `json:"summary,omitempty"`
	Override *scheduler.Override `json:"override,omitempty"`
}

func (s *Server) getRoles(w http.ResponseWriter, r *http.Request) error {
	recs, last, applyErr := s.o.Decisions.Last()
	byRole := map[string]scheduler.Record{}
	for _, rec := range recs {
		byRole[rec.Role] = rec
	}
	ovs := map[string]scheduler.Override{}
	if s.o.Overrides != nil {
		list, err := s.o.Overrides.Overrides(s.o.Clock.Now())
		if err != nil {
			return fmt.Errorf("listing overrides: %w", err)
		}
		for _, o := range list {
			ovs[o.Role] = o
		}
	}
	roles := s.o.Schedule.Roles()
	out := make([]roleView, 0, len(roles))
	for _, ri := range roles {
		v := roleView{RoleInfo: ri}
		if rec, found := byRole[ri.Name]; found {
			v.Decision, v.Summary = &rec, rec.Summary()
		}
		if o, found := ovs[ri.Name]; found {
			v.Override = &o
		}
		out = append(out, v)
	}
	resp := map[string]any{"roles": out}
	if !last.IsZero() {
		resp["last_step"] = last
	}
	if applyErr != nil {
		resp["apply_error"] = applyErr.Error()
	}
	if err := s.o.ConfigError(); err != nil {
		resp["config_error"] = err.Error()
	}
	return ok(w, resp)
}

const maxDecisions = 1000

func (s *Server) getDecisions(w http.ResponseWriter, r *http.Request) error {
	if s.o.History == nil {
		return unavailable("decision history")
	}
	q := r.URL.Query()
	role := q.Get("role")
	if role != "" {
		if _, err := s.roleInfo(role, http.StatusBadRequest); err != nil {
			return err
		}
	}
	now := s.o.Clock.Now()
	since := now.Add(-24 * time.Hour)
	if v := q.Get("since"); v != "" {
		t, err := parseSince(v, now)
		if err != nil {
			return errorf(http.StatusBadRequest, "since: %v", err)
		}
		since = t
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDecisions {
			return errorf(http.StatusBadRequest, "limit must be a whole number from 1 to %d, not %q", maxDecisions, v)
		}
		limit = n
	}
	changes := false
	if v := q.Get("changes"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "changes must be true or false, not %q", v)
		}
		changes = b
	}
	fetch := limit
	if changes {
		fetch = 0 // filtered below; bounded by since
	}
	recs, err := s.o.History.Decisions(role, since, fetch)
	if err != nil {
		return fmt.Errorf("reading decisions: %w", err)
	}
	if changes {
		recs = changesOnly(recs)
	}
	if len(recs) > limit {
		recs = recs[:limit]
	}
	if recs == nil {
		recs = []scheduler.Record{}
	}
	return ok(w, map[string]any{"decisions": recs})
}

// changesOnly keeps, of decisions newest first, those that changed the
// count or the winner of their role (and each role's oldest one).
func changesOnly(recs []scheduler.Record) []scheduler.Record {
	older := map[string]scheduler.Record{}
	keep := make([]bool, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		prev, seen := older[rec.Role]
		keep[i] = !seen || rec.Desired != rec.Previous || rec.Desired != prev.Desired || rec.Winner != prev.Winner
		older[rec.Role] = rec
	}
	out := recs[:0:0]
	for i, rec := range recs {
		if keep[i] {
			out = append(out, rec)
		}
	}
	return out
}

// parseSince takes an RFC 3339 time or a duration back from now ("6h").
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("duration %q is negative", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time or a duration like 6h, got %q", v)
	}
	return t, nil
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) error {
	wk, err := s.o.Schedule.Week(s.o.Clock.Now())
	if err != nil {
		return fmt.Errorf("computing the week's schedule: %w", err)
	}
	if wk.Hours == nil {
		wk.Hours = []WeekHour{}
	}
	return ok(w, wk)
}

func (s *Server) getOverrides(w http.ResponseWriter, r *http.Request) error {
	if s.o.Overrides == nil {
		return unavailable("overrides")
	}
	list, err := s.o.Overrides.Overrides(s.o.Clock.Now())
	if err != nil {
		return fmt.Errorf("listing overrides: %w", err)
	}
	if list == nil {
		list = []scheduler.Override{}
	}
	return ok(w, map[string]any{"overrides": list})
}

// OverrideRequest is the body of POST /api/overrides. Exactly one of For
// (a duration like "2h") and Until (RFC 3339) sets the expiry; Kind
// defaults to pin.
type OverrideRequest struct {
	Role         string                 `json:"role"`
	Count        *int                   `json:"count"`
	Kind         scheduler.OverrideKind `json:"kind"`
	For          string                 `json:"for"`
	Until        string                 `json:"until"`
	Reason       string                 `json:"reason"`
	IgnoreLimits bool                   `json:"ignore_limits"`
}

// maxOverrideCount bounds a count even with ignore_limits: a typo must not
// launch thousands of machines.
const maxOverrideCount = 1000

// maxOverrideFor bounds how long an override may last.
const maxOverrideFor = 90 * 24 * time.Hour

func (s *Server) postOverride(w http.ResponseWriter, r *http.Request) error {
	if s.o.Overrides == nil {
		return unavailable("overrides")
	}
	var req OverrideRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	info, err := s.roleInfo(req.Role, http.StatusBadRequest)
	if err != nil {
		return err
	}
	now := s.o.Clock.Now()
	if req.Count == nil {
		return errorf(http.StatusBadRequest, "count is required")
	}
	count := *req.Count
	if count > maxOverrideCount {
		return errorf(http.StatusBadRequest, "count %d is above the most an override may ask for (%d)", count, maxOverrideCount)
	}
	if !req.IgnoreLimits && count >= 0 && (count < info.Min || count > info.Max) {
		return errorf(http.StatusBadRequest, "count %d is outside %s's limits %d..%d: set ignore_limits to go beyond them", count, info.Name, info.Min, info.Max)
	}
	if req.Kind == "" {
		req.Kind = scheduler.Pin
	}
	var until time.Time
	switch {
	case req.For != "" && req.Until != "":
		return errorf(http.StatusBadRequest, "give either for or until, not both")
	case req.For != "":
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 {
			return errorf(http.StatusBadRequest, "for must be a positive duration like 30m or 2h, not %q", req.For)
		}
		until = now.Add(d)
	case req.Until != "":
		t, err := time.Parse(time.RFC3339, req.Until)
		if err != nil {
			return errorf(http.StatusBadRequest, "until must be an RFC 3339 time like 2025-03-01T18:00:00Z, not %q", req.Until)
		}
		until = t
	default:
		return errorf(http.StatusBadRequest, "for (a duration) or until (a time) is required")
	}
	if until.Sub(now) > maxOverrideFor {
		return errorf(http.StatusBadRequest, "an override may last at most %s", maxOverrideFor)
	}
	if len(req.Reason) > 500 {
		return errorf(http.StatusBadRequest, "reason is longer than 500 characters")
	}
	o := scheduler.Override{Role: info.Name, Kind: req.Kind, Count: count, Until: until, Reason: strings.TrimSpace(req.Reason),
		IgnoreLimits: req.IgnoreLimits, CreatedAt: now, CreatedBy: "api"}
	if err := o.Validate(now); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.o.Overrides.PutOverride(o); err != nil {
		return fmt.Errorf("storing the override: %w", err)
	}
	s.logger.Info("override set", "role", o.Role, "kind", string(o.Kind), "count", o.Count, "until", o.Until)
	s.o.OnOverride()
	writeJSON(w, http.StatusCreated, o)
	return nil
}

func (s *Server) deleteOverride(w http.ResponseWriter, r *http.Request) error {
	if s.o.Overrides == nil {
		return unavailable("overrides")
	}
	role := r.PathValue("role")
	if _, err := s.roleInfo(role, http.StatusNotFound); err != nil {
		return err
	}
	found, err := s.o.Overrides.DeleteOverride(role)
	if err != nil {
		return fmt.Errorf("clearing the override of %s: %w", role, err)
	}
	if !found {
		return errorf(http.StatusNotFound, "role %s has no override", role)
	}
	s.logger.Info("override cleared", "role", role)
	s.o.OnOverride()
	return ok(w, map[string]any{"cleared": role})
}

func (s *Server) postApply(w http.ResponseWriter, r *http.Request) error {
	if s.o.Actions == nil {
		return unavailable("apply")
	}
	var req struct{}
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &req); err != nil {
			return err
		}
	}
	st, err := s.startAction(ActionStatus{Kind: "apply"}, noResult(s.o.Actions.Apply))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

// DeployRequest is the body of POST /api/deploy.
type DeployRequest struct {
	App      string `json:"app"`
	Revision string `json:"revision"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/@:+-]{0,199}$`)

func (s *Server) postDeploy(w http.ResponseWriter, r *http.Request) error {
	if s.o.Actions == nil {
		return unavailable("deploy")
	}
	var req DeployRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := s.knownApp(req.App); err != nil {
		return err
	}
	if !namePattern.MatchString(req.Revision) {
		return errorf(http.StatusBadRequest, "revision must be letters, digits and ._/@:+- (up to 200), not %q", req.Revision)
	}
	st, err := s.startAction(ActionStatus{Kind: "deploy", App: req.App, Revision: req.Revision},
		noResult(func(ctx context.Context) error { return s.o.Actions.Deploy(ctx, req.App, req.Revision) }))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

// knownApp checks that name is a well-formed name of an application of
// the schedule in force, or returns a 400 naming the known ones.
func (s *Server) knownApp(name string) error {
	var apps []string
	for _, ri := range s.o.Schedule.Roles() {
		for _, a := range ri.Apps {
			if !slices.Contains(apps, a) {
				apps = append(apps, a)
			}
		}
	}
	switch {
	case name == "":
		return errorf(http.StatusBadRequest, "app is required (known apps: %s)", strings.Join(apps, ", "))
	case !namePattern.MatchString(name):
		return errorf(http.StatusBadRequest, "app must be a name of letters, digits and ._/@:+- (up to 200), not %q", name)
	case !slices.Contains(apps, name):
		return errorf(http.StatusBadRequest, "unknown app %q (known apps: %s)", name, strings.Join(apps, ", "))
	}
	return nil
}

// RollbackRequest is the body of POST /api/rollback. To is a revision of
// the application's history (GET /api/releases) or a release still on its
// hosts; without it the rollback goes one step back.
type RollbackRequest struct {
	App string `json:"app"`
	To  string `json:"to"`
}

// postRollback starts a rollback. With Releases, the revision is resolved
// and checked before it starts, so that a rollback that cannot be is
// refused at once (409 at the oldest revision, 400 for an unknown one) and
// the action's status names the revision it goes to; the action is given
// that revision, the one the client was told, even should the history
// move meanwhile.
func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) error {
	if s.o.Actions == nil {
		return unavailable("rollback")
	}
	var req RollbackRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := s.knownApp(req.App); err != nil {
		return err
	}
	if req.To != "" && !namePattern.MatchString(req.To) {
		return errorf(http.StatusBadRequest, "to must be a revision of letters, digits and ._/@:+- (up to 200), not %q", req.To)
	}
	to := req.To
	if s.o.Releases != nil {
		if err := s.actionRunning(); err != nil {
			return err // before reading the hosts
		}
		v, err := s.o.Releases.Releases(r.Context(), req.App)
		if err != nil {
			return errorf(http.StatusBadGateway, "reading the releases of %s: %v", req.App, err)
		}
		if to, err = v.target(req.To); err != nil {
			return err
		}
	}
	st, err := s.startAction(ActionStatus{Kind: "rollback", App: req.App, Revision: to},
		noResult(func(ctx context.Context) error { return s.o.Actions.Rollback(ctx, req.App, to) }))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

// ReplaceRequest is the body of POST /api/replace, and what
// Actions.Replace is given once it is checked. Labels name the hosts
// (role-N of the schedule's roles); DiscardData, for a dead host, needs a
// Reason.
type ReplaceRequest struct {
	Labels      []string `json:"labels"`
	DiscardData bool     `json:"discard_data"`
	Reason      string   `json:"reason"`
}

// maxReplaceLabels bounds the hosts one replace may name.
const maxReplaceLabels = 100

// postReplace starts a replace of the named hosts. The labels are checked
// against the schedule's roles; whether a host holds each is the fleet's
// to say (the action fails naming the fleet's labels).
func (s *Server) postReplace(w http.ResponseWriter, r *http.Request) error {
	if s.o.Actions == nil {
		return unavailable("replace")
	}
	var req ReplaceRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if err := s.checkReplace(&req); err != nil {
		return err
	}
	st, err := s.startAction(ActionStatus{Kind: "replace", Labels: req.Labels, DiscardData: req.DiscardData, Reason: req.Reason},
		func(ctx context.Context) (*ActionResult, error) { return s.o.Actions.Replace(ctx, req) })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

// checkReplace refuses, with a 400, a replace without labels, with a label
// that is not role-N of a role of the schedule in force or named twice, of
// a fixed role (tide neither launches nor terminates its hosts), or that
// discards data without a reason.
func (s *Server) checkReplace(req *ReplaceRequest) error {
	roles := s.o.Schedule.Roles()
	names := make([]string, 0, len(roles))
	fixed := map[string]bool{}
	for _, ri := range roles {
		names = append(names, ri.Name)
		fixed[ri.Name] = ri.Fixed
	}
	switch {
	case len(req.Labels) == 0:
		return errorf(http.StatusBadRequest, "labels is required: name the hosts to replace, like %s-1", firstOr(names, "web"))
	case len(req.Labels) > maxReplaceLabels:
		return errorf(http.StatusBadRequest, "a replace may name at most %d hosts, not %d", maxReplaceLabels, len(req.Labels))
	case req.DiscardData && req.Reason == "":
		return errorf(http.StatusBadRequest, "discard_data needs a reason: say why the data since the newest backup may go")
	case len(req.Reason) > 500:
		return errorf(http.StatusBadRequest, "reason is longer than 500 characters")
	}
	seen := map[string]bool{}
	for _, l := range req.Labels {
		role, n, ok := fleet.ParseLabel(l)
		switch {
		case !ok || fleet.Label(role, n) != l || !namePattern.MatchString(l):
			return errorf(http.StatusBadRequest, "label must be a role and a number like %s-1, not %q", firstOr(names, "web"), l)
		case !slices.Contains(names, role):
			return errorf(http.StatusBadRequest, "label %q: unknown role %q (known roles: %s)", l, role, strings.Join(names, ", "))
		case fixed[role]:
			return errorf(http.StatusBadRequest, "label %q: role %s's hosts are fixed: tide neither launches nor terminates them (replace the machine, then change its address in the schedule file)", l, role)
		case seen[l]:
			return errorf(http.StatusBadRequest, "label %q is named twice", l)
		}
		seen[l] = true
	}
	return nil
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// target returns where a rollback of v goes: to when v knows it, or with
// to empty the revision before the current one.
func (v ReleaseView) target(to string) (string, error) {
	if to == "" {
		switch {
		case v.Rollback != "":
			return v.Rollback, nil
		case v.Current == "":
			return "", errorf(http.StatusConflict, "no release of %s recorded: there is nothing to roll back", v.App)
		}
		return "", errorf(http.StatusConflict, "no earlier release of %s recorded: %s is the oldest of its history", v.App, v.Current)
	}
	known := make([]string, 0, len(v.History))
	for _, row := range v.History {
		if row.Revision == to {
			return to, nil
		}
		known = append(known, row.Revision)
	}
	var unread []string
	for _, h := range v.Hosts {
		if !h.Answered {
			unread = append(unread, h.Label)
		}
	}
	also := ""
	if len(unread) > 0 {
		also = " (not read: " + strings.Join(unread, ", ") + ")"
	}
	return "", errorf(http.StatusBadRequest, "no release %q of %s, recorded or on its hosts%s; known: %s", to, v.App, also, strings.Join(known, ", "))
}

// getReleases is an application's release history and the releases on
// its hosts: GET /api/releases?app=NAME.
func (s *Server) getReleases(w http.ResponseWriter, r *http.Request) error {
	if s.o.Releases == nil {
		return unavailable("the release history")
	}
	app := r.URL.Query().Get("app")
	if err := s.knownApp(app); err != nil {
		return err
	}
	v, err := s.o.Releases.Releases(r.Context(), app)
	if err != nil {
		return errorf(http.StatusBadGateway, "reading the releases of %s: %v", app, err)
	}
	if v.History == nil {
		v.History = []ReleaseRow{}
	}
	for i := range v.History {
		if v.History[i].Hosts == nil {
			v.History[i].Hosts = []string{}
		}
	}
	if v.Hosts == nil {
		v.Hosts = []HostReleases{}
	}
	for i := range v.Hosts {
		if v.Hosts[i].Releases == nil {
			v.Hosts[i].Releases = []string{}
		}
	}
	return ok(w, v)
}

// SamplesRequest is the body of POST /api/samples: load samples for one
// role; a sample without a time is taken at the server's now.
type SamplesRequest struct {
	Role    string         `json:"role"`
	Samples []SampleValues `json:"samples"`
}

// SampleValues is one pushed sample.
type SampleValues struct {
	At    *time.Time `json:"at"`
	Value float64    `json:"value"`
}

func (s *Server) postSamples(w http.ResponseWriter, r *http.Request) error {
	if s.o.Samples == nil {
		return unavailable("pushing samples")
	}
	var req SamplesRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if _, err := s.roleInfo(req.Role, http.StatusBadRequest); err != nil {
		return err
	}
	if len(req.Samples) == 0 {
		return errorf(http.StatusBadRequest, "samples is empty")
	}
	now := s.o.Clock.Now()
	for i, v := range req.Samples {
		at := now
		if v.At != nil {
			at = *v.At
		}
		if err := s.o.Samples.Push(req.Role, scheduler.Sample{At: at, Value: v.Value}); err != nil {
			return errorf(http.StatusBadRequest, "sample %d: %v", i, err)
		}
	}
	return ok(w, map[string]any{"accepted": len(req.Samples)})
}
