package deployer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tideops/tide/fleet"
)

// cacheVersion is the label cache file's format version.
const cacheVersion = 1

// cacheEntry is one labelled host: the label its LABEL file holds, keyed
// by instance id and valid only at the address it was read or written on.
type cacheEntry struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Label   string    `json:"label"`
	Role    string    `json:"role,omitempty"`
	At      time.Time `json:"labelled_at"`
}

// launchRecord is a label's launch generation: the client token of the
// next launch of the label is derived from it. It only moves on when the
// cloud shows that the token was spent on an instance that is gone, so a
// retry after a crash reuses the token and cannot duplicate the host.
type launchRecord struct {
	Generation int    `json:"generation"`
	InstanceID string `json:"instance_id,omitempty"`
	// Done is set once the instance was labelled: a later adoption of it
	// (after an address change) is no launch.
	Done bool `json:"done,omitempty"`
}

// startRecord is the failed starts of a stopped instance, in a row: the
// next reconcile terminates a stateless role's instance and launches its
// label anew instead of starting it again, and says how often a stateful
// role's one failed (it is started again: its data matters). A start that
// goes through the whole pipeline (labelled, converged) clears it.
type startRecord struct {
	Failures int       `json:"failures"`
	At       time.Time `json:"failed_at"`
}

// cacheFile is the label cache as stored. Starts is absent from files
// written before it existed, and from those with no failed start.
type cacheFile struct {
	Version  int                     `json:"version"`
	Fleet    string                  `json:"fleet"`
	Hosts    map[string]cacheEntry   `json:"hosts"`            // by instance id
	Launches map[string]launchRecord `json:"launches"`         // by label
	Starts   map[string]startRecord  `json:"starts,omitempty"` // by instance id
}

func newCacheFile(fleetName string) *cacheFile {
	return &cacheFile{Version: cacheVersion, Fleet: fleetName, Hosts: map[string]cacheEntry{}, Launches: map[string]launchRecord{},
		Starts: map[string]startRecord{}}
}

// instanceLabel is the label an instance's tags give it.
func instanceLabel(inst fleet.Instance) string {
	if inst.Label != "" {
		return inst.Label
	}
	return inst.Tags[fleet.TagLabel]
}

// resolve cross-references the cache with the cloud's list, without
// changing either. stale lists the entries of instances that vanished,
// left the live states or changed address. Every live instance comes back
// labelled, from a valid cache entry (Confirmed) or its label tag, except
// those with neither, which must be asked over SSH.
func (c *cacheFile) resolve(insts []fleet.Instance) (hosts []Observed, ask []fleet.Instance, stale []string) {
	live := make(map[string]int, len(insts))
	nlive := 0
	for i, inst := range insts {
		if inst.State.Live() {
			live[inst.ID] = i
			nlive++
		}
	}
	hosts = make([]Observed, 0, len(live))
	matched := 0
	for _, inst := range insts {
		if !inst.State.Live() {
			continue
		}
		if e, ok := c.Hosts[inst.ID]; ok && e.Address == inst.Address {
			hosts = append(hosts, Observed{Instance: inst, Label: e.Label, Confirmed: true})
			matched++
			continue
		}
		if l := instanceLabel(inst); l != "" {
			hosts = append(hosts, Observed{Instance: inst, Label: l})
			continue
		}
		ask = append(ask, inst)
	}
	// Each entry was matched by a live instance at its address: none is
	// stale, and the walk over the entries can be spared. (Only when no id
	// is listed twice: then no entry can be matched twice.)
	if matched == len(c.Hosts) && nlive == len(live) {
		return hosts, ask, nil
	}
	for id, e := range c.Hosts {
		if i, ok := live[id]; !ok || insts[i].Address != e.Address {
			stale = append(stale, id)
		}
	}
	return hosts, ask, stale
}

// settledStarts lists the failed starts recorded for instances the cloud
// no longer lists, or lists live: one whose start failed late (its
// Deployer failed) but that has not stopped since did not die at boot.
func (c *cacheFile) settledStarts(insts []fleet.Instance) []string {
	if len(c.Starts) == 0 {
		return nil
	}
	stoppedNow := make(map[string]bool, len(c.Starts))
	for _, inst := range insts {
		if _, ok := c.Starts[inst.ID]; ok && !inst.State.Live() {
			stoppedNow[inst.ID] = true
		}
	}
	var settled []string
	for id := range c.Starts {
		if !stoppedNow[id] {
			settled = append(settled, id)
		}
	}
	return settled
}

// labelCache is the cache file shared by a reconcile's goroutines. Every
// change is written at once, atomically (temporary file and rename); a
// change that leaves the file's bytes as they are writes nothing.
type labelCache struct {
	path string
	mu   sync.Mutex
	f    *cacheFile
	// last is the file's content as read or last written (nil when there
	// was no file); spare is a buffer for the next encoding.
	last, spare []byte
}

func loadCache(path, fleetName string) (*labelCache, error) {
	c := &labelCache{path: path, f: newCacheFile(fleetName)}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading label cache: %w", err)
	}
	f, err := decodeCacheFile(b, fleetName)
	if err != nil {
		return nil, fmt.Errorf("reading label cache %s: %w", path, err)
	}
	if f.Version != cacheVersion {
		return nil, fmt.Errorf("reading label cache %s: version %d, want %d", path, f.Version, cacheVersion)
	}
	if f.Fleet != fleetName {
		return nil, fmt.Errorf("reading label cache %s: it is fleet %q's, not %q's", path, f.Fleet, fleetName)
	}
	c.f, c.last = f, b
	return c, nil
}

// update changes the cache under its lock and writes it.
func (c *labelCache) update(change func(f *cacheFile)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(c.f)
	return c.saveLocked()
}

// startRecord returns the failed starts recorded for instance id.
func (c *labelCache) startRecord(id string) (startRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.f.Starts[id]
	return r, ok
}

func (c *labelCache) launchRecord(label string) launchRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Launches[label]
}

func (c *labelCache) saveLocked() error {
	b, err := encodeCacheFile(c.f, c.spare[:0])
	if err != nil {
		return fmt.Errorf("writing label cache: %w", err)
	}
	if c.last != nil && bytes.Equal(b, c.last) {
		c.spare = b
		return nil // the reconcile holds the lock: the file is still c.last
	}
	if err := writeFileAtomic(c.path, b); err != nil {
		c.last, c.spare = nil, b[:0] // unsure what the file holds now
		return err
	}
	c.last, c.spare = b, c.last
	return nil
}

// writeFileAtomic writes b to a temporary file next to path, syncs it and
// renames it over path, so a reader sees the old file or the new one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// lockFile takes an exclusive, non-blocking flock on path. It returns
// ErrBusy when another process holds it.
func lockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
