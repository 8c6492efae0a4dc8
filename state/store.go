package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database's file name inside the data directory.
const FileName = "tide.db"

// Errors callers may branch on.
var (
	// ErrLocked says another process holds the database open.
	ErrLocked = errors.New("state database is in use by another process")
	// ErrNotFound says a keyed entry (an operation) does not exist.
	ErrNotFound = errors.New("not found")
)

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// LockTimeout is how long Open waits for the file lock. Default 1s.
	LockTimeout time.Duration
	// DecisionRetention is how long decisions are kept, counted back from
	// the newest appended decision of the role. Default 7 days.
	DecisionRetention time.Duration
	// DecisionsPerRole bounds the decisions kept per role. Default 20000
	// (a week at one decision every 30 s).
	DecisionsPerRole int
	// SampleRetention is how long load samples are kept, counted back from
	// the newest appended sample of the role. Default 10 weeks.
	SampleRetention time.Duration
	// DurationsPerKind bounds the durations kept per role and kind.
	// Default 200.
	DurationsPerKind int
	// DurationRetention is how long durations are kept, counted back from
	// the newest appended one of the role and kind. Default 30 days.
	DurationRetention time.Duration
	// LeadTimeMinSamples is how many durations LeadTime needs before it
	// trusts them over its fallback. Default 5.
	LeadTimeMinSamples int
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// can then lose committed data.
	NoSync bool
}

func (o *Options) defaults() {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.DecisionRetention <= 0 {
		o.DecisionRetention = 7 * 24 * time.Hour
	}
	if o.DecisionsPerRole <= 0 {
		o.DecisionsPerRole = 20000
	}
	if o.SampleRetention <= 0 {
		o.SampleRetention = 10 * 7 * 24 * time.Hour
	}
	if o.DurationsPerKind <= 0 {
		o.DurationsPerKind = 200
	}
	if o.DurationRetention <= 0 {
		o.DurationRetention = 30 * 24 * time.Hour
	}
	if o.LeadTimeMinSamples <= 0 {
		o.LeadTimeMinSamples = 5
	}
}

// Bucket names. Histories keep one nested bucket per role (and kind), so
// that a role's entries are contiguous and sorted by time.
var (
	bucketOverrides      = []byte("overrides")       // role -> JSON Override
	bucketDecisions      = []byte("decisions")       // role/ -> time+seq -> JSON Record
	bucketDecisionCounts = []byte("decision_counts") // role -> uint64
	bucketSamples        = []byte("samples")         // role/ -> time -> float64 bits
	bucketDurations      = []byte("durations")       // role/kind/ -> time+seq -> int64 nanos
	bucketDesired        = []byte("desired")         // role -> JSON DesiredEntry
	bucketMeta           = []byte("meta")            // "schema" -> version
)

const schemaVersion = 1

// Store is tide's state database. It is safe for concurrent use by
// goroutines; bbolt serializes writers and lets readers run alongside.
type Store struct {
	db   *bolt.DB
	opts Options
	path string
}

// Open opens (creating if needed) the database in dir. It fails with an
// error wrapping ErrLocked when another process holds it open for longer
// than Options.LockTimeout.
func Open(dir string, o Options) (*Store, error) {
	o.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: %w (lock not obtained within %s; is another tide running on this data directory?)", path, ErrLocked, o.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	s := &Store{db: db, opts: o, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketOverrides, bucketDecisions, bucketDecisionCounts, bucketSamples,
			bucketDurations, bucketDesired, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("schema")); v != nil {
			if got := binary.BigEndian.Uint64(v); got != schemaVersion {
				return fmt.Errorf("state database %s has schema %d, this tide knows %d", s.path, got, schemaVersion)
			}
			return nil
		}
		return meta.Put([]byte("schema"), u64(schemaVersion))
	})
}

// Close closes the database and releases its file lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", s.path, err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// checkName rejects names that cannot be bucket keys.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s is required", what)
	}
	if strings.IndexByte(name, 0) >= 0 || len(name) > 255 {
		return fmt.Errorf("%s %q is not a valid name", what, name)
	}
	return nil
}

// timeKey encodes t so that byte order is time order, negative times
// included (the sign bit is flipped).
func timeKey(t time.Time) []byte {
	k := make([]byte, 8, 16)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano())^(1<<63))
	return k
}

// seqKey is timeKey followed by a sequence number, so that entries with
// equal times stay distinct and in insertion order.
func seqKey(t time.Time, seq uint64) []byte {
	k := timeKey(t)
	return binary.BigEndian.AppendUint64(k, seq)
}

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63))).UTC()
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func f64(v float64) []byte { return u64(math.Float64bits(v)) }

func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// nested returns the nested bucket name under parent, creating it when create is set.
func nested(parent *bolt.Bucket, name string, create bool) (*bolt.Bucket, error) {
	if b := parent.Bucket([]byte(name)); b != nil || !create {
		return b, nil
	}
	return parent.CreateBucket([]byte(name))
}

// pruneBefore deletes the keys of b that sort before cut and returns how
// many it deleted. It re-seeks after each delete (a bbolt cursor may skip
// an entry when Next follows Delete).
func pruneBefore(b *bolt.Bucket, cut []byte) (int, error) {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, cut) < 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}
