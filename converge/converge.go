package converge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
)

// Store is where backups go: an object store (objstore/dir, objstore/s3).
type Store interface {
	// Put writes size bytes from r under key (size -1: unknown).
	Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error)
	// Get opens the object under key; a missing one wraps objstore.ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Presigner hands out a URL a host can GET an S3 object with, without
// credentials, until ttl has passed.
type Presigner interface {
	PresignGet(ctx context.Context, bucket, key string, ttl time.Duration) (string, error)
}

// PeersFunc returns, per role, the addresses of the fleet's hosts by label
// number: what templates get as .Hosts.
type PeersFunc func(ctx context.Context) (map[string][]string, error)

// Options configure a Converger. Schedule is required.
type Options struct {
	Schedule *config.Schedule
	// Revisions override the schedule's revision per application (what
	// tide deploy persisted; see Revisions.Effective).
	Revisions map[string]string
	// Store keeps stateful roles' backups. Without it a stateful role's
	// host is never terminated and new ones start without data.
	Store Store
	// SpoolDir is where backups' archives are spooled on their way from
	// a host to the store; it needs room for the largest. Default TMPDIR
	// (often a small tmpfs).
	SpoolDir string
	// Presigner fetches s3:// artifacts; required when any has one.
	Presigner Presigner
	// Peers gives .Hosts; nil leaves it empty.
	Peers PeersFunc
	// FetchCAFile, when set, is the CA bundle curl or wget on hosts trust
	// when fetching artifacts (a private S3 endpoint, tests).
	FetchCAFile string
	// Attempts bounds how often a host's convergence is tried before it
	// is given up (and, for a host never ready, replaced). Default 3.
	Attempts int
	// RetryDelay is the first wait between attempts, doubled each time.
	// Default 1s.
	RetryDelay time.Duration
	// StopTimeout is how long processes may take to exit after their stop
	// command or SIGTERM before they get SIGKILL. Default 30s.
	StopTimeout time.Duration
	// HealthTimeout is how long health checks may keep failing after a
	// host's processes started. Default 60s.
	HealthTimeout time.Duration
	// PeersTTL is how long the result of Peers is reused. Default 5s.
	PeersTTL time.Duration
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Converger converges hosts to a schedule's applications. It is safe for
// concurrent use: the deployer converges many hosts at once.
type Converger struct {
	o     Options
	s     *config.Schedule
	apps  map[string]*app
	roles map[string]config.Role
	base  string // directory artifact paths are relative to
	clk   clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	peers    map[string][]string
	peersAt  time.Time
	peersErr error
}

var (
	_ deployer.Deployer = (*Converger)(nil)
	_ deployer.Drainer  = (*Converger)(nil)
)

// New parses every command template of the schedule and returns a
// Converger. A template that does not parse is an error naming the
// application and the command.
func New(o Options) (*Converger, error) {
	if o.Schedule == nil {
		return nil, errors.New("converge: schedule is required")
	}
	c := &Converger{o: o, s: o.Schedule, apps: map[string]*app{}, roles: map[string]config.Role{}, clk: o.Clock, log: o.Logger}
	for _, a := range o.Schedule.Applications {
		pa, err := parseApp(a)
		if err != nil {
			return nil, err
		}
		if rev, ok := o.Revisions[a.Name]; ok && rev != "" {
			pa.Revision = rev
		}
		if pa.Revision != "" {
			if err := checkName("application "+a.Name+": revision", pa.Revision); err != nil {
				return nil, err
			}
		}
		if a.Artifact.S3 != "" {
			if _, _, err := objstore.ParseS3URL(a.Artifact.S3); err != nil {
				return nil, fmt.Errorf("application %s: artifact: %w", a.Name, err)
			}
			if o.Presigner == nil {
				return nil, fmt.Errorf("application %s: artifact %s: no S3 client to presign it with", a.Name, a.Artifact.S3)
			}
		}
		c.apps[a.Name] = pa
	}
	for _, r := range o.Schedule.Roles {
		c.roles[r.Name] = r
	}
	if o.Schedule.File != "" {
		c.base = filepath.Dir(o.Schedule.File)
	}
	if c.o.Attempts <= 0 {
		c.o.Attempts = 3
	}
	if c.o.RetryDelay <= 0 {
		c.o.RetryDelay = time.Second
	}
	if c.o.StopTimeout <= 0 {
		c.o.StopTimeout = 30 * time.Second
	}
	if c.o.HealthTimeout <= 0 {
		c.o.HealthTimeout = 60 * time.Second
	}
	if c.o.PeersTTL <= 0 {
		c.o.PeersTTL = 5 * time.Second
	}
	if c.clk == nil {
		c.clk = clock.Real{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "converge")
	return c, nil
}

// Revision returns the revision the converger deploys of an application.
func (c *Converger) Revision(appName string) string {
	if a := c.apps[appName]; a != nil {
		return a.Revision
	}
	return ""
}

// WithRevision returns a converger that deploys rev of appName and is
// otherwise the same (tide deploy and rollback).
func (c *Converger) WithRevision(appName, rev string) (*Converger, error) {
	a := c.apps[appName]
	if a == nil {
		return nil, fmt.Errorf("no application %q in the schedule", appName)
	}
	if err := checkName("revision", rev); err != nil {
		return nil, err
	}
	n := &Converger{o: c.o, s: c.s, apps: map[string]*app{}, roles: c.roles, base: c.base, clk: c.clk, log: c.log}
	for k, v := range c.apps {
		n.apps[k] = v
	}
	cp := *a
	cp.Revision = rev
	n.apps[appName] = &cp
	return n, nil
}

// appsOf returns the applications a role's hosts run, in the schedule's
// order.
func (c *Converger) appsOf(role string) []*app {
	var out []*app
	for _, a := range c.s.AppsOf(role) {
		out = append(out, c.apps[a.Name])
	}
	return out
}

// target is one host being worked on.
type target struct {
	h     deployer.Host
	inst  fleet.Instance
	role  string
	label string
	data  string
	typ   string
	hosts map[string][]string
}

func (c *Converger) target(ctx context.Context, h deployer.Host, inst fleet.Instance, role string) *target {
	t := &target{h: h, inst: inst, role: role, label: inst.Label, data: DataPath(c.s, inst), typ: inst.Type}
	if t.label == "" {
		t.label = inst.Tags[fleet.TagLabel]
	}
	if t.typ == "" {
		t.typ = c.roles[role].InstanceType
	}
	if c.o.Peers != nil {
		peers, err := c.peerAddrs(ctx)
		if err != nil {
			c.log.Warn("listing peers failed, templates get no hosts", "err", err)
		}
		t.hosts = peers
	}
	return t
}

// DataPath is a host's data directory: its tide:data-path tag, else the
// schedule's data_path, else /mnt.
func DataPath(s *config.Schedule, inst fleet.Instance) string {
	if p := inst.Tags[deployer.TagDataPath]; p != "" {
		return p
	}
	if s != nil && s.DataPath != "" {
		return s.DataPath
	}
	return deployer.DefaultDataPath
}

func (c *Converger) peerAddrs(ctx context.Context) (map[string][]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peers != nil && c.clk.Now().Sub(c.peersAt) < c.o.PeersTTL {
		return c.peers, c.peersErr
	}
	p, err := c.o.Peers(ctx)
	if p == nil {
		p = map[string][]string{}
	}
	c.peers, c.peersErr, c.peersAt = p, err, c.clk.Now()
	return p, err
}

func (t *target) appDir(a string) string { return t.data + "/apps/" + a }

func (t *target) vars(a *app) Vars {
	return Vars{
		Label: t.label, Role: t.role, App: a.Name, Revision: a.Revision,
		Processes: a.processesFor(t.typ), DataPath: t.data, AppDir: t.appDir(a.Name),
		ReleaseDir: t.appDir(a.Name) + "/releases/" + a.Revision, Hosts: t.hosts,
	}
}

// Converge brings a host to the schedule: each of the role's applications
// set up, its revision deployed and current, its processes running and
// healthy. It checks everything on the host first and does only what is
// missing, so that calling it again changes nothing.
//
// A failed attempt is retried (Options.Attempts in all). When every
// attempt failed on a host that never converged before, the error wraps
// deployer.ErrReplaceHost: the deployer terminates it and the next
// reconcile launches its label again. A host that was ready keeps running
// the release it had (current is never switched to a release that did not
// deploy), and a template error is returned at once: neither is fixed by a
// new host.
func (c *Converger) Converge(ctx context.Context, h deployer.Host, inst fleet.Instance, role string) error {
	t := c.target(ctx, h, inst, role)
	delay := c.o.RetryDelay
	var err error
	ready := false
	for attempt := 1; attempt <= c.o.Attempts; attempt++ {
		ready, err = c.converge(ctx, t)
		if err == nil || isPermanent(err) || ctx.Err() != nil {
			return err
		}
		c.log.Warn("converging host failed", "label", t.label, "role", role, "attempt", attempt, "err", err)
		if attempt == c.o.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.clk.After(delay):
		}
		delay *= 2
	}
	if !ready {
		return fmt.Errorf("%w: %d attempts failed: %w", deployer.ErrReplaceHost, c.o.Attempts, err)
	}
	return fmt.Errorf("%d attempts failed: %w", c.o.Attempts, err)
}

// converge is one attempt. ready says whether the host had converged
// before.
func (c *Converger) converge(ctx context.Context, t *target) (ready bool, err error) {
	st, err := Inspect(ctx, t.h, t.data)
	if err != nil {
		return false, err
	}
	if t.label == "" {
		t.label = st.Label
	}
	apps := c.appsOf(t.role)
	var gone []AppState // applications no longer on the role, still running
	for _, as := range st.Apps {
		if !slices.ContainsFunc(apps, func(a *app) bool { return a.Name == as.Name }) && as.Running > 0 {
			gone = append(gone, as)
		}
	}
	// The first health attempt runs at the end of the last session that
	// changes the host: one SSH session fewer per deploy.
	health, err := c.healthScript(t, apps)
	if err != nil {
		return st.Ready, err
	}
	var first []byte
	for i, a := range apps {
		as, _ := st.App(a.Name)
		tail := ""
		if i == len(apps)-1 && len(gone) == 0 {
			tail = health
		}
		out, err := c.convergeApp(ctx, t, a, as, tail)
		if err != nil {
			return st.Ready, err
		}
		if tail != "" {
			first = out
		}
	}
	// Applications no longer on the role: stop their processes, keep files.
	for _, as := range gone {
		c.log.Info("stopping application no longer on the role", "label", t.label, "app", as.Name)
		if err := c.stopProcs(ctx, t, c.apps[as.Name], as.Name, all(as)); err != nil {
			return st.Ready, err
		}
	}
	if err := c.health(ctx, t, apps, health, first); err != nil {
		return st.Ready, err
	}
	if !st.Ready {
		if _, err := t.h.Run(ctx, fmt.Sprintf("mkdir -p %[1]s/.tide && : > %[1]s/.tide/ready", shellQuote(t.data)), nil); err != nil {
			return false, fmt.Errorf("marking host ready: %w", err)
		}
	}
	return st.Ready, nil
}

func all(as AppState) []int {
	out := make([]int, 0, len(as.procs))
	for i := range as.procs {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// convergeApp does what one application lacks on the host. When it runs
// a script that changes the host, tail (a health attempt), when not empty,
// is appended to it, and the script's output returned.
func (c *Converger) convergeApp(ctx context.Context, t *target, a *app, as AppState, tail string) ([]byte, error) {
	if a.Revision == "" {
		return nil, fmt.Errorf("application %s: %w: no revision", a.Name, errConfig)
	}
	v := t.vars(a)
	log := c.log.With("label", t.label, "app", a.Name)

	// Setup, once per setup command.
	setup, err := a.render(cmdSetup, v)
	if err != nil {
		return nil, err
	}
	if sh := hash(setup); as.setup != sh {
		log.Info("setting up")
		script := fmt.Sprintf("mkdir -p %[1]s && cd %[1]s && %[2]s && printf '%%s\\n' %[3]s > .tide-setup",
			shellQuote(v.AppDir), runCmd(setup, v.env()), sh)
		if _, err := t.h.Run(ctx, script, nil); err != nil {
			return nil, fmt.Errorf("application %s: setup: %w", a.Name, err)
		}
	}

	// The release, complete before current may point to it. Unless data
	// is to be restored in between, the release script and the switch run
	// in one session (one SSH round trip and one shell fewer per host):
	// the script stops at the first failure, before the switch.
	var release string
	var stdin io.Reader
	if !as.complete[a.Revision] {
		log.Info("deploying release", "revision", a.Revision)
		if c.roles[t.role].Stateful && !as.restored {
			if err := c.deployRelease(ctx, t, a, v); err != nil {
				return nil, fmt.Errorf("application %s: deploying %s: %w", a.Name, a.Revision, err)
			}
		} else {
			script, in, err := c.releaseScript(ctx, a, v)
			if err != nil {
				return nil, fmt.Errorf("application %s: deploying %s: %w", a.Name, a.Revision, err)
			}
			defer in.Close()
			release, stdin = script, in
		}
		if as.complete == nil {
			as.complete = map[string]bool{}
		}
		as.complete[a.Revision] = true
	}

	// A stateful role's new host gets its data back before it starts.
	if c.roles[t.role].Stateful && !as.restored {
		if err := c.restore(ctx, t, a, v); err != nil {
			return nil, fmt.Errorf("application %s: restoring: %w", a.Name, err)
		}
	}

	// One script: switch current, restart what changed, drop old releases.
	var b strings.Builder
	if as.Revision != a.Revision {
		log.Info("switching current", "from", as.Revision, "to", a.Revision)
		fmt.Fprintf(&b, "cd %s || exit 1\nln -sfn releases/%s .current.tmp && mv -T .current.tmp current && printf '%%s\\n' %[2]s >> history || exit 1\n",
			shellQuote(v.AppDir), shellQuote(a.Revision))
		as.History = append(as.History, a.Revision)
	}
	procs, err := c.processes(t, a, v, as)
	if err != nil {
		return nil, err
	}
	b.WriteString(procs)
	b.WriteString(c.prune(t, a, as))
	if release == "" && b.Len() == 0 {
		return nil, nil
	}
	script := release + b.String()
	if tail != "" {
		script = withHealth(script, tail)
	}
	out, err := t.h.Run(ctx, script, stdin)
	if err != nil {
		if release != "" && !hasLine(out, releasedMark) {
			return nil, fmt.Errorf("application %s: deploying %s: %w", a.Name, a.Revision, err)
		}
		return nil, fmt.Errorf("application %s: switching to %s and starting processes: %w", a.Name, a.Revision, err)
	}
	c.logKilled(t, a.Name, out)
	return out, nil
}

// hasLine says whether out holds line as a whole line.
func hasLine(out []byte, line string) bool {
	for _, l := range strings.Split(string(out), "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// runCmd is a shell fragment that runs cmd with env set and stdin closed.
// The variables are assignments before the command (not env(1): one exec
// fewer per command).
func runCmd(cmd string, env []string) string {
	if strings.TrimSpace(cmd) == "" {
		return ":"
	}
	return envAssigns(env) + " /bin/sh -c " + shellQuote(cmd) + " </dev/null"
}

// envAssigns returns NAME='value' words for env's NAME=value entries,
// which the shell exports to the command they precede.
func envAssigns(env []string) string {
	q := make([]string, len(env))
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		q[i] = k + "=" + shellQuote(v)
	}
	return strings.Join(q, " ")
}

// prune returns a script fragment that removes releases beyond
// keep_releases (the oldest deployed first), never current, and incomplete
// ones.
func (c *Converger) prune(t *target, a *app, as AppState) string {
	keep := a.KeepReleases
	if keep <= 0 {
		keep = config.DefaultKeepReleases
	}
	var drop []string
	for r, ok := range as.complete {
		if !ok && r != a.Revision {
			drop = append(drop, r)
		}
	}
	// Recompute the order with the switch just made.
	as.Releases = nil
	st := as
	st.Revision = a.Revision
	rels := orderReleases(st)
	if extra := len(rels) - keep; extra > 0 {
		for _, r := range rels[:extra] {
			if r != a.Revision {
				drop = append(drop, r)
			}
		}
	}
	if len(drop) == 0 {
		return ""
	}
	sort.Strings(drop)
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s/releases || exit 1\n", shellQuote(t.appDir(a.Name)))
	for _, r := range drop {
		fmt.Fprintf(&b, "rm -rf %s || exit 1\n", shellQuote(r))
	}
	return b.String()
}

// orderReleases lists complete releases, oldest deployed first.
func orderReleases(as AppState) []string {
	last := map[string]int{}
	for j, r := range as.History {
		last[r] = j
	}
	var out []string
	for r, ok := range as.complete {
		if ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(x, y int) bool {
		rx, okx := last[out[x]]
		ry, oky := last[out[y]]
		if okx != oky {
			return okx
		}
		if rx != ry {
			return rx < ry
		}
		return out[x] < out[y]
	})
	return out
}

// healthScript is the script of one health attempt: every application's
// health check from its directory, then the host's state. It exits
// non-zero when a check fails.
func (c *Converger) healthScript(t *target, apps []*app) (string, error) {
	var b strings.Builder
	// The checks run from each application's directory, in this shell
	// (cd and back, not a subshell: one fork fewer per check).
	b.WriteString("H=$PWD\n")
	for _, a := range apps {
		v := t.vars(a)
		cmd, err := a.render(cmdHealth, v)
		if err != nil {
			return "", err
		}
		if cmd != "" {
			fmt.Fprintf(&b, "cd %s && %s >/dev/null || { echo %s >&2; exit 1; }\n", shellQuote(v.AppDir), runCmd(cmd, v.env()),
				shellQuote("application "+a.Name+": health check failed"))
		}
	}
	b.WriteString("cd \"$H\" || exit 1\nD=" + shellQuote(t.data) + "\n" + probeScript)
	return b.String(), nil
}

// healthMark starts the output of a health attempt run at the end of
// another script; healthExit, followed by its exit status, ends it.
const (
	healthMark = "--- tide health attempt"
	healthExit = "--- tide health exit "
)

// withHealth appends a health attempt to script. The attempt runs in a
// subshell after the script succeeded, and its failure does not fail the
// script: healthAttempt reads how it went from the output.
func withHealth(script, health string) string {
	return "tide_home=$PWD\n" + script + "echo '" + healthMark + "'\n(\nset +e\ncd \"$tide_home\" || exit 1\n" + health + ")\necho \"" + healthExit + "$?\"\n"
}

// healthAttempt returns what the health attempt withHealth appended wrote
// and whether it passed. ok is false when out holds no complete attempt.
func healthAttempt(out []byte) (probe string, passed, ok bool) {
	s := string(out)
	i := strings.LastIndex(s, "\n"+healthMark+"\n")
	if i < 0 {
		if !strings.HasPrefix(s, healthMark+"\n") {
			return "", false, false
		}
		i = -1
	}
	rest := s[i+len(healthMark)+2:]
	j := strings.LastIndex(rest, healthExit)
	if j < 0 {
		return "", false, false
	}
	status := strings.TrimSpace(rest[j+len(healthExit):])
	return rest[:j], status == "0", true
}

// health runs script (healthScript's) until the checks pass or the
// health timeout passes; then it checks that every process still runs.
// first, when not empty, is the output of an attempt that already ran at
// the end of the deploy's script: when it passed, no further attempt is
// made.
func (c *Converger) health(ctx context.Context, t *target, apps []*app, script string, first []byte) error {
	var out []byte
	probe, passed, ok := healthAttempt(first)
	if ok && passed {
		out = []byte(probe)
	} else {
		deadline := c.clk.Now().Add(c.o.HealthTimeout)
		wait := 50 * time.Millisecond
		if ok {
			// The attempt at the end of the deploy failed: give the
			// application the first wait before the next one.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.clk.After(wait):
			}
		}
		for {
			var err error
			out, err = t.h.Run(ctx, script, nil)
			if err == nil {
				break
			}
			if !c.clk.Now().Add(wait).Before(deadline) {
				return fmt.Errorf("health check failing after %s: %w", c.o.HealthTimeout, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.clk.After(wait):
			}
			wait = min(wait*2, time.Second)
		}
	}
	st, err := parseProbe(string(out))
	if err != nil {
		return err
	}
	for _, a := range apps {
		as, _ := st.App(a.Name)
		if want := a.processesFor(t.typ); as.Running != want {
			return fmt.Errorf("application %s: %d of %d processes running after start%s", a.Name, as.Running, want, c.logTail(ctx, t, a, as))
		}
	}
	return nil
}

// logTail returns the end of the log of a process that died, for errors.
func (c *Converger) logTail(ctx context.Context, t *target, a *app, as AppState) string {
	for _, i := range all(as) {
		if !as.procs[i].alive {
			out, err := t.h.Run(ctx, fmt.Sprintf("tail -c 300 %s/logs/%d.log 2>/dev/null || true", shellQuote(t.appDir(a.Name)), i), nil)
			if err == nil && len(out) > 0 {
				return fmt.Sprintf(" (process %d's log ends: %q)", i, strings.TrimSpace(string(out)))
			}
		}
	}
	return ""
}
