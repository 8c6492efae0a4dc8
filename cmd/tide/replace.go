package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
)

func init() {
	register(command{Name: "replace", Summary: "give named hosts new ones (drain, back up, terminate, launch again)", Run: runReplace})
}

const replaceHelp = `tide replace -c FILE LABEL... [--discard-data --reason TEXT]

Gives each named host a new one: the host is drained, a stateful role's
data backed up and the backup verified, the host terminated, and its
label launched again on a new host, which restores the role's newest
verified backup before it counts as ready. A role's hosts are replaced one
at a time, and the first failure stops that role's others. No other host
is touched and no role is scaled. Exits 1 when any host failed.

A stopped host of a stateful role is started first, so that its data is
backed up. A host whose backup fails (or that cannot be started) is kept
(its processes started again when it can be reached), nothing is
terminated for it, and its label is not launched again.

--discard-data is for a stateful host that is dead (unreachable, its disk
gone): it is not started, and when its drain or backup fails it is
terminated anyway, and the new
host restores the newest verified backup, so whatever the old host wrote
after that backup is lost. It needs --reason. tide prints and logs, for
each such host, the backup error and the backup the new host restores
(or that it starts empty when there is none).

Static hosts cannot be replaced: tide neither launches nor terminates
them.`

func runReplace(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c := fleetFlags(fs, e)
	discard := fs.Bool("discard-data", false, "terminate a host whose drain or backup fails all the same: its data since the newest verified backup is lost (needs --reason)")
	reason := fs.String("reason", "", "why data may be discarded, for the log (required with --discard-data)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n", replaceHelp)
		fs.PrintDefaults()
	}
	// Flags may come before or after the labels.
	var labels []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		labels = append(labels, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := c.check(); err != nil {
		return err
	}
	why := strings.TrimSpace(*reason)
	switch {
	case len(labels) == 0:
		return errors.New("name the hosts to replace: tide replace -c FILE LABEL... (tide status lists them)")
	case *discard && why == "":
		return errors.New("--discard-data needs --reason: say why the data may go, for the log and the next person")
	}
	s, err := config.Load(*c.file)
	if err != nil {
		return reportConfigError(e, err)
	}
	if err := replaceable(s); err != nil {
		return err
	}
	disp := newDisplay(e, *c.output == "json")
	rep, discarded, err := replaceHosts(ctx, e, e.Logger, s, *c.stateDir, labels, *discard, why,
		func(ctx context.Context) (deployer.Report, error) {
			f, closeFn, err := c.openSchedule(ctx, e, s, disp, disp.logger(e))
			if err != nil {
				return deployer.Report{}, err
			}
			defer closeFn()
			return f.Replace(ctx, labels, deployer.ReplaceOptions{DiscardData: *discard})
		})
	disp.stop()
	if err != nil {
		return err
	}
	if *c.output == "json" {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			deployer.Report
			Discarded []discardedHost `json:"discarded,omitempty"`
		}{rep, discarded}); err != nil {
			return err
		}
	} else {
		printReport(e.Stdout, "replace", rep)
		printDiscarded(e.Stdout, discarded, why)
	}
	if rep.Err() != nil {
		if *c.output == "json" {
			fmt.Fprintf(e.Stderr, "tide replace: %d hosts failed\n", rep.Count(deployer.ActionFailed))
		}
		return exitError{1}
	}
	return nil
}

// replaceHosts is the core of a replace, tide replace's and tide serve's:
// with discard, it reads the newest verified backup of each stateful
// application of the labels' roles before any host is touched (a store
// that cannot be read would fail the new hosts' restores too) and logs
// what each host's replacement would restore; it calls replace, which
// replaces the hosts; then it logs each host terminated without a
// verified backup, and returns them with the report.
func replaceHosts(ctx context.Context, e *env, logger *slog.Logger, s *config.Schedule, stateDir string, labels []string, discard bool, why string,
	replace func(context.Context) (deployer.Report, error)) (deployer.Report, []discardedHost, error) {
	var before map[string]restorePoint
	if discard {
		cloudName := s.Cloud.Provider
		if cloudName == "" {
			cloudName = "local"
		}
		st, err := openBackupStore(e, s, stateDir, cloudName, s3Clients(ctx, e, s))
		if err != nil {
			return deployer.Report{}, nil, err
		}
		if before, err = newestBackups(ctx, st, s, labels); err != nil {
			return deployer.Report{}, nil, err
		}
		for _, l := range labels {
			for _, p := range pointsOf(before, l) {
				logger.Warn("replace may discard data", "label", l, "role", p.role, "app", p.app, "reason", why,
					"restores_key", p.b.Key, "restores_created_at", createdAt(p))
			}
		}
	}
	rep, err := replace(ctx)
	if err != nil {
		return rep, nil, err
	}
	discarded := discardedHosts(rep, before, why)
	for _, d := range discarded {
		for _, p := range d.Restored {
			logger.Warn("host terminated without a verified backup: its data is discarded",
				"label", d.Label, "instance_id", d.InstanceID, "role", p.role, "app", p.app, "reason", why,
				"backup_err", d.BackupErr, "restores_key", p.b.Key, "restores_created_at", createdAt(p))
		}
	}
	return rep, discarded, nil
}

// replaceable refuses a replace on the static cloud.
func replaceable(s *config.Schedule) error {
	if s.Cloud.Provider == "static" {
		return fmt.Errorf("the static cloud's hosts cannot be replaced: tide neither launches nor terminates them (replace the machine, then change its address in %s)", s.File)
	}
	return nil
}

// restorePoint is the newest verified backup of a role's application:
// what a new host of the role restores. b is zero when there is none.
type restorePoint struct {
	role, app string
	b         converge.Backup
}

// MarshalJSON writes the point for the JSON report.
func (p restorePoint) MarshalJSON() ([]byte, error) {
	out := struct {
		Role      string     `json:"role"`
		App       string     `json:"app"`
		Key       string     `json:"restores_key"`
		CreatedAt *time.Time `json:"restores_created_at,omitempty"`
	}{Role: p.role, App: p.app, Key: p.b.Key}
	if p.b.Key != "" {
		out.CreatedAt = &p.b.CreatedAt
	}
	return json.Marshal(out)
}

func createdAt(p restorePoint) string {
	if p.b.Key == "" {
		return "none: the new host starts empty"
	}
	return p.b.CreatedAt.UTC().Format(time.RFC3339)
}

// newestBackups reads, for each stateful role among the labels', the
// newest verified backup of each of its applications, keyed role/app.
// Labels of no known role are left to the fleet to refuse.
func newestBackups(ctx context.Context, st converge.Store, s *config.Schedule, labels []string) (map[string]restorePoint, error) {
	out := map[string]restorePoint{}
	for _, l := range labels {
		role, _, ok := fleet.ParseLabel(l)
		r, known := s.Role(role)
		if st == nil || !ok || !known || !r.Stateful {
			continue
		}
		for _, a := range s.AppsOf(role) {
			key := role + "/" + a.Name
			if _, done := out[key]; done {
				continue
			}
			b, err := converge.Latest(ctx, st, s.Name, role, a.Name)
			if err != nil && !errors.Is(err, objstore.ErrNotFound) {
				return nil, fmt.Errorf("reading the newest backup of role %s's %s (what a new host would restore): %w", role, a.Name, err)
			}
			out[key] = restorePoint{role: role, app: a.Name, b: b}
		}
	}
	return out, nil
}

// pointsOf returns the restore points of a label's role, by application.
func pointsOf(points map[string]restorePoint, label string) []restorePoint {
	role, _, _ := fleet.ParseLabel(label)
	var out []restorePoint
	for _, p := range points {
		if p.role == role {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b restorePoint) int { return strings.Compare(a.app, b.app) })
	return out
}

// discardedHost is a host terminated although its drain or backup failed.
type discardedHost struct {
	Label      string         `json:"label"`
	InstanceID string         `json:"instance_id"`
	Reason     string         `json:"reason"`
	BackupErr  string         `json:"backup_error"`
	Restored   []restorePoint `json:"restored"`
}

func discardedHosts(rep deployer.Report, points map[string]restorePoint, why string) []discardedHost {
	var out []discardedHost
	for _, h := range rep.Hosts {
		if h.Reason != deployer.ReasonDataDiscarded || h.DrainErr == nil {
			continue
		}
		d := discardedHost{Label: h.Label, InstanceID: h.InstanceID, Reason: why, BackupErr: h.DrainErr.Error(), Restored: pointsOf(points, h.Label)}
		if len(d.Restored) == 0 {
			// A role that is not stateful keeps no backup: what its drain
			// could not stop is all there was.
			d.Restored = []restorePoint{{role: h.Role}}
		}
		out = append(out, d)
	}
	return out
}

func printDiscarded(w io.Writer, ds []discardedHost, why string) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDATA DISCARDED (--discard-data, reason: %q):\n", why)
	for _, d := range ds {
		fmt.Fprintf(w, "  %s (%s) was terminated without a verified backup: %s\n", d.Label, d.InstanceID, d.BackupErr)
		for _, p := range d.Restored {
			switch {
			case p.app == "":
				fmt.Fprintf(w, "    role %s is not stateful: it keeps no backup\n", p.role)
			case p.b.Key == "":
				fmt.Fprintf(w, "    %s: no verified backup: the new %s started empty\n", p.app, d.Label)
			default:
				fmt.Fprintf(w, "    %s: the new %s restored %s, taken %s: what the old host wrote after it is lost\n",
					p.app, d.Label, p.b.Key, p.b.CreatedAt.UTC().Format(time.RFC3339))
			}
		}
	}
}
