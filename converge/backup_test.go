package converge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/dir"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// bigBackupSize is the size of the archive TestBackupStreams backs up:
// well above what tide may hold in memory for it.
const bigBackupSize = 64 << 20

// bigSchedule's backup writes bigBackupSize random bytes.
var bigSchedule = fmt.Sprintf(`name: conv
applications:
  - name: kv
    revision: "1"
    roles: [db]
    commands:
      start: while :; do sleep 1; done
      backup: head -c %d /dev/urandom > "{{.Backup}}"
      restore: "true"
roles:
  - name: db
    stateful: true
    min: 0
    max: 1
`, bigBackupSize)

// recordingStore records the readers Put is given.
type recordingStore struct {
	converge.Store
	mu      sync.Mutex
	readers map[string]string // key -> the reader's type
	seekers map[string]bool
}

func (s *recordingStore) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	s.mu.Lock()
	s.readers[key] = fmt.Sprintf("%T", r)
	_, s.seekers[key] = r.(io.Seeker)
	s.mu.Unlock()
	return s.Store.Put(ctx, key, r, size)
}

// heapPeak samples the live heap until stop is called, and returns the
// highest value seen. runtime/metrics does not stop the world, so the
// sampling does not slow the backup down much.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var hi uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			hi = max(hi, sample[0].Value.Uint64())
			select {
			case <-done:
				peak <- hi
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

func heapNow() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// TestBackupStreams backs up a 64 MiB archive from a local-cloud host into
// a directory store and into versitygw (S3), then restores it on a new
// host, and checks tide's heap never grew by anything near that: the
// archive goes through a spool file on the way out and straight from the
// store's body into the host on the way back, never through memory. It also checks the store was handed a seekable file (what the S3
// client needs to sign and retry) and that the spool file is gone
// afterwards. Not parallel: the heap is measured.
func TestBackupStreams(t *testing.T) {
	for _, sc := range []struct {
		name string
		open func(t *testing.T) converge.Store
	}{
		{"dir", func(t *testing.T) converge.Store {
			st, err := dir.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"versitygw", func(t *testing.T) converge.Store {
			return s3test.StartVersity(t, "tide-backups").Client(t).Store("tide-backups", "prod")
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			spool := t.TempDir()
			t.Setenv("TMPDIR", spool)
			inner := sc.open(t)
			st := &recordingStore{Store: inner, readers: map[string]string{}, seekers: map[string]bool{}}
			tc := newTestCloud(t)
			c := newConverger(t, bigSchedule, func(o *converge.Options) { o.Store = st })
			db := tc.launch(t, "conv", "db-1", "t3.large")
			if err := c.Converge(ctx, db.h, db.inst, "db"); err != nil {
				t.Fatal(err)
			}

			runtime.GC()
			base := heapNow()
			stop := heapPeak()
			err := c.BeforeTerminate(ctx, db.h, db.inst)
			peak := stop()
			if err != nil {
				t.Fatal(err)
			}
			grew := int64(peak) - int64(base)
			t.Logf("heap before %d MiB, peak %d MiB (grew %d MiB) for a %d MiB backup", base>>20, peak>>20, grew>>20, bigBackupSize>>20)
			if grew > bigBackupSize/4 {
				t.Errorf("tide's heap grew by %d MiB while backing up %d MiB: the archive was held in memory", grew>>20, bigBackupSize>>20)
			}

			b, err := converge.Latest(ctx, inner, "conv", "db", "kv")
			if err != nil {
				t.Fatal(err)
			}
			if b.Size != bigBackupSize || b.VerifiedAt.IsZero() {
				t.Errorf("latest backup %+v, want %d bytes, verified", b, bigBackupSize)
			}
			if !st.seekers[b.Key] || strings.Contains(st.readers[b.Key], "bytes.") {
				t.Errorf("the store was given a %s (seekable %v) for the archive, want a spool file", st.readers[b.Key], st.seekers[b.Key])
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Errorf("spool files left behind: %v", left)
			}
			if out := run(t, db, "ls "+db.data+"/apps/kv/backups"); out != "" {
				t.Errorf("archives left on the host: %s", out)
			}

			// A new host restores it: the store's body streams into the
			// host's standard input, not through memory either.
			db2 := tc.launch(t, "conv", "db-2", "t3.large")
			runtime.GC()
			base = heapNow()
			stop = heapPeak()
			err = c.Converge(ctx, db2.h, db2.inst, "db")
			peak = stop()
			if err != nil {
				t.Fatal(err)
			}
			if got := run(t, db2, "cat "+db2.data+"/apps/kv/.tide-restored"); got != b.Key {
				t.Errorf("the new host restored %q, want %s", got, b.Key)
			}
			grew = int64(peak) - int64(base)
			t.Logf("restore: heap before %d MiB, peak %d MiB (grew %d MiB)", base>>20, peak>>20, grew>>20)
			if grew > bigBackupSize/4 {
				t.Errorf("tide's heap grew by %d MiB while restoring %d MiB: the archive was held in memory", grew>>20, bigBackupSize>>20)
			}
		})
	}
}

// smallSchedule's backups are small; %d is backups.keep.
const smallSchedule = `name: conv
backups:
  keep: %d
applications:
  - name: kv
    revision: "1"
    roles: [db]
    commands:
      start: while :; do sleep 1; done
      backup: date +%%s%%N > "{{.Backup}}"
      restore: "true"
roles:
  - name: db
    stateful: true
    min: 0
    max: 1
`

// TestBackupRetention backs a host up several times into each kind of
// store and checks the store keeps the newest backups.keep archives, the
// latest always among them.
func TestBackupRetention(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t)
	db := tc.launch(t, "conv", "db-1", "t3.large")
	const prefix = "conv/db/kv/"
	// A backup whose name sorts after any made now: retention must keep
	// the latest even when an older one has a newer-looking name.
	const future = prefix + "29991231T000000.000000000Z-db-9.backup"
	for _, tt := range []struct {
		name    string
		keep    int
		backups int
		seed    bool
		want    int // backups left, the future one included
	}{
		{"keep 2 of 4", 2, 4, false, 2},
		{"keep 0 keeps all", 0, 3, false, 3},
		{"the latest is kept even when it does not sort last", 1, 2, true, 2},
	} {
		for _, sc := range stores {
			t.Run(sc.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				st, _ := sc.open(t)
				if tt.seed {
					if _, err := st.Put(ctx, future, strings.NewReader("old\n"), 4); err != nil {
						t.Fatal(err)
					}
				}
				c := newConverger(t, fmt.Sprintf(smallSchedule, tt.keep), func(o *converge.Options) { o.Store = st })
				if err := c.Converge(ctx, db.h, db.inst, "db"); err != nil {
					t.Fatal(err)
				}
				var made []string
				for range tt.backups {
					if err := c.BeforeTerminate(ctx, db.h, db.inst); err != nil {
						t.Fatal(err)
					}
					b, err := converge.Latest(ctx, st, "conv", "db", "kv")
					if err != nil {
						t.Fatal(err)
					}
					made = append(made, b.Key)
				}
				objs, err := st.(lister).List(ctx, prefix)
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, o := range objs {
					if strings.HasSuffix(o.Key, ".backup") {
						left = append(left, o.Key)
					}
				}
				latest := made[len(made)-1]
				if len(left) != tt.want || !slices.Contains(left, latest) {
					t.Errorf("backups left %q, want %d of them with the latest %s", left, tt.want, latest)
				}
				if tt.keep > 0 && !tt.seed {
					if want := made[len(made)-tt.keep:]; !slices.Equal(left, want) {
						t.Errorf("backups left %q, want the newest %q", left, want)
					}
				}
				if tt.seed && !slices.Contains(left, future) {
					t.Errorf("backups left %q: the newest-named one went", left)
				}
			})
		}
	}
}

// lister is what the test reads a store's keys with.
type lister interface {
	List(ctx context.Context, prefix string) ([]objstore.Info, error)
}

// TestRestoredHostIsBackedUpAgain follows a stateful role's data through
// two generations of hosts: a host that restored a backup is marked
// restored, so that converging it again leaves its newer data alone and
// scaling it down backs that data up rather than terminating it with
// "nothing to back up".
func TestRestoredHostIsBackedUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestCloud(t)
	c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store = st })
	f := newFleet(t, tc, c, deployer.Role{Name: "db"})
	value := func(db target) string { return db.data + "/apps/kv/data/value" }

	if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	db := tc.connect(t, liveHosts(t, tc)["db-1"])
	run(t, db, "echo first > "+value(db))
	if rep := reconcile(t, f, map[string]int{"db": 0}); rep.Err() != nil || rep.Count(deployer.ActionRemoved) != 1 {
		t.Fatalf("first scale-down: %s: %v", rep.Summary(), rep.Err())
	}
	first, err := converge.Latest(ctx, st, "conv", "db", "kv")
	if err != nil {
		t.Fatal(err)
	}

	if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	db = tc.connect(t, liveHosts(t, tc)["db-1"])
	if got := run(t, db, "cat "+value(db)); got != "first" {
		t.Fatalf("restored value %q, want first", got)
	}
	run(t, db, "echo second > "+value(db))
	// Converging the kept host again must not restore over its data.
	if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil || rep.Count(deployer.ActionKept) != 1 {
		t.Fatalf("second converge: %s: %v", rep.Summary(), rep.Err())
	}
	if got := run(t, db, "cat "+value(db)); got != "second" {
		t.Fatalf("after converging again the value is %q, want second: the backup was restored over newer data", got)
	}
	if rep := reconcile(t, f, map[string]int{"db": 0}); rep.Err() != nil || rep.Count(deployer.ActionRemoved) != 1 {
		t.Fatalf("second scale-down: %s: %v", rep.Summary(), rep.Err())
	}
	second, err := converge.Latest(ctx, st, "conv", "db", "kv")
	if err != nil || second.Key == first.Key {
		t.Fatalf("the restored host was not backed up: latest %+v, %v (the first %s)", second, err, first.Key)
	}

	if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	db = tc.connect(t, liveHosts(t, tc)["db-1"])
	if got := run(t, db, "cat "+value(db)); got != "second" {
		t.Errorf("third generation's value %q, want second", got)
	}
}

// corruptDir is a directory store that flips a byte of every object put.
type corruptDir struct{ *dir.Store }

func (s corruptDir) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	return corruptStore{s.Store}.Put(ctx, key, r, size)
}

// TestFailedBackupLeavesNothing checks what an unverified backup leaves:
// no archive on the host (a retry makes a new one), none in the store.
func TestFailedBackupLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestCloud(t)
	db := tc.launch(t, "conv", "db-1", "t3.large")
	c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store = corruptDir{inner} })
	if err := c.Converge(ctx, db.h, db.inst, "db"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.BeforeTerminate(ctx, db.h, db.inst); !errors.Is(err, converge.ErrBackupUnverified) {
			t.Fatalf("backup into a corrupting store: %v, want ErrBackupUnverified", err)
		}
	}
	if out := run(t, db, "ls "+db.data+"/apps/kv/backups"); out != "" {
		t.Errorf("archives left on the host: %s", out)
	}
	if objs, err := inner.List(ctx, "conv/"); err != nil || len(objs) != 0 {
		t.Errorf("objects left in the store: %v, %v", objs, err)
	}
}
