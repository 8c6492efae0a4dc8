package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/scheduler"
)

func init() {
	register(command{Name: "apply", Summary: "converge the fleet to the schedule's plan once", Run: runApply})
	register(command{Name: "status", Summary: "list the fleet's hosts", Run: runStatus})
	register(command{Name: "down", Summary: "remove every host of the fleet", Run: runDown})
}

const applyHelp = `Converges the fleet to the plan once: launches the labels that have no host
(role-1 .. role-N for the count the schedule wants now), labels them, deploys
to them and removes extras, highest label first. A terminal shows each host's
progress live; otherwise each step is a log line. Exits 1 with a per-host
summary when any host failed.

A stopped host (its VM stopped, or on the local cloud its process gone, as
after this machine restarts) that holds a wanted label is started again,
with its disk and data, rather than replaced; an unwanted one is removed, a
stateful one started first so that it is backed up. A stateful host the
cloud cannot start is reported and left alone: no new host restores an older
backup beside it (see tide replace --help).

Hosts get each application's revision recorded by tide deploy and tide
rollback (fleets/NAME/revisions.json in the state directory), or the
schedule file's once the file names another revision than it did then.
When every host converged, a revision of the file that is not the
recorded one enters the history (see tide rollback --help).`

const statusHelp = `Lists the fleet's hosts: label, role, instance, address, zone, state,
revision and processes per application (read from each running host over
SSH; "?" when it does not answer) and age.`

const downHelp = `Removes every host of the fleet (static hosts excepted), highest label
first within each role. Each host is drained first: its processes are
stopped. On a stateful role its data is then backed up to the backup store,
and the copy read back and verified, before the host is terminated.

A host whose drain or backup fails (unreachable, no store, backup not
verified) is kept: it is not terminated, down names it and exits 1, and
running down again retries it once the cause is fixed. A stateful host
that is dead for good (unreachable, its disk gone) can never be backed up:
tide replace LABEL --discard-data --reason TEXT terminates it without a
backup and gives its label a new host from the newest verified backup
(see tide replace --help); down can then remove that one.`

// fleetCmd is what apply, status and down share: flags, the schedule and
// the fleet wired to its cloud and SSH.
type fleetCmd struct {
	file, stateDir, output *string
	concurrency            *int
	// wrapCloud and wrapHostKeys decorate the provider (tide serve adds
	// metrics around every cloud call); nil leaves it as it is.
	wrapCloud    func(deployer.Cloud) deployer.Cloud
	wrapHostKeys func(deployer.HostKeys) deployer.HostKeys

	// Set by openSchedule: the absolute state directory and the
	// converger the fleet deploys and drains with (deploy.go).
	stateDirAbs string
	conv        *converge.Converger
}

func fleetFlags(fs *flag.FlagSet, e *env) *fleetCmd {
	return &fleetCmd{
		file:        fs.String("c", "", "schedule file (required)"),
		stateDir:    stateDirFlag(fs, e),
		output:      fs.String("output", "text", "output format: text or json"),
		concurrency: fs.Int("concurrency", 10, "hosts worked on at once"),
	}
}

func (c *fleetCmd) check() error {
	if *c.file == "" {
		return fmt.Errorf("-c FILE is required")
	}
	if *c.output != "text" && *c.output != "json" {
		return fmt.Errorf("--output: want text or json, got %q", *c.output)
	}
	if *c.concurrency < 1 {
		return fmt.Errorf("--concurrency: want at least 1, got %d", *c.concurrency)
	}
	return nil
}

// open loads the schedule and builds the fleet. close releases the SSH
// agent connection, if any.
func (c *fleetCmd) open(ctx context.Context, e *env, progress deployer.Progress, log *slog.Logger) (s *config.Schedule, f *deployer.Fleet, close func(), err error) {
	s, err = config.Load(*c.file)
	if err != nil {
		return nil, nil, nil, reportConfigError(e, err)
	}
	f, close, err = c.openSchedule(ctx, e, s, progress, log)
	return s, f, close, err
}

// openSchedule builds the fleet of an already loaded schedule.
func (c *fleetCmd) openSchedule(ctx context.Context, e *env, s *config.Schedule, progress deployer.Progress, log *slog.Logger) (f *deployer.Fleet, close func(), err error) {
	stateDir, err := filepath.Abs(*c.stateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--state-dir: %w", err)
	}
	signers, knownHosts, closer, err := sshSetup(ctx, s, stateDir, e.Getenv)
	if err != nil {
		return nil, nil, err
	}
	close = func() {
		if closer != nil {
			closer.Close()
		}
	}
	p, err := buildCloud(ctx, s, stateDir, signers[0], e.Getenv, log)
	if err == nil && len(signers) > 1 && p.Name == "local" {
		err = fmt.Errorf("local cloud: want one ssh key, got %d", len(signers))
	}
	if err != nil {
		close()
		return nil, nil, err
	}
	dialer, err := newSSHDialer(s, p, signers, knownHosts, log)
	if err != nil {
		close()
		return nil, nil, err
	}
	if c.wrapCloud != nil {
		p.Cloud = c.wrapCloud(p.Cloud)
	}
	if c.wrapHostKeys != nil && p.HostKeys != nil {
		p.HostKeys = c.wrapHostKeys(p.HostKeys)
	}
	conv, peers, err := openConverger(ctx, e, s, stateDir, p.Name, log)
	if err == nil {
		conv, err = withArtifactRevisions(conv, s, stateDir)
	}
	if err != nil {
		close()
		return nil, nil, err
	}
	c.stateDirAbs, c.conv = stateDir, conv
	roles := make([]deployer.Role, 0, len(s.Roles))
	for _, r := range s.Roles {
		roles = append(roles, deployer.Role{Name: r.Name, Type: r.InstanceType, Image: s.Cloud.Image, Zones: r.Zones, Fixed: p.Fixed,
			Stateful: r.Stateful})
	}
	f, err = deployer.New(deployer.Options{
		Name:        s.Name,
		Cloud:       p.Cloud,
		HostKeys:    p.HostKeys,
		Dialer:      dialer,
		CachePath:   filepath.Join(stateDir, "fleets", s.Name, "labels.json"),
		Roles:       roles,
		DataPath:    s.DataPath,
		Concurrency: *c.concurrency,
		Progress:    progress,
		Deployer:    conv,
		Drainer:     conv,
		Clock:       clock.Real{},
		Logger:      log,
		Timeouts:    deployer.Timeouts{SSH: s.SSH.Deadline.D()},
	})
	if err != nil {
		close()
		return nil, nil, err
	}
	peers.set(f)
	return f, close, nil
}

// withArtifactRevisions tells conv which revision's build each
// application's artifact holds, as the revisions file records it: an
// artifact that does not name {{.Revision}} makes that release only.
func withArtifactRevisions(conv *converge.Converger, s *config.Schedule, stateDir string) (*converge.Converger, error) {
	rec, err := converge.LoadRevisions(converge.RevisionsPath(stateDir, s.Name))
	if err != nil {
		return nil, err
	}
	for app, rev := range rec.Artifacts(s) {
		if rev == "" {
			continue
		}
		if conv, err = conv.WithArtifactRevision(app, rev); err != nil {
			return nil, err
		}
	}
	return conv, nil
}

// recordApplied enters in the history each application's revision an
// apply converged its hosts to, when it is the schedule file's and not
// the recorded one (the file was edited): several edits applied in turn
// are all in the history, for tide rollback.
func recordApplied(ctx context.Context, s *config.Schedule, stateDir string, conv *converge.Converger, now time.Time) error {
	return converge.UpdateRevisions(ctx, converge.RevisionsPath(stateDir, s.Name), func(rec *converge.Revisions) error {
		eff := rec.Effective(s)
		for _, a := range s.Applications {
			rev := eff[a.Name]
			// A deploy recorded since this apply began wins: leave it.
			if rev == "" || rev != conv.Revision(a.Name) || rev == rec.Apps[a.Name].Revision {
				continue
			}
			d := rec.Current(s, a.Name)
			d.ScheduleRevision, d.At = a.Revision, now.UTC()
			rec.Apps[a.Name] = d
		}
		return nil
	})
}

// desiredNow is each role's count at now as the schedule alone sets it
// (min and windows, clamped to max). Load-driven roles get their scheduled
// floor: load is the service's business, not a one-shot apply's.
func desiredNow(s *config.Schedule, now time.Time) (map[string]int, error) {
	out := map[string]int{}
	for _, r := range s.Roles {
		windows, err := s.Windows(r.Name)
		if err != nil {
			return nil, err
		}
		out[r.Name], _ = scheduler.ScheduledCount(scheduler.ParamsFor(s, r), windows, now)
	}
	return out, nil
}

func runApply(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c := fleetFlags(fs, e)
	if err := parseFlags(fs, args, applyHelp); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	disp := newDisplay(e, *c.output == "json")
	s, f, closeFn, err := c.open(ctx, e, disp, disp.logger(e))
	if err != nil {
		return err
	}
	defer closeFn()
	desired, err := desiredNow(s, time.Now())
	if err != nil {
		return err
	}
	rep, err := f.Reconcile(ctx, desired)
	disp.stop()
	if err != nil {
		return err
	}
	if rep.Err() == nil {
		if err := recordApplied(ctx, s, c.stateDirAbs, c.conv, time.Now()); err != nil {
			return fmt.Errorf("apply: converged, but recording the revisions failed: %w", err)
		}
	}
	return finishReport(e, *c.output, "apply", desired, rep)
}

func runDown(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c := fleetFlags(fs, e)
	if err := parseFlags(fs, args, downHelp); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	disp := newDisplay(e, *c.output == "json")
	_, f, closeFn, err := c.open(ctx, e, disp, disp.logger(e))
	if err != nil {
		return err
	}
	defer closeFn()
	rep, err := f.Down(ctx)
	disp.stop()
	if err != nil {
		return err
	}
	return finishReport(e, *c.output, "down", nil, rep)
}

// finishReport prints the report and turns host failures into exit 1.
func finishReport(e *env, output, what string, desired map[string]int, rep deployer.Report) error {
	if output == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Desired map[string]int `json:"desired,omitempty"`
			deployer.Report
		}{desired, rep}); err != nil {
			return err
		}
	} else {
		printReport(e.Stdout, what, rep)
	}
	if rep.Err() != nil {
		if output == "json" {
			fmt.Fprintf(e.Stderr, "tide %s: %d hosts failed\n", what, rep.Count(deployer.ActionFailed))
		}
		return exitError{1}
	}
	return nil
}

func printReport(w io.Writer, what string, rep deployer.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tROLE\tINSTANCE\tADDRESS\tRESULT\tDETAIL")
	for _, h := range rep.Hosts {
		detail := h.Reason
		switch {
		case h.Action == deployer.ActionFailed:
			detail = fmt.Sprintf("%s while %s: %v", h.Kind, h.Intended, h.Err)
		case (h.Action == deployer.ActionLaunched || h.Action == deployer.ActionStarted) && h.Reason == "":
			d := h.Durations
			detail = fmt.Sprintf("address %s, ssh %s, deploy %s", round(d.LaunchToAddress), round(d.AddressToSSH), round(d.Deploy))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Label, h.Role, dash(h.InstanceID), dash(h.Address), h.Action, detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %s in %s\n", what, rep.Summary(), round(rep.Finished.Sub(rep.Started)))
}

func runStatus(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c := fleetFlags(fs, e)
	if err := parseFlags(fs, args, statusHelp); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	s, f, closeFn, err := c.open(ctx, e, nil, e.Logger)
	if err != nil {
		return err
	}
	defer closeFn()
	hosts, err := f.Status(ctx)
	if err != nil {
		return err
	}
	revs, procs := hostColumns(ctx, s, f, hosts, *c.concurrency)
	if *c.output == "json" {
		type row struct {
			deployer.HostStatus
			Revision  string `json:"revision"`
			Processes string `json:"processes"`
		}
		rows := make([]row, 0, len(hosts))
		for i, h := range hosts {
			rows = append(rows, row{HostStatus: h, Revision: revs[i], Processes: procs[i]})
		}
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tROLE\tINSTANCE\tADDRESS\tZONE\tSTATE\tREVISION\tPROCESSES\tAGE")
	tagOnly := false
	for i, h := range hosts {
		label := dash(h.Label)
		if !h.Labelled && h.Label != "" {
			label += "*"
			tagOnly = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", label, dash(h.Role), h.InstanceID, dash(h.Address), dash(h.Zone), h.State, revs[i], procs[i], age(h.Age))
	}
	tw.Flush()
	fmt.Fprint(e.Stdout, plural(len(hosts), "host"))
	if tagOnly {
		fmt.Fprint(e.Stdout, " (* label from the tag only: not yet written on the host)")
	}
	fmt.Fprintln(e.Stdout)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// display shows each host's progress: on a terminal, one line per host
// redrawn in place; otherwise one log line per step.
type display struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
	keys  []string
	lines map[string]string
	drawn int
}

var _ deployer.Progress = (*display)(nil)

// newDisplay draws on stdout when it is a terminal and the output is
// text; otherwise it writes plain lines on stderr.
func newDisplay(e *env, jsonOut bool) *display {
	d := &display{w: e.Stderr, start: time.Now(), lines: map[string]string{}}
	if f, ok := e.Stdout.(*os.File); ok && !jsonOut {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			d.w, d.tty = e.Stdout, true
		}
	}
	return d
}

// logger is the deployer's logger: quiet on a terminal, whose display
// says it all, the command's logger otherwise.
func (d *display) logger(e *env) *slog.Logger {
	if d.tty {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// Update records the event and redraws or prints.
func (d *display) Update(ev deployer.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := ev.Label
	if key == "" || key == "?" {
		key = ev.InstanceID
	}
	what := string(ev.Step)
	switch ev.Step {
	case deployer.StepDone:
		what = string(ev.Action)
		if t := ev.Durations.Total(); t > 0 {
			what += fmt.Sprintf(" (address %s, ssh %s, deploy %s)", round(ev.Durations.LaunchToAddress), round(ev.Durations.AddressToSSH), round(ev.Durations.Deploy))
		}
	case deployer.StepFailed:
		what = fmt.Sprintf("FAILED %s: %v", deployer.Kind(ev.Err), ev.Err)
	}
	line := fmt.Sprintf("%-12s %-20s %-18s %s", ev.Label, dash(ev.InstanceID), dash(ev.Address), what)
	if !d.tty {
		fmt.Fprintf(d.w, "%6.1fs %s\n", ev.At.Sub(d.start).Seconds(), strings.TrimRight(line, " "))
		return
	}
	if _, ok := d.lines[key]; !ok {
		d.keys = append(d.keys, key)
	}
	d.lines[key] = line
	d.redraw()
}

// redraw moves the cursor up over the lines drawn before and draws them
// all again, each cleared first.
func (d *display) redraw() {
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.drawn)
	}
	for _, k := range d.keys {
		b.WriteString("\r\x1b[2K")
		b.WriteString(d.lines[k])
		b.WriteByte('\n')
	}
	d.drawn = len(d.keys)
	io.WriteString(d.w, b.String())
}

// stop ends the live display; later output goes below it.
func (d *display) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty && d.drawn > 0 {
		fmt.Fprintln(d.w)
	}
	d.tty, d.w = false, io.Discard
}

// plural returns "1 host", "2 hosts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
