package converge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tideops/tide/config"
)

// Revisions is what tide deploy and tide rollback persisted, per
// application, in the state directory (fleets/<name>/revisions.json), so
// that later reconciles (tide apply, tide serve) converge new hosts to the
// deployed revision rather than the schedule file's.
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
	ScheduleRevision string    `json:"schedule_revision"`
	At               time.Time `json:"at"`
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
// history held it) and the oldest go beyond HistoryLimit.
func (d Deployed) Deploy(rev string) Deployed {
	revs, cur := d.Branch()
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
	return d.Deploy(rev)
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
// it is deployed onto the history as by Deploy.
func (r Revisions) Current(s *config.Schedule, app string) Deployed {
	d := r.Apps[app]
	eff := r.Effective(s)[app]
	if eff == "" || eff == d.Revision {
		return d
	}
	return d.Deploy(eff)
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

// Save writes the file atomically: a synced temporary file renamed over it.
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
