package converge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
)

// Errors of the removal hook. Each prevents the host's termination.
var (
	// ErrNoStore says a stateful role's host cannot be backed up: no
	// object store is configured.
	ErrNoStore = errors.New("no backup store configured")
	// ErrUnreachable says a stateful role's host could not be reached to
	// back it up.
	ErrUnreachable = errors.New("host unreachable, its data cannot be backed up")
	// ErrBackupUnverified says the copy read back from the store differs
	// from what the host wrote.
	ErrBackupUnverified = errors.New("backup not verified")
)

// Backup describes a verified backup; latest.json next to the backups of
// a role's application holds the newest.
type Backup struct {
	Key        string    `json:"key"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	App        string    `json:"app"`
	Role       string    `json:"role"`
	Label      string    `json:"label"`
	InstanceID string    `json:"instance_id"`
	Revision   string    `json:"revision"`
	CreatedAt  time.Time `json:"created_at"`
	VerifiedAt time.Time `json:"verified_at"`
}

// BackupPrefix is where a role's application's backups are kept in the
// store.
func BackupPrefix(fleetName, role, app string) string {
	return fleetName + "/" + role + "/" + app + "/"
}

// LatestKey is the key of the manifest of the newest verified backup.
func LatestKey(fleetName, role, app string) string {
	return BackupPrefix(fleetName, role, app) + "latest.json"
}

// Latest returns the newest verified backup of a role's application;
// objstore.ErrNotFound when there is none.
func Latest(ctx context.Context, st Store, fleetName, role, app string) (Backup, error) {
	rc, err := st.Get(ctx, LatestKey(fleetName, role, app))
	if err != nil {
		return Backup{}, err
	}
	defer rc.Close()
	var b Backup
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&b); err != nil {
		return Backup{}, fmt.Errorf("reading %s: %w", LatestKey(fleetName, role, app), err)
	}
	return b, nil
}

// BeforeTerminate drains a host before it is terminated: every
// application's processes are stopped (stop command or SIGTERM, SIGKILL
// after the stop timeout). On a stateful role each application's data is
// then backed up, copied to the store and verified (size and SHA-256 read
// back from the store against those computed on the host) before it
// returns nil. An error prevents the termination.
func (c *Converger) BeforeTerminate(ctx context.Context, h deployer.Host, inst fleet.Instance) error {
	role := inst.Role
	if role == "" {
		role, _, _ = fleet.ParseLabel(inst.Label)
	}
	stateful := c.roles[role].Stateful
	if h == nil {
		if stateful {
			return fmt.Errorf("role %s is stateful: %w", role, ErrUnreachable)
		}
		return nil
	}
	if stateful && c.o.Store == nil {
		return fmt.Errorf("role %s is stateful: %w", role, ErrNoStore)
	}
	t, st, err := c.drain(ctx, h, inst, role)
	if err != nil {
		return err
	}
	if !stateful {
		return nil
	}
	for _, a := range c.appsOf(role) {
		if as, ok := st.App(a.Name); !ok || !as.restored {
			// Never deployed here, or its data never restored: what the
			// host holds is not the role's data, and backing it up would
			// hide the latest good backup.
			c.log.Info("nothing to back up", "label", t.label, "app", a.Name)
			continue
		}
		b, err := c.backup(ctx, t, a)
		if err != nil {
			return fmt.Errorf("backing up %s: %w", a.Name, err)
		}
		c.log.Info("backup verified", "label", t.label, "app", a.Name, "key", b.Key, "size", b.Size, "sha256", b.SHA256)
	}
	return nil
}

var _ deployer.DuplicateDrainer = (*Converger)(nil)

// BeforeTerminateDuplicate drains a label's duplicate before it is
// terminated: another, live host keeps the label and holds its data. The
// duplicate's processes are stopped as BeforeTerminate stops them, but
// its data is not backed up, even on a stateful role: it may be older
// than the live host's, and its backup would become the role's latest
// (latest.json), the one a new host of the label is restored from. A nil
// host (the duplicate is stopped, or unreachable) has nothing to drain.
func (c *Converger) BeforeTerminateDuplicate(ctx context.Context, h deployer.Host, inst fleet.Instance) error {
	role := inst.Role
	if role == "" {
		role, _, _ = fleet.ParseLabel(inst.Label)
	}
	label := inst.Label
	if h != nil {
		t, _, err := c.drain(ctx, h, inst, role)
		if err != nil {
			return err
		}
		label = t.label
	}
	if c.roles[role].Stateful {
		c.log.Warn("duplicate not backed up: the live host holds the label's data", "label", label, "role", role,
			"instance_id", inst.ID, "drained", h != nil)
	}
	return nil
}

// drain stops every application's processes on the host and returns the
// host's target and state.
func (c *Converger) drain(ctx context.Context, h deployer.Host, inst fleet.Instance, role string) (*target, HostState, error) {
	t := c.target(ctx, h, inst, role)
	st, err := Inspect(ctx, h, t.data)
	if err != nil {
		return t, st, err
	}
	if t.label == "" {
		t.label = st.Label
	}
	for _, as := range st.Apps {
		if len(as.procs) == 0 {
			continue
		}
		if err := c.stopProcs(ctx, t, c.apps[as.Name], as.Name, all(as)); err != nil {
			return t, st, fmt.Errorf("draining: %w", err)
		}
	}
	return t, st, nil
}

// Streamer is implemented by hosts that copy a command's standard output
// to a writer as it comes (cmd/tide's SSH hosts do). Backups need it: an
// archive passes through tide on its way to the store and is never held
// whole in memory, so a host without it cannot be backed up.
type Streamer interface {
	// Stream runs cmd as deployer.Host's Run does, copying its standard
	// output to stdout; it never writes to stdout after it returned.
	Stream(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error
}

// pruner is what retention needs of a store besides Put and Get; both of
// objstore's stores have it.
type pruner interface {
	List(ctx context.Context, prefix string) ([]objstore.Info, error)
	Delete(ctx context.Context, key string) error
}

// backup runs the backup command (or tars the application's directory
// but its releases, processes and logs), stores the archive, verifies it,
// records it as the latest and deletes the backups beyond the schedule's
// backups.keep.
func (c *Converger) backup(ctx context.Context, t *target, a *app) (Backup, error) {
	now := c.clk.Now().UTC()
	name := now.Format("20060102T150405.000000000Z") + "-" + t.label + ".backup"
	v := t.vars(a)
	v.Backup = v.AppDir + "/backups/" + name
	cmd, err := a.render(cmdBackup, v)
	if err != nil {
		return Backup{}, err
	}
	run := runCmd(cmd, v.env())
	if cmd == "" {
		run = fmt.Sprintf("tar -czf %s --exclude=./releases --exclude=./current --exclude=./run --exclude=./logs --exclude=./backups --exclude=./.current.tmp .", shellQuote(v.Backup))
	}
	script := fmt.Sprintf("set -e\ncd %s\nmkdir -p backups\n%s\nsha256sum %s\nwc -c < %[3]s\n", shellQuote(v.AppDir), run, shellQuote(v.Backup))
	// The archive leaves the host whatever happens: a failed backup is
	// tried again with a new archive, and a large database's must not
	// pile up on its disk.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := t.h.Run(rctx, "rm -f "+shellQuote(v.Backup), nil); err != nil {
			c.log.Warn("removing the archive from the host failed", "label", t.label, "app", a.Name, "err", err)
		}
	}()
	out, err := t.h.Run(ctx, script, nil)
	if err != nil {
		return Backup{}, fmt.Errorf("backup command: %w", err)
	}
	sum, size, err := parseSum(out)
	if err != nil {
		return Backup{}, fmt.Errorf("backup command: %w", err)
	}
	b := Backup{
		Key: BackupPrefix(c.s.Name, t.role, a.Name) + name, Size: size, SHA256: sum,
		App: a.Name, Role: t.role, Label: t.label, InstanceID: t.inst.ID, Revision: a.Revision, CreatedAt: now,
	}
	// Backups pass through tide: the host needs no credentials.
	if err := c.upload(ctx, t, v.Backup, b); err != nil {
		return Backup{}, err
	}
	if err := verify(ctx, c.o.Store, b.Key, size, sum); err != nil {
		if p, ok := c.o.Store.(pruner); ok && errors.Is(err, ErrBackupUnverified) {
			// Never counted among the kept backups.
			if derr := p.Delete(ctx, b.Key); derr != nil {
				c.log.Warn("deleting an unverified backup failed", "label", t.label, "app", a.Name, "key", b.Key, "err", derr)
			}
		}
		return Backup{}, err
	}
	b.VerifiedAt = c.clk.Now().UTC()
	manifest, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return Backup{}, err
	}
	if _, err := c.o.Store.Put(ctx, LatestKey(c.s.Name, t.role, a.Name), bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		return Backup{}, err
	}
	c.pruneBackups(ctx, t.role, a.Name, b.Key)
	return b, nil
}

// upload copies the archive at path on the host into the store under
// b.Key with memory that does not grow with its size. The archive is
// spooled to a temporary file on this machine (in Options.SpoolDir, else
// TMPDIR), hashed on the way and checked against what the host computed,
// then put from the file. A file rather than a pipe straight into Put:
// the S3 client can then seek its body, which it needs to sign a payload
// sent over plain HTTP and to retry a failed request without asking the
// host again, and read a large archive's parts in place, several at once;
// and a transfer that went wrong is caught before anything is stored.
func (c *Converger) upload(ctx context.Context, t *target, path string, b Backup) error {
	s, ok := t.h.(Streamer)
	if !ok {
		return fmt.Errorf("reading the archive: host %s (%T) cannot stream it", t.label, t.h)
	}
	f, err := os.CreateTemp(c.o.SpoolDir, "tide-backup-*")
	if err != nil {
		return fmt.Errorf("spooling the archive: %w", err)
	}
	// Unlinked at once where the system allows it: the open file stays
	// usable and a crash leaves nothing behind.
	if err := os.Remove(f.Name()); err != nil {
		defer os.Remove(f.Name())
	}
	defer f.Close()
	h := sha256.New()
	if err := s.Stream(ctx, "cat "+shellQuote(path), nil, io.MultiWriter(f, h)); err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	n, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("spooling the archive: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != b.Size || got != b.SHA256 {
		return fmt.Errorf("%w: tide received %d bytes with sha256 %s, host wrote %d bytes with sha256 %s",
			ErrBackupUnverified, n, got, b.Size, b.SHA256)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spooling the archive: %w", err)
	}
	if _, err := c.o.Store.Put(ctx, b.Key, f, n); err != nil {
		return err
	}
	return nil
}

// pruneBackups deletes a role's application's oldest backups, keeping the
// schedule's backups.keep newest (all of them when it is 0), the one just
// made (newest) and the one latest.json names. Backup names begin with
// the time they were made, so the newest sort last. Failures are logged:
// the new backup is verified and recorded whatever happens here.
func (c *Converger) pruneBackups(ctx context.Context, role, app, newest string) {
	keep := c.s.Backups.Keep
	if keep <= 0 {
		return
	}
	p, ok := c.o.Store.(pruner)
	if !ok {
		c.log.Warn("backup store cannot list its objects: old backups are kept", "role", role, "app", app)
		return
	}
	prefix := BackupPrefix(c.s.Name, role, app)
	objs, err := p.List(ctx, prefix)
	if err != nil {
		c.log.Warn("listing backups failed: old backups are kept", "role", role, "app", app, "err", err)
		return
	}
	var keys []string
	for _, o := range objs {
		if rest := strings.TrimPrefix(o.Key, prefix); !strings.Contains(rest, "/") && strings.HasSuffix(rest, ".backup") {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) <= keep {
		return
	}
	sort.Strings(keys)
	protected := map[string]bool{newest: true}
	latest, err := Latest(ctx, c.o.Store, c.s.Name, role, app)
	if err != nil {
		c.log.Warn("reading the latest backup failed: old backups are kept", "role", role, "app", app, "err", err)
		return
	}
	protected[latest.Key] = true
	for _, k := range keys[:len(keys)-keep] {
		if protected[k] {
			continue
		}
		if err := p.Delete(ctx, k); err != nil {
			c.log.Warn("deleting an old backup failed", "role", role, "app", app, "key", k, "err", err)
			continue
		}
		c.log.Info("old backup deleted", "role", role, "app", app, "key", k, "keep", keep)
	}
}

// verify reads key back from the store and compares its size and SHA-256
// with what the host computed.
func verify(ctx context.Context, st Store, key string, size int64, sum string) error {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s back: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("reading %s back: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sum {
		return fmt.Errorf("%w: %s: store holds %d bytes with sha256 %s, host wrote %d bytes with sha256 %s",
			ErrBackupUnverified, key, n, got, size, sum)
	}
	return nil
}

// parseSum reads `sha256sum FILE; wc -c < FILE` output.
func parseSum(out []byte) (string, int64, error) {
	lines := strings.Fields(string(out))
	if len(lines) < 3 || len(lines[0]) != 64 {
		return "", 0, fmt.Errorf("unexpected checksum output %q", out)
	}
	size, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("unexpected checksum output %q", out)
	}
	return lines[0], size, nil
}

// restore gives a stateful role's new host the latest verified backup,
// checked on the host against the manifest, then runs the restore command
// (or untars it in the application's directory). With no backup at all it
// marks the host restored: the role starts empty.
func (c *Converger) restore(ctx context.Context, t *target, a *app, v Vars) error {
	marker := shellQuote(v.AppDir + "/.tide-restored")
	if c.o.Store == nil {
		c.log.Warn("stateful role without a backup store: starting without data", "label", t.label, "app", a.Name)
		_, err := t.h.Run(ctx, "mkdir -p "+shellQuote(v.AppDir)+" && echo none > "+marker, nil)
		return err
	}
	b, err := Latest(ctx, c.o.Store, c.s.Name, t.role, a.Name)
	if errors.Is(err, objstore.ErrNotFound) {
		c.log.Info("no backup to restore: starting empty", "label", t.label, "app", a.Name)
		_, err := t.h.Run(ctx, "mkdir -p "+shellQuote(v.AppDir)+" && echo none > "+marker, nil)
		return err
	}
	if err != nil {
		return err
	}
	rc, err := c.o.Store.Get(ctx, b.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	v.Backup = v.AppDir + "/backups/restore.backup"
	cmd, err := a.render(cmdRestore, v)
	if err != nil {
		return err
	}
	run := runCmd(cmd, v.env())
	if cmd == "" {
		run = "tar -xzf " + shellQuote(v.Backup)
	}
	q := shellQuote(v.Backup)
	// Every verb indexed: after %[2]s a bare %s would take the third
	// argument again.
	script := fmt.Sprintf(`set -e
cd %[1]s
mkdir -p backups
cat > %[2]s
got=$(sha256sum %[2]s | cut -d' ' -f1)
if [ "$got" != %[3]s ]; then echo "restored archive has sha256 $got, want %[3]s" >&2; exit 1; fi
%[4]s
rm -f %[2]s
printf '%%s\n' %[5]s > %[6]s
`, shellQuote(v.AppDir), q, b.SHA256, run, shellQuote(b.Key), marker)
	if _, err := t.h.Run(ctx, script, rc); err != nil {
		return fmt.Errorf("restoring %s: %w", b.Key, err)
	}
	c.log.Info("backup restored", "label", t.label, "app", a.Name, "key", b.Key)
	return nil
}
