package converge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// Deployed is one application's deployed revision.
type Deployed struct {
	Revision string `json:"revision"`
	// Previous is the revision the deploy replaced: where rollback goes.
	Previous string `json:"previous,omitempty"`
	// ScheduleRevision is the schedule file's revision at the time.
	ScheduleRevision string    `json:"schedule_revision"`
	At               time.Time `json:"at"`
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
