package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tideops/tide/fleet"
)

// record is one instance as the state file keeps it. State is what tide
// asked for (pending until booted is worked out from the host directory):
// pending for a launched host, shutting-down while it is being stopped,
// terminated once it is gone.
type record struct {
	ID           string            `json:"id"`
	ClientToken  string            `json:"client_token,omitempty"`
	Fleet        string            `json:"fleet,omitempty"`
	Role         string            `json:"role,omitempty"`
	Label        string            `json:"label,omitempty"`
	Type         string            `json:"type,omitempty"`
	Zone         string            `json:"zone,omitempty"`
	Image        string            `json:"image,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	Address      string            `json:"address"`
	PID          int               `json:"pid"`
	State        fleet.State       `json:"state"`
	LaunchedAt   time.Time         `json:"launched_at"`
	TerminatedAt time.Time         `json:"terminated_at,omitzero"`
}

// state is the content of instances.json.
type state struct {
	Version int `json:"version"`
	// Next is the offset in the network of the next address to try, so
	// that addresses are handed out round-robin and reused as late as
	// possible (a reused address has a new host key).
	Next      int       `json:"next"`
	Instances []*record `json:"instances"`
}

func (s *state) find(id string) *record {
	for _, r := range s.Instances {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// store is the state file, shared by every tide process using the state
// directory: writes happen under an exclusive flock and replace the file
// atomically, so readers need no lock.
type store struct {
	dir string // <state>/local
}

func (st store) path() string     { return filepath.Join(st.dir, "instances.json") }
func (st store) hostsDir() string { return filepath.Join(st.dir, "hosts") }

func (st store) hostDir(id string) string { return filepath.Join(st.hostsDir(), id) }

// read returns the current state; a missing file is an empty state.
func (st store) read() (*state, error) {
	data, err := os.ReadFile(st.path())
	if errors.Is(err, os.ErrNotExist) {
		return &state{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading local cloud state: %w", err)
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parsing local cloud state: %w", err)
	}
	return &s, nil
}

// errUnchanged, returned by an update function, skips the write.
var errUnchanged = errors.New("state unchanged")

// update runs fn on the state under the file lock and writes the result
// when fn returns nil.
func (st store) update(fn func(*state) error) error {
	if err := os.MkdirAll(st.hostsDir(), 0o755); err != nil {
		return fmt.Errorf("creating local cloud state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(st.dir, "instances.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening local cloud lock: %w", err)
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("locking local cloud state: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too

	s, err := st.read()
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		if errors.Is(err, errUnchanged) {
			return nil
		}
		return err
	}
	return st.write(s)
}

// write replaces the state file with s. Only call it under the lock, from
// an update function (to record a step before taking the next).
func (st store) write(s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding local cloud state: %w", err)
	}
	return writeFileAtomic(st.path(), append(data, '\n'), 0o644)
}
