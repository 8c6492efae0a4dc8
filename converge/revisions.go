package converge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tideops/tide/config"
)

// Revisions is what tide deploy, tide rollback and tide apply persisted,
// per application, in the state directory (fleets/<name>/revisions.json),
// so that later reconciles (tide apply, tide serve) converge new hosts to
// the deployed revision rather than the schedule file's. Writers change
// it through UpdateRevisions, which locks it.
//
// Precedence: a persisted revision wins over the schedule's as long as
// the schedule still names the revision it named when the deploy was made
// (ScheduleRevision). Once the file is edited to another revision, the
// file is newer than the deploy and wins.
type Revisions struct {
	Apps map[string]Deployed `json:"apps"`
}

// HistoryLimit is how many revisions an application's history keeps; the
// oldest go first.
const HistoryLimit = 20

// Deployed is one application's deployed revision and its history.
//
// The history is an undo stack. It lists revisions in the order they
// became current, oldest first, each once (a revision made current again
// by a deploy moves to the end). Revision is one of them: those before it
// are where rollbacks go, one step each; those after it are the ones
// rolled back from. A rollback only moves Revision within the history. A
// deploy (or a rollback to a revision the history does not hold) drops
// the revisions rolled back from and appends its revision: a new branch.
type Deployed struct {
	Revision string `json:"revision"`
	// Previous is the revision before Revision in the history, written
	// for readers that know no History.
	Previous string `json:"previous,omitempty"`
	// History is the undo stack above, oldest first. Files written
	// before it existed have none: their history is Previous, Revision.
	History []string `json:"history,omitempty"`
	// ScheduleRevision is the schedule file's revision at the time.
	ScheduleRevision string `json:"schedule_revision"`
	// Built is the revision last deployed as new: one the history did not
	// hold, by a deploy or an apply of an edited schedule. An artifact
	// that does not name {{.Revision}} is taken to hold its build (see
	// ArtifactRevision); rollbacks do not change it.
	Built string    `json:"built,omitempty"`
	At    time.Time `json:"at"`
}

// ArtifactRevision returns the revision whose build an artifact that
// does not name {{.Revision}} holds: Built, or for a file written before
// Built existed the revision deployed last (the history's newest). ""
// when nothing is recorded: then it is the schedule file's revision.
func (d Deployed) ArtifactRevision() string {
	if d.Built != "" {
		return d.Built
	}
	if revs, _ := d.Branch(); len(revs) > 0 {
		return revs[len(revs)-1]
	}
	return ""
}

// Branch returns the history, oldest first, and the index of Revision in
// it (-1 when nothing is recorded). It reads files written before History
// existed, and repairs a history that lost Revision by appending it.
func (d Deployed) Branch() (revs []string, cur int) {
	if d.Revision == "" {
		return nil, -1
	}
	revs = slices.Clone(d.History)
	if len(revs) == 0 && d.Previous != "" && d.Previous != d.Revision {
		revs = append(revs, d.Previous)
	}
	if i := slices.Index(revs, d.Revision); i >= 0 {
		return revs, i
	}
	revs = append(revs, d.Revision)
	return revs, len(revs) - 1
}

// Back returns where a rollback goes: the revision made current before
// Revision. ok is false when the history holds none.
func (d Deployed) Back() (rev string, ok bool) {
	revs, cur := d.Branch()
	if cur < 1 {
		return "", false
	}
	return revs[cur-1], true
}

// Deploy returns d once rev became current by a deploy: the revisions
// rolled back from are dropped, rev is appended (moved to the end if the
// history held it) and the oldest go beyond HistoryLimit. A revision the
// history did not hold is new: it becomes Built.
func (d Deployed) Deploy(rev string) Deployed {
	revs, cur := d.Branch()
	if !slices.Contains(revs, rev) {
		d.Built = rev
	}
	revs = slices.DeleteFunc(revs[:cur+1], func(r string) bool { return r == rev })
	revs = append(revs, rev)
	if extra := len(revs) - HistoryLimit; extra > 0 {
		revs = revs[extra:]
	}
	return d.at(revs, len(revs)-1)
}

// Rollback returns d once rev became current by a rollback: a revision
// the history holds (earlier, or one rolled back from) becomes Revision
// and the history stays; any other is deployed as by Deploy.
func (d Deployed) Rollback(rev string) Deployed {
	revs, _ := d.Branch()
	if i := slices.Index(revs, rev); i >= 0 {
		return d.at(revs, i)
	}
	built := d.ArtifactRevision()
	d = d.Deploy(rev)
	d.Built = built // a release found on hosts, not a new build
	return d
}

// at returns d with history revs and revs[cur] current.
func (d Deployed) at(revs []string, cur int) Deployed {
	d.History, d.Revision, d.Previous = revs, revs[cur], ""
	if cur > 0 {
		d.Previous = revs[cur-1]
	}
	return d
}

// Current returns the named application's record with the revision its
// hosts converge to now (Effective's) as Revision. When that is not the
// recorded revision, the schedule file's revision was made current by an
// apply after the schedule was edited (or nothing was ever recorded), and
// it is deployed onto the history as by Deploy, and is Built: the file
// names it, its artifact holds it.
func (r Revisions) Current(s *config.Schedule, app string) Deployed {
	d := r.Apps[app]
	eff := r.Effective(s)[app]
	if eff == "" || eff == d.Revision {
		return d
	}
	d = d.Deploy(eff)
	d.Built = eff
	return d
}

// Artifacts returns, per application of the schedule, the revision whose
// build an artifact that does not name {{.Revision}} holds (Current's
// ArtifactRevision; "" for the schedule file's), for
// Converger.WithArtifactRevision.
func (r Revisions) Artifacts(s *config.Schedule) map[string]string {
	out := map[string]string{}
	for _, a := range s.Applications {
		out[a.Name] = r.Current(s, a.Name).ArtifactRevision()
	}
	return out
}

// LockWait is how long UpdateRevisions waits for the lock another tide
// command holds.
const LockWait = 30 * time.Second

// UpdateRevisions reads the revisions file at path, lets update change
// it and writes it back, holding an exclusive lock (flock(2) on
// path+".lock") from the read to the write: tide deploy, rollback, apply
// and serve, in any process, lose none of each other's updates. It waits
// for the lock until ctx is done or LockWait has passed. Nothing is
// written when update fails or changes nothing.
func UpdateRevisions(ctx context.Context, path string, update func(*Revisions) error) error {
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	r, err := LoadRevisions(path)
	if err != nil {
		return err
	}
	before, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := update(&r); err != nil {
		return err
	}
	if r.Apps == nil {
		r.Apps = map[string]Deployed{}
	}
	after, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		return nil
	}
	return r.Save(path)
}

// lockFile takes an exclusive flock on path (created if missing) and
// writes this process's id in it, for the error of the next one waiting.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("locking revisions: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking revisions: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	start := time.Now()
	wait := 2 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking revisions %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			holder, _ := os.ReadFile(path)
			f.Close()
			by := "another tide command"
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				by += " (pid " + pid + ")"
			}
			return nil, fmt.Errorf("revisions file locked by %s: gave up waiting for %s after %s: %w",
				by, path, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// RevisionsPath is the revisions file of a fleet in a state directory.
func RevisionsPath(stateDir, fleetName string) string {
	return filepath.Join(stateDir, "fleets", fleetName, "revisions.json")
}

// LoadRevisions reads a revisions file; a missing file is empty.
func LoadRevisions(path string) (Revisions, error) {
	r := Revisions{Apps: map[string]Deployed{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("reading revisions: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("reading revisions %s: %w", path, err)
	}
	if r.Apps == nil {
		r.Apps = map[string]Deployed{}
	}
	return r, nil
}

// Save writes the file atomically: a synced temporary file renamed over
// it. It does not lock: a read-modify-write goes through UpdateRevisions.
func (r Revisions) Save(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving revisions: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".revisions.*.tmp")
	if err != nil {
		return fmt.Errorf("saving revisions: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("saving revisions: %w", err)
	}
	return nil
}

// Effective returns, per application of the schedule, the revision to
// converge to, by the precedence above.
func (r Revisions) Effective(s *config.Schedule) map[string]string {
	out := map[string]string{}
	for _, a := range s.Applications {
		out[a.Name] = a.Revision
		if d, ok := r.Apps[a.Name]; ok && d.Revision != "" && d.ScheduleRevision == a.Revision {
			out[a.Name] = d.Revision
		}
	}
	return out
}
