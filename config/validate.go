package config

import (
	"fmt"
	"math/bits"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tideops/tide/fleet"
)

// Providers are the cloud providers a schedule may name.
var Providers = []string{"local", "aws", "static"}

// SyntheticProfiles are the load shapes a synthetic source may name.
var SyntheticProfiles = []string{"office", "weekly-batch", "monthly", "spike"}

// conflictSpan is how far ahead Validate looks for exact windows that
// overlap with different counts.
const conflictSpan = 366 * 24 * time.Hour

// nameRE is what fleet, role and application names look like: they end up
// in labels ("web-3"), tags and paths on hosts.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Validate checks the schedule and returns every problem found, as
// Problems, or nil. now is the instant conflicting windows are looked for
// from (the year after it). Defaults must already be applied, as Parse and
// Load do.
func (s *Schedule) Validate(now time.Time) error {
	v := &validator{s: s}
	v.schedule(now)
	if len(v.problems) == 0 {
		return nil
	}
	sortProblems(v.problems)
	return v.problems
}

type validator struct {
	s        *Schedule
	problems Problems
}

// add reports a problem with the value at path (or, when the file does not
// set it, with the nearest thing around it that the file does set).
func (v *validator) add(path, format string, args ...any) {
	at := v.s.pos.at(path)
	v.problems = append(v.problems, Problem{File: v.s.File, Line: at.line, Col: at.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// name checks a name field: required, lower-case, short.
func (v *validator) name(p, name, what string) {
	switch {
	case name == "" && !v.s.pos.has(p):
		v.add(p, "required: the %s's name", what)
	case !nameRE.MatchString(name):
		v.add(p, "bad name %q: use 1 to 32 lower-case letters, digits and dashes, starting with a letter", name)
	}
}

func (v *validator) schedule(now time.Time) {
	s := v.s
	v.name("name", s.Name, "fleet")
	if !path.IsAbs(s.DataPath) {
		v.add("data_path", "want an absolute path, got %q", s.DataPath)
	}
	if s.Interval <= 0 {
		v.add("interval", "want a positive duration, got %s", s.Interval)
	}
	v.cloud()
	v.ssh()
	v.backups()

	apps := map[string]int{}
	for i, a := range s.Applications {
		p := index("applications", i)
		v.name(p+".name", a.Name, "application")
		if j, dup := apps[a.Name]; dup && a.Name != "" {
			v.add(p+".name", "duplicate application name %q (also applications[%d])", a.Name, j)
			continue
		}
		apps[a.Name] = i
	}
	roles := map[string]int{}
	for i, r := range s.Roles {
		p := index("roles", i)
		v.name(p+".name", r.Name, "role")
		if j, dup := roles[r.Name]; dup && r.Name != "" {
			v.add(p+".name", "duplicate role name %q (also roles[%d])", r.Name, j)
			continue
		}
		roles[r.Name] = i
	}
	if len(s.Roles) == 0 {
		v.add("roles", "required: at least one role")
	}

	for i, a := range s.Applications {
		v.application(index("applications", i), a, roles)
	}
	labels := map[string]string{}
	for i, r := range s.Roles {
		v.role(index("roles", i), r, apps, labels, now)
	}
}

func (v *validator) cloud() {
	c := v.s.Cloud
	switch c.Provider {
	case "local", "static":
	case "aws":
		if c.Region == "" {
			v.add("cloud.region", "required for the aws provider")
		}
		if c.Image == "" {
			v.add("cloud.image", "required for the aws provider: the AMI to launch")
		}
	default:
		v.add("cloud.provider", "unknown provider %q: want one of %s", c.Provider, strings.Join(Providers, ", "))
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("cloud.endpoint", "want an http or https URL, got %q", c.Endpoint)
		}
	}
	if c.BootDelay < 0 {
		v.add("cloud.boot_delay", "must not be negative, got %s", c.BootDelay)
	}
	if c.Network != "" {
		pfx, err := netip.ParsePrefix(c.Network)
		switch {
		case err != nil:
			v.add("cloud.network", "want an address range like 127.0.10.0/24, got %q", c.Network)
		case c.Provider == "local" && !(pfx.Addr().Is4() && pfx.Addr().As4()[0] == 127 && pfx.Bits() >= 8):
			v.add("cloud.network", "the local cloud's hosts listen on loopback: want a range inside 127.0.0.0/8, got %q", c.Network)
		}
	}
	for zone, subnet := range c.Subnets {
		if subnet == "" {
			v.add(field("cloud.subnets", zone), "want a subnet id")
		}
	}
}

func (v *validator) ssh() {
	c := v.s.SSH
	if c.Port < 1 || c.Port > 65535 {
		v.add("ssh.port", "want a port between 1 and 65535, got %d", c.Port)
	}
	if c.Timeout <= 0 {
		v.add("ssh.timeout", "want a positive duration, got %s", c.Timeout)
	}
	if c.Deadline <= 0 {
		v.add("ssh.deadline", "want a positive duration, got %s", c.Deadline)
	}
}

// bucketRE is what S3 bucket names look like.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (v *validator) backups() {
	b := v.s.Backups
	switch st := b.Store; {
	case strings.HasPrefix(st, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(st, "s3://"), "/")
		switch {
		case bucket == "":
			v.add("backups.store", "want s3://bucket/prefix, got %q: no bucket", st)
		case !bucketRE.MatchString(bucket) || strings.Contains(bucket, ".."):
			v.add("backups.store", "bad bucket name %q: use 3 to 63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit", bucket)
		}
		if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
			for _, seg := range strings.Split(prefix, "/") {
				if seg == "" || seg == "." || seg == ".." {
					v.add("backups.store", "bad key prefix %q: empty, . or .. segment", prefix)
					break
				}
			}
		}
	case strings.Contains(st, "://") || strings.HasPrefix(st, "s3:"):
		v.add("backups.store", "want s3://bucket/prefix or a directory, got %q", st)
	case strings.HasPrefix(st, "~"):
		v.add("backups.store", "~ is not expanded: write the directory's full path, or one relative to the schedule file")
	case st == "" && v.s.pos.has("backups.store"):
		v.add("backups.store", "must not be empty: leave it out for the default")
	}
	if b.Keep < 0 {
		v.add("backups.keep", "must not be negative, got %d (0 keeps every backup)", b.Keep)
	}
	if v.s.Cloud.Provider == "aws" && b.Store == "" {
		for i, r := range v.s.Roles {
			if r.Stateful {
				v.add(index("roles", i)+".stateful", "role %q is stateful, and nothing on aws keeps its data when its hosts go: set backups.store (s3://bucket/prefix, or a directory on tide's machine)", r.Name)
			}
		}
	}
}

// references checks a list of names of roles or applications: each must
// be known, and listed once.
func (v *validator) references(p, kind string, names []string, known map[string]int) {
	seen := map[string]bool{}
	for j, n := range names {
		np := index(p, j)
		if _, ok := known[n]; !ok {
			v.add(np, "unknown %s %q", kind, n)
		}
		if seen[n] {
			v.add(np, "%s %q listed twice", kind, n)
		}
		seen[n] = true
	}
}

func (v *validator) application(p string, a Application, roles map[string]int) {
	v.references(p+".roles", "role", a.Roles, roles)
	if len(v.s.RolesOf(a.Name)) == 0 && a.Name != "" {
		v.add(p+".roles", "application %q runs on no role: name a role here or list the application in a role's applications", a.Name)
	}
	v.artifact(p+".artifact", a)
	v.commands(p, a)
	types := make([]string, 0, len(a.Processes))
	for t := range a.Processes {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		pp := field(p+".processes", t)
		switch n := a.Processes[t]; {
		case t == "":
			v.add(pp, "want an instance type (or default) as key")
		case n < 0:
			v.add(pp, "want 0 or more processes, got %d", n)
		case n > 1000:
			v.add(pp, "%d processes on one host is surely a mistake (at most 1000)", n)
		}
	}
	if a.KeepReleases < 1 {
		v.add(p+".keep_releases", "want 1 or more, got %d", a.KeepReleases)
	}
}

// artifact checks an application's artifact: path or s3, each a template
// of {{.App}} and {{.Revision}} (checked by filling it with the
// application's revision), an s3 one rendering s3://bucket/key.
func (v *validator) artifact(p string, a Application) {
	art := a.Artifact
	if art.Path != "" && art.S3 != "" {
		v.add(p+".s3", "set artifact.path or artifact.s3, not both")
		return
	}
	rev := a.Revision
	if rev == "" {
		rev = "1"
	}
	vars := ArtifactVars{App: a.Name, Revision: rev}
	if _, err := renderArtifact("path", art.Path, vars); err != nil {
		v.add(p+".path", "%v", err)
	}
	s3, err := renderArtifact("s3", art.S3, vars)
	if err != nil {
		v.add(p+".s3", "%v", err)
		return
	}
	if s3 != "" {
		u, err := url.Parse(s3)
		if err != nil || u.Scheme != "s3" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			what := fmt.Sprintf("%q", art.S3)
			if s3 != art.S3 {
				what += fmt.Sprintf(" (%q for revision %s)", s3, rev)
			}
			v.add(p+".s3", "want s3://bucket/key, got %s", what)
		}
	}
}

func (v *validator) role(p string, r Role, apps map[string]int, labels map[string]string, now time.Time) {
	s := v.s
	if r.Min < 0 {
		v.add(p+".min", "must not be negative, got %d", r.Min)
	}
	switch {
	case r.Max < 0:
		v.add(p+".max", "must not be negative, got %d", r.Max)
	case r.Max == 0:
		v.add(p+".max", "required: at least 1 (the most hosts this role may have)")
	case r.Min > r.Max:
		v.add(p+".min", "min %d is above max %d", r.Min, r.Max)
	}
	if r.Capacity < 0 {
		v.add(p+".capacity", "must not be negative, got %g", r.Capacity)
	}
	if s.Cloud.Provider == "aws" && r.InstanceType == "" {
		v.add(p+".instance_type", "required for the aws provider")
	}
	if s.Cloud.Provider == "aws" && len(s.Cloud.Subnets) > 0 {
		for j, z := range r.Zones {
			if _, ok := s.Cloud.Subnets[z]; !ok {
				v.add(index(p+".zones", j), "zone %q has no subnet in cloud.subnets", z)
			}
		}
	}
	v.references(p+".applications", "application", r.Applications, apps)
	if r.Stateful && r.Name != "" {
		for _, a := range s.AppsOf(r.Name) {
			i := apps[a.Name]
			ap := index("applications", i)
			if a.Commands.Backup == "" {
				v.add(ap+".commands.backup", "required: application %q runs on stateful role %q, whose data must be saved before a host goes", a.Name, r.Name)
			}
			if a.Commands.Restore == "" {
				v.add(ap+".commands.restore", "required: application %q runs on stateful role %q, whose data must be restored on a new host", a.Name, r.Name)
			}
		}
	}
	v.hosts(p, r, labels)
	v.policies(p+".policies", r, now)
}

func (v *validator) hosts(p string, r Role, labels map[string]string) {
	if v.s.Cloud.Provider != "static" {
		if len(r.Hosts) > 0 {
			v.add(p+".hosts", "hosts are for the static provider; provider %q launches its own", v.s.Cloud.Provider)
		}
		return
	}
	if len(r.Hosts) == 0 {
		v.add(p+".hosts", "required: the static provider needs this role's existing hosts")
		return
	}
	if r.Max > len(r.Hosts) {
		v.add(p+".max", "max %d is above the %d static hosts listed", r.Max, len(r.Hosts))
	}
	for j, h := range r.Hosts {
		hp := index(p+".hosts", j)
		role, _, ok := fleet.ParseLabel(h.Label)
		switch {
		case h.Label == "":
			v.add(hp+".label", "required: the host's label, like %s", fleet.Label(r.Name, j+1))
		case !ok || role != r.Name:
			v.add(hp+".label", "bad label %q: want %s-N with N a positive number", h.Label, r.Name)
		}
		if other, dup := labels[h.Label]; dup && h.Label != "" {
			v.add(hp+".label", "duplicate label %q (also %s)", h.Label, other)
		} else {
			labels[h.Label] = hp
		}
		if h.Address == "" {
			v.add(hp+".address", "required: the address tide reaches the host on")
		}
	}
}

func (v *validator) mode(p, mode string) {
	if mode != "floor" && mode != "exact" {
		v.add(p, "bad mode %q: want floor (at least count) or exact", mode)
	}
}

// count checks a window's count against the role's bounds.
func (v *validator) count(p string, n int, mode string, r Role) {
	switch {
	case n < 0:
		v.add(p, "must not be negative, got %d", n)
	case r.Max > 0 && n > r.Max:
		v.add(p, "count %d is above the role's max %d", n, r.Max)
	case mode == "exact" && n < r.Min:
		v.add(p, "exact count %d is below the role's min %d", n, r.Min)
	}
}

func (v *validator) policies(p string, r Role, now time.Time) {
	pol := r.Policies
	names := map[string]string{}
	uniq := func(np, name string) {
		if name == "" {
			v.add(np, "must not be empty")
			return
		}
		if other, dup := names[name]; dup {
			v.add(np, "duplicate window name %q (also %s)", name, other)
			return
		}
		names[name] = parentPath(np)
	}
	compilable := true
	for j, w := range pol.Schedule {
		wp := index(p+".schedule", j)
		uniq(wp+".name", w.Name)
		if !v.cronWindow(wp, w, r, now) {
			compilable = false
		}
	}
	for j, w := range pol.Windows {
		wp := index(p+".windows", j)
		uniq(wp+".name", w.Name)
		if !v.oneOffWindow(wp, w, r) {
			compilable = false
		}
	}
	if compilable {
		v.compile(p, r, names, now)
	}
	if pol.Load != nil {
		v.load(p+".load", *pol.Load)
	}
	if pol.ScaleDown.Stabilization < 0 {
		v.add(p+".scale_down.stabilization", "must not be negative, got %s", pol.ScaleDown.Stabilization)
	}
	if pol.ScaleDown.MaxStep < 0 {
		v.add(p+".scale_down.max_step", "must not be negative, got %d (0 means no limit)", pol.ScaleDown.MaxStep)
	}
}

// cronWindow checks a recurring window and reports whether it is sound
// enough to compile.
func (v *validator) cronWindow(p string, w CronWindow, r Role, now time.Time) bool {
	before := len(v.problems)
	loc, err := loadLocation(w.TimeZone)
	if err != nil {
		v.add(p+".timezone", "%v", err)
		loc = nil
	}
	if strings.TrimSpace(w.Start) == "" {
		v.add(p+".start", "required: a cron expression for when the window opens")
	} else if sched, err := parseCron(w.Start); err != nil {
		v.add(p+".start", "%v", err)
	} else if loc != nil && sched.Next(now.In(loc)).IsZero() {
		v.add(p+".start", "a window that never opens: start cron %q never fires", w.Start)
	} else if spec, ok := sched.(*cron.SpecSchedule); ok && bits.OnesCount64(spec.Minute&^cronStar) != 1 {
		// Besides making no sense for hosts that take minutes to boot,
		// windows opening every few minutes make the year-long conflict
		// search slow.
		v.add(p+".start", "a window opens at most once an hour: give the start cron a single minute, like \"0 8 * * *\"")
	}
	hasEnd := w.End != "" || v.s.pos.has(p+".end")
	hasDuration := w.Duration != 0 || v.s.pos.has(p+".duration")
	switch {
	case hasEnd && hasDuration:
		v.add(p+".duration", "set end or duration, not both")
	case !hasEnd && !hasDuration:
		v.add(p, "a window needs an end (cron) or a duration")
	case hasDuration && w.Duration <= 0:
		v.add(p+".duration", "want a positive duration, got %s", w.Duration)
	case hasEnd && w.WallClock:
		v.add(p+".wall_clock", "wall_clock applies to a duration, not to an end")
	case hasEnd:
		if sched, err := parseCron(w.End); err != nil {
			v.add(p+".end", "%v", err)
		} else if loc != nil && sched.Next(now.In(loc)).IsZero() {
			v.add(p+".end", "a window that never ends: end cron %q never fires", w.End)
		}
	}
	v.mode(p+".mode", w.Mode)
	v.count(p+".count", w.Count, w.Mode, r)
	return len(v.problems) == before
}

// oneOffWindow checks a dated window and reports whether it is sound
// enough to compile.
func (v *validator) oneOffWindow(p string, w OneOffWindow, r Role) bool {
	before := len(v.problems)
	switch {
	case w.From.IsZero():
		v.add(p+".from", "required: when the window opens, like 2025-03-01T08:00:00+01:00")
	case w.Until.IsZero():
		v.add(p+".until", "required: when the window closes, like 2025-03-01T18:00:00+01:00")
	case !w.Until.After(w.From):
		v.add(p+".until", "until %s is not after from %s", w.Until.Format(time.RFC3339), w.From.Format(time.RFC3339))
	}
	v.mode(p+".mode", w.Mode)
	v.count(p+".count", w.Count, w.Mode, r)
	return len(v.problems) == before
}

// loadLocation loads an IANA time zone; "Local" is refused because it would
// make a schedule mean different things on different machines.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q: name an IANA zone like Europe/Brussels or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: name an IANA zone like Europe/Brussels or UTC", name)
	}
	return loc, nil
}

func (v *validator) load(p string, l LoadPolicy) {
	src := l.Source
	var set []string
	if src.Prometheus != nil {
		set = append(set, "prometheus")
	}
	if src.Push {
		set = append(set, "push")
	}
	if src.Synthetic != nil {
		set = append(set, "synthetic")
	}
	if src.Trace != nil {
		set = append(set, "trace")
	}
	sp := p + ".source"
	switch len(set) {
	case 0:
		v.add(sp, "required: one of prometheus, push, synthetic or trace")
	case 1:
	default:
		v.add(sp, "choose one source; found %s", strings.Join(set, " and "))
	}
	if pr := src.Prometheus; pr != nil {
		if u, err := url.Parse(pr.URL); pr.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(sp+".prometheus.url", "want the Prometheus server's http or https URL, got %q", pr.URL)
		}
		if strings.TrimSpace(pr.Query) == "" {
			v.add(sp+".prometheus.query", "required: the PromQL query giving the role's load")
		}
		if pr.Timeout < 0 {
			v.add(sp+".prometheus.timeout", "must not be negative, got %s", pr.Timeout)
		}
	}
	if sy := src.Synthetic; sy != nil {
		known := false
		for _, name := range SyntheticProfiles {
			known = known || sy.Profile == name
		}
		if !known {
			v.add(sp+".synthetic.profile", "unknown profile %q: want one of %s", sy.Profile, strings.Join(SyntheticProfiles, ", "))
		}
		if sy.Peak < 0 {
			v.add(sp+".synthetic.peak", "must not be negative, got %g", sy.Peak)
		}
		if sy.Speed < 0 {
			v.add(sp+".synthetic.speed", "must not be negative, got %g", sy.Speed)
		}
	}
	if tr := src.Trace; tr != nil {
		if tr.File == "" {
			v.add(sp+".trace.file", "required: the CSV file to replay (timestamp,requests)")
		}
		if tr.Speed < 0 {
			v.add(sp+".trace.speed", "must not be negative, got %g", tr.Speed)
		}
	}
	if l.Headroom < 0 {
		v.add(p+".headroom", "must not be negative, got %g", l.Headroom)
	}
	switch {
	case l.TargetPerInstance < 0:
		v.add(p+".target_per_instance", "must not be negative, got %g", l.TargetPerInstance)
	case l.TargetPerInstance == 0:
		v.add(p+".target_per_instance", "required: the load one instance should carry (or set the role's capacity)")
	}
	if l.LeadTime < 0 {
		v.add(p+".lead_time", "must not be negative, got %s", l.LeadTime)
	}
	if l.MaxAge <= 0 {
		v.add(p+".max_age", "want a positive duration, got %s", l.MaxAge)
	}
}
