package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/server"
)

func init() {
	register(command{Name: "deploy", Summary: "roll a new revision through the fleet's hosts", Run: runDeploy})
	register(command{Name: "rollback", Summary: "return an application's hosts to the previous release", Run: runRollback})
}

const deployHelp = `Rolls a revision of an application (every application without --app)
through the hosts that run it: role by role, at most --batch hosts of a role
at a time, stopping at the first failure (the hosts not reached are left as
they were and listed as untouched). Without --revision the schedule file's
revision is rolled out.

Once every host took the revision it is recorded in the state directory
(fleets/NAME/revisions.json): later applies and the service converge new
hosts to it rather than to the schedule file's revision, until the file
names another revision than it did at the deploy. A deploy that stops
records nothing: the next apply returns its hosts to the recorded revision.

An application's artifact (artifact.path or artifact.s3) is a template of
{{.App}} and {{.Revision}}. With build/shop-{{.Revision}}.tgz every
revision's release is made from its own build, so a rollback, or a host
launched later, gets that revision's code whatever was built since; a
local artifact missing where a host lacks the release refuses the rollout,
naming the application, revision and path. An artifact that does not name
{{.Revision}} holds whatever was built last: tide takes it for the build
of the revision last deployed as new (a --revision the history does not
hold yet, or an edited schedule file's revision once applied), and makes
no other revision's release from it. Rolling out any other revision is
refused before any host changes when a host lacks its release (the hosts
are listed), and a host launched later fails to converge to it.

Backups of stateful roles go to the schedule's backups.store
(s3://bucket/prefix, or a directory relative to the schedule file); of each
role's application the newest backups.keep (default 7) are kept.
TIDE_BACKUP_STORE names the store for a schedule that names none; naming
another store than the schedule's is an error, so that every command and
tide serve back up to, and restore from, the same store. Without either,
the local and static clouds keep backups in STATE_DIR/backups. Archives
pass through STATE_DIR/spool (not TMPDIR, often a small tmpfs) on their
way to the store, and those above 64 MiB go up to S3 in parts: its disk
needs room for the largest.`

const rollbackHelp = `Returns every host of an application to an earlier release.

The state directory keeps each application's history in
fleets/NAME/revisions.json: the revisions made current by deploys,
rollbacks and applies of an edited schedule, oldest first, each once, the
newest 20 (changed under a lock, revisions.json.lock beside it, so that
commands and tide serve running at once lose none of each other's). It
is an undo stack. A rollback goes one step back from the current
revision, the next one a step further, and at the oldest it fails. A
deploy drops the revisions rolled back from and starts a new branch:
after deploying 1, 2 and 3, rolling back twice (to 1) and deploying 4,
the history is 1, 4.

--to REV goes to REV at once: a revision of the history (earlier, or one
rolled back from) and the history stays as it is; a release no longer in
the history but still on a host of the application is made current as a
deploy would be (a new branch). Any other revision is refused, with the
ones known.

--list prints the history with the current revision marked, where a
rollback would go, and each host's releases still on disk; it changes
nothing.

Hosts switch current back and restart the application's processes. Where
keep_releases pruned the release, it is deployed again from the revision's
own artifact, when the artifact names {{.Revision}}
(build/shop-{{.Revision}}.tgz; see tide deploy --help). An artifact that
does not holds another revision's build: then the rollback is refused
before any host changes, naming the hosts that lack the release. The
revision rolled back to is recorded as a deploy's is: later applies and
tide serve keep it. Without any history recorded (a state directory older
than the record tide apply keeps), the history starts from the releases on
the first host that has any.`

// deployFlags are deploy's and rollback's flags.
type deployFlags struct {
	*fleetCmd
	app, revision *string
	batch         *int
}

func newDeployFlags(fs *flag.FlagSet, e *env, withRevision bool) *deployFlags {
	d := &deployFlags{fleetCmd: fleetFlags(fs, e), app: fs.String("app", "", "application (default: all for deploy)")}
	if withRevision {
		d.revision = fs.String("revision", "", "revision to roll out (requires --app when the schedule has several applications)")
	}
	d.batch = fs.Int("batch", 1, "hosts of a role deployed at once")
	return d
}

func runDeploy(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	d := newDeployFlags(fs, e, true)
	if err := parseFlags(fs, args, deployHelp); err != nil {
		return err
	}
	if err := d.check(); err != nil {
		return err
	}
	s, f, closeFn, err := d.open(ctx, e, nil, e.Logger)
	if err != nil {
		return err
	}
	defer closeFn()
	apps, err := selectApps(s, *d.app, *d.revision != "")
	if err != nil {
		return err
	}
	revs := map[string]string{}
	for _, a := range apps {
		revs[a] = *d.revision
		if revs[a] == "" {
			sa, _ := s.Application(a)
			revs[a] = sa.Revision
		}
	}
	return d.rollout(ctx, e, s, f, revs, "deploy")
}

func runRollback(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	d := newDeployFlags(fs, e, false)
	to := fs.String("to", "", "revision to return to: one of the history or a release still on the hosts (see --list)")
	list := fs.Bool("list", false, "print the history and the releases on the hosts; roll nothing back")
	if err := parseFlags(fs, args, rollbackHelp); err != nil {
		return err
	}
	if err := d.check(); err != nil {
		return err
	}
	if *d.app == "" {
		return errors.New("--app is required")
	}
	if *list && *to != "" {
		return errors.New("--list and --to exclude each other")
	}
	s, f, closeFn, err := d.open(ctx, e, nil, e.Logger)
	if err != nil {
		return err
	}
	defer closeFn()
	app := *d.app
	if _, ok := s.Application(app); !ok {
		return fmt.Errorf("--app: no application %q in %s", app, s.File)
	}
	if *list {
		l, err := listReleases(ctx, s, d.stateDirAbs, app, d.hostReader(s, f, app))
		if err != nil {
			return err
		}
		return printReleases(e, *d.output, l)
	}
	_, err = d.rollback(ctx, e, s, f, app, *to)
	var unknown *unknownReleaseError
	if errors.As(err, &unknown) {
		return fmt.Errorf("--to %s: %w", *to, err)
	}
	return err
}

// rollback returns app's hosts to an earlier release: to, or one step
// back in the history when to is "" (appHistory.target refuses any other),
// rolled out by rolloutWith and recorded as a rollback
// (converge.Deployed.Rollback). It returns the revision rolled back to.
// tide rollback and tide serve's POST /api/rollback both run it.
func (d *deployFlags) rollback(ctx context.Context, e *env, s *config.Schedule, f *deployer.Fleet, app, to string) (string, error) {
	h, err := loadHistory(ctx, s, d.stateDirAbs, app, d.hostReader(s, f, app))
	if err != nil {
		return "", err
	}
	target, err := h.target(ctx, to)
	if err != nil {
		return "", err
	}
	return target, d.rolloutWith(ctx, e, s, f, map[string]string{app: target}, "rollback", func(rec converge.Revisions, a, rev string) converge.Deployed {
		cur := rec.Current(s, a)
		if _, ok := rec.Apps[a]; !ok {
			cur = h.hist // the history read from the hosts
		}
		return cur.Rollback(rev)
	})
}

// hostReader reads the releases of app on its hosts afresh, over SSH.
func (d *deployFlags) hostReader(s *config.Schedule, f *deployer.Fleet, app string) releaseReader {
	return func(ctx context.Context) ([]server.HostReleases, error) {
		return appReleases(ctx, s, f, app, func(ctx context.Context, hs []deployer.HostStatus) []*converge.HostState {
			return inspectHosts(ctx, s, f, hs, *d.concurrency)
		})
	}
}

// releaseReader reads the releases of an application on its hosts.
type releaseReader func(ctx context.Context) ([]server.HostReleases, error)

// appHistory is an application's history as a rollback sees it: the
// record (seeded from the hosts' releases when none was kept) and, once
// read, the releases on the hosts that run it.
type appHistory struct {
	app   string
	hist  converge.Deployed
	hosts []server.HostReleases
	read  bool
	from  releaseReader
}

// loadHistory reads app's history from the revisions file of s in
// stateDir. The hosts are read through from at most once, and only when
// needed: at once when no history was recorded (it starts from their
// releases, seedHistory).
func loadHistory(ctx context.Context, s *config.Schedule, stateDir, app string, from releaseReader) (*appHistory, error) {
	if _, ok := s.Application(app); !ok {
		return nil, fmt.Errorf("no application %q in %s", app, s.File)
	}
	rec, err := converge.LoadRevisions(converge.RevisionsPath(stateDir, s.Name))
	if err != nil {
		return nil, err
	}
	h := &appHistory{app: app, hist: rec.Current(s, app), from: from}
	if _, recorded := rec.Apps[app]; !recorded {
		if err := h.readHosts(ctx); err != nil {
			return nil, err
		}
		h.hist = seedHistory(h.hist, h.hosts)
	}
	return h, nil
}

func (h *appHistory) readHosts(ctx context.Context) error {
	if h.read {
		return nil
	}
	hosts, err := h.from(ctx)
	if err != nil {
		return err
	}
	h.hosts, h.read = hosts, true
	return nil
}

// target returns where a rollback goes: one step back when to is "";
// otherwise to, when the history or a host holds it. It fails at the
// oldest revision of the history, and for an unknown to with an
// *unknownReleaseError.
func (h *appHistory) target(ctx context.Context, to string) (string, error) {
	if to == "" {
		back, ok := h.hist.Back()
		if !ok {
			return "", fmt.Errorf("no earlier release of %s recorded: %s is the oldest of its history (tide rollback --list shows it)", h.app, h.hist.Revision)
		}
		return back, nil
	}
	if revs, _ := h.hist.Branch(); slices.Contains(revs, to) {
		return to, nil
	}
	if err := h.readHosts(ctx); err != nil {
		return "", err
	}
	if onHosts(h.hosts, to) {
		return to, nil
	}
	u := &unknownReleaseError{app: h.app, known: knownRevisions(h.hist, h.hosts)}
	for _, hr := range h.hosts {
		if !hr.Answered {
			u.unread = append(u.unread, hr.Label)
		}
	}
	return "", u
}

// unknownReleaseError is a rollback to a revision neither the history nor
// a host holds.
type unknownReleaseError struct {
	app           string
	unread, known []string
}

func (e *unknownReleaseError) Error() string {
	unread := ""
	if len(e.unread) > 0 {
		unread = " (not read: " + strings.Join(e.unread, " ") + ")"
	}
	return fmt.Sprintf("no such release of %s, recorded or on its hosts%s; known: %s", e.app, unread, strings.Join(e.known, " "))
}

// listReleases reads app's history and the releases on its hosts: what
// tide rollback --list prints. It changes nothing.
func listReleases(ctx context.Context, s *config.Schedule, stateDir, app string, from releaseReader) (server.ReleaseView, error) {
	h, err := loadHistory(ctx, s, stateDir, app, from)
	if err != nil {
		return server.ReleaseView{}, err
	}
	if err := h.readHosts(ctx); err != nil {
		return server.ReleaseView{}, err
	}
	d, hosts := h.hist, h.hosts
	if hosts == nil {
		hosts = []server.HostReleases{}
	}
	revs, cur := d.Branch()
	back, _ := d.Back()
	l := server.ReleaseView{App: app, Current: d.Revision, Rollback: back, History: []server.ReleaseRow{}, Hosts: hosts}
	for _, r := range knownRevisions(d, hosts) {
		row := server.ReleaseRow{Revision: r, State: server.ReleaseOnHostsOnly, Hosts: []string{}}
		switch i := slices.Index(revs, r); {
		case i < 0:
		case i < cur:
			row.State = server.ReleaseEarlier
		case i == cur:
			row.State = server.ReleaseCurrent
		default:
			row.State = server.ReleaseRolledBackFrom
		}
		for _, h := range hosts {
			if slices.Contains(h.Releases, r) {
				row.Hosts = append(row.Hosts, h.Label)
			}
		}
		l.History = append(l.History, row)
	}
	return l, nil
}

// appReleases reads the releases of app on each running host of its
// roles, in Status's order (by role, then label number), through inspect
// (a nil state: the host did not answer).
func appReleases(ctx context.Context, s *config.Schedule, f *deployer.Fleet, app string, inspect func(context.Context, []deployer.HostStatus) []*converge.HostState) ([]server.HostReleases, error) {
	all, err := f.Status(ctx)
	if err != nil {
		return nil, err
	}
	roles := s.RolesOf(app)
	var hs []deployer.HostStatus
	for _, h := range all {
		if h.State == fleet.StateRunning && h.Label != "" && contains(roles, h.Role) {
			hs = append(hs, h)
		}
	}
	out := make([]server.HostReleases, len(hs))
	for i, st := range inspect(ctx, hs) {
		out[i] = server.HostReleases{Label: hs[i].Label, Role: hs[i].Role, Answered: st != nil, Releases: []string{}}
		if st == nil {
			continue
		}
		if as, ok := st.App(app); ok {
			out[i].Current = as.Revision
			out[i].Releases = append(out[i].Releases, as.Releases...)
		}
	}
	return out, nil
}

// seedHistory starts a history no deploy recorded from the releases on
// the first host that has any, oldest first, the current revision last.
func seedHistory(d converge.Deployed, hosts []server.HostReleases) converge.Deployed {
	for _, h := range hosts {
		if len(h.Releases) == 0 {
			continue
		}
		revs := slices.DeleteFunc(slices.Clone(h.Releases), func(r string) bool { return r == d.Revision })
		if len(revs) == 0 {
			return d
		}
		seed := converge.Deployed{}
		for _, r := range revs {
			seed = seed.Deploy(r)
		}
		return seed.Deploy(d.Revision)
	}
	return d
}

// onHosts tells whether some host holds rev complete.
func onHosts(hosts []server.HostReleases, rev string) bool {
	for _, h := range hosts {
		if slices.Contains(h.Releases, rev) {
			return true
		}
	}
	return false
}

// knownRevisions lists the history, then the releases found only on
// hosts, in the order met.
func knownRevisions(d converge.Deployed, hosts []server.HostReleases) []string {
	known, _ := d.Branch()
	for _, h := range hosts {
		for _, r := range h.Releases {
			if !slices.Contains(known, r) {
				known = append(known, r)
			}
		}
	}
	return known
}

// printReleases is tide rollback --list.
func printReleases(e *env, output string, l server.ReleaseView) error {
	if output == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	if l.Rollback != "" {
		fmt.Fprintf(e.Stdout, "%s: current %s, a rollback goes to %s\n\n", l.App, l.Current, l.Rollback)
	} else {
		fmt.Fprintf(e.Stdout, "%s: current %s, no earlier release recorded\n\n", l.App, dash(l.Current))
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  REVISION\tHISTORY\tON HOSTS")
	for _, r := range l.History {
		mark := "  "
		if r.State == server.ReleaseCurrent {
			mark = "* "
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", mark, r.Revision, r.State, dash(strings.Join(r.Hosts, " ")))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "LABEL\tCURRENT\tRELEASES ON DISK (oldest first)")
	for _, h := range l.Hosts {
		if !h.Answered {
			fmt.Fprintf(tw, "%s\t?\t?\n", h.Label)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Label, dash(h.Current), dash(strings.Join(h.Releases, " ")))
	}
	return tw.Flush()
}

// selectApps returns the applications a deploy covers.
func selectApps(s *config.Schedule, app string, revision bool) ([]string, error) {
	if app != "" {
		if _, ok := s.Application(app); !ok {
			return nil, fmt.Errorf("--app: no application %q in %s", app, s.File)
		}
		return []string{app}, nil
	}
	if revision && len(s.Applications) != 1 {
		return nil, errors.New("--revision needs --app: the schedule has several applications")
	}
	var out []string
	for _, a := range s.Applications {
		out = append(out, a.Name)
	}
	return out, nil
}

// fleetHosts lists the fleet's running, labelled hosts.
func fleetHosts(ctx context.Context, f *deployer.Fleet) ([]fleet.Instance, error) {
	hs, err := f.Status(ctx)
	if err != nil {
		return nil, err
	}
	var out []fleet.Instance
	for _, h := range hs {
		if h.State != fleet.StateRunning || h.Label == "" || h.Address == "" {
			continue
		}
		in := h.Instance
		in.Label, in.Role = h.Label, h.Role
		out = append(out, in)
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// rollout rolls revs through the fleet and records them as deployed
// (converge.Deployed.Deploy) when every host took them.
func (d *deployFlags) rollout(ctx context.Context, e *env, s *config.Schedule, f *deployer.Fleet, revs map[string]string, what string) error {
	return d.rolloutWith(ctx, e, s, f, revs, what, func(rec converge.Revisions, app, rev string) converge.Deployed {
		return rec.Current(s, app).Deploy(rev)
	})
}

// rolloutWith rolls revs through the fleet and, when every host took
// them, records what move returns for each application: its record once
// rev is current, from the revisions file as read after the rollout.
//
// The record's move also says which revision's build each artifact that
// does not name {{.Revision}} holds (converge.Deployed.Built): a deploy of
// a revision new to the history takes the artifact to be its build; a
// rollback, or a deploy of a revision of the history, keeps the one
// recorded, so that hosts lacking the release are refused up front
// rather than given another revision's build under its name.
func (d *deployFlags) rolloutWith(ctx context.Context, e *env, s *config.Schedule, f *deployer.Fleet, revs map[string]string, what string, move func(rec converge.Revisions, app, rev string) converge.Deployed) error {
	path := converge.RevisionsPath(d.stateDirAbs, s.Name)
	before, err := converge.LoadRevisions(path)
	if err != nil {
		return err
	}
	conv := d.conv
	apps := make([]string, 0, len(revs))
	for app, rev := range revs {
		var err error
		if conv, err = conv.WithRevision(app, rev); err != nil {
			return err
		}
		if built := move(before, app, rev).ArtifactRevision(); built != "" {
			if conv, err = conv.WithArtifactRevision(app, built); err != nil {
				return err
			}
		}
		apps = append(apps, app)
	}
	sort.Strings(apps)
	hosts, err := fleetHosts(ctx, f)
	if err != nil {
		return err
	}
	res, rerr := conv.Rollout(ctx, f, hosts, apps, *d.batch)
	if *d.output == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Revisions map[string]string        `json:"revisions"`
			Hosts     []converge.RolloutResult `json:"hosts"`
		}{revs, res}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LABEL\tROLE\tINSTANCE\tRESULT\tDETAIL")
		for _, r := range res {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Label, r.Role, r.InstanceID, r.Status, r.Error)
		}
		tw.Flush()
		var parts []string
		for _, a := range apps {
			parts = append(parts, a+" "+revs[a])
		}
		fmt.Fprintf(e.Stdout, "%s %s: %d hosts\n", what, strings.Join(parts, ", "), len(res))
	}
	if rerr != nil {
		fmt.Fprintf(e.Stderr, "tide %s: %v\n", what, rerr)
		return exitError{1}
	}
	// The hosts run the revision now: record it even if ctx was canceled
	// meanwhile, or the next apply would take them back.
	now := time.Now().UTC()
	return converge.UpdateRevisions(context.WithoutCancel(ctx), path, func(rec *converge.Revisions) error {
		for _, a := range apps {
			sa, _ := s.Application(a)
			dep := move(*rec, a, revs[a])
			dep.ScheduleRevision, dep.At = sa.Revision, now
			rec.Apps[a] = dep
		}
		return nil
	})
}

// openConverger builds the converger of a schedule: the revisions tide
// deploy recorded, the backup store, an S3 presigner when an artifact is
// on S3, and .Hosts from the fleet (set once the fleet exists).
func openConverger(ctx context.Context, e *env, s *config.Schedule, stateDir, cloudName string, log *slog.Logger) (*converge.Converger, *peers, error) {
	revs, err := converge.LoadRevisions(converge.RevisionsPath(stateDir, s.Name))
	if err != nil {
		return nil, nil, err
	}
	o := converge.Options{Schedule: s, Revisions: revs.Effective(s), FetchCAFile: e.Getenv("TIDE_FETCH_CA_FILE"), Logger: log}
	s3Client := s3Clients(ctx, e, s)
	if o.Store, err = openBackupStore(e, s, stateDir, cloudName, s3Client); err != nil {
		return nil, nil, err
	}
	if o.Store != nil {
		// Backups are spooled on the state directory's disk, not in
		// TMPDIR: a database's archive does not fit in a small tmpfs.
		o.SpoolDir = filepath.Join(stateDir, "spool")
		if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating the backup spool directory: %w", err)
		}
	}
	for _, a := range s.Applications {
		if a.Artifact.S3 != "" {
			c, err := s3Client()
			if err != nil {
				return nil, nil, err
			}
			o.Presigner = c
			break
		}
	}
	p := &peers{}
	o.Peers = p.addresses
	conv, err := converge.New(o)
	if err != nil {
		return nil, nil, err
	}
	return conv, p, nil
}

// peers gives templates the fleet's addresses per role.
type peers struct {
	mu sync.Mutex
	f  *deployer.Fleet
}

func (p *peers) set(f *deployer.Fleet) {
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
}

func (p *peers) addresses(ctx context.Context) (map[string][]string, error) {
	p.mu.Lock()
	f := p.f
	p.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	hosts, err := fleetHosts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, in := range hosts { // Status orders them by role and label number
		out[in.Role] = append(out[in.Role], in.Address)
	}
	return out, nil
}

// inspectHosts reads each running host's applications over SSH; a host
// that is not running, or does not answer, has a nil entry.
func inspectHosts(ctx context.Context, s *config.Schedule, f *deployer.Fleet, hosts []deployer.HostStatus, concurrency int) []*converge.HostState {
	out := make([]*converge.HostState, len(hosts))
	sem := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for i, hs := range hosts {
		if hs.State != fleet.StateRunning || hs.Address == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			h, err := f.Connect(ctx, hs.Instance)
			if err != nil {
				return
			}
			defer h.Close()
			if st, err := converge.Inspect(ctx, h, converge.DataPath(s, hs.Instance)); err == nil {
				out[i] = &st
			}
		}()
	}
	wg.Wait()
	return out
}

// hostColumns reads each running host's applications for tide status:
// "drp=5.1.0 reports=1.3.0" and "drp=2 reports=1". Hosts that do not
// answer show "?".
func hostColumns(ctx context.Context, s *config.Schedule, f *deployer.Fleet, hosts []deployer.HostStatus, concurrency int) (revs, procs []string) {
	revs, procs = make([]string, len(hosts)), make([]string, len(hosts))
	for i, st := range inspectHosts(ctx, s, f, hosts, concurrency) {
		revs[i], procs[i] = "-", "-"
		switch {
		case hosts[i].State != fleet.StateRunning || hosts[i].Address == "":
		case st == nil:
			revs[i], procs[i] = "?", "?"
		case len(st.Apps) > 0:
			revs[i], procs[i] = revisionsOf(*st), processesOf(*st)
		}
	}
	return revs, procs
}

// revisionsOf is "drp=5.1.0 reports=1.3.0".
func revisionsOf(st converge.HostState) string {
	var r []string
	for _, a := range st.Apps {
		r = append(r, a.Name+"="+dash(a.Revision))
	}
	return strings.Join(r, " ")
}

// processesOf is "drp=2 reports=1".
func processesOf(st converge.HostState) string {
	var p []string
	for _, a := range st.Apps {
		p = append(p, fmt.Sprintf("%s=%d", a.Name, a.Running))
	}
	return strings.Join(p, " ")
}
