package converge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/dir"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// newFleet wires a deployer.Fleet on a local test cloud to a converger.
func newFleet(t testing.TB, tc *testCloud, c *converge.Converger, roles ...deployer.Role) *deployer.Fleet {
	t.Helper()
	f, err := deployer.New(deployer.Options{
		Name: "conv", Cloud: tc, HostKeys: tc, Dialer: tc,
		CachePath: filepath.Join(t.TempDir(), "labels.json"),
		Roles:     roles, Concurrency: 20, Deployer: c, Drainer: c,
		Timeouts: deployer.Timeouts{PollMin: 20 * time.Millisecond, PollMax: 200 * time.Millisecond, SSH: 20 * time.Second, SSHRemove: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// liveHosts returns the fleet's live instances by label.
func liveHosts(t testing.TB, tc *testCloud) map[string]fleet.Instance {
	t.Helper()
	insts, err := tc.List(context.Background(), "conv")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fleet.Instance{}
	for _, in := range insts {
		if in.State.Live() {
			out[in.Label] = in
		}
	}
	return out
}

func (tc *testCloud) connect(t testing.TB, inst fleet.Instance) target {
	t.Helper()
	fps, err := tc.HostKeyFingerprints(context.Background(), inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tc.dialer.DialRetry(context.Background(), inst.Address, fps, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return target{h: sshHost{c}, inst: inst, data: inst.Tags[deployer.TagDataPath]}
}

func reconcile(t testing.TB, f *deployer.Fleet, desired map[string]int) deployer.Report {
	t.Helper()
	rep, err := f.Reconcile(context.Background(), desired)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

const statefulSchedule = `name: conv
applications:
  - name: kv
    revision: "1"
    roles: [db]
    commands:
      setup: mkdir -p data
      start: while :; do sleep 1; done
      backup: tar -czf "{{.Backup}}" data
      restore: tar -xzf "{{.Backup}}"
roles:
  - name: db
    stateful: true
    min: 0
    max: 2
`

// stores are the backup stores the round trip runs against.
var stores = []struct {
	name string
	open func(t *testing.T) (converge.Store, func(*converge.Options))
}{
	{"dir", func(t *testing.T) (converge.Store, func(*converge.Options)) {
		st, err := dir.New(filepath.Join(t.TempDir(), "backups"))
		if err != nil {
			t.Fatal(err)
		}
		return st, nil
	}},
	{"gofakes3", func(t *testing.T) (converge.Store, func(*converge.Options)) {
		srv := s3test.StartFake(t, "tide-backups")
		return srv.Client(t).Store("tide-backups", "prod"), nil
	}},
	{"versitygw", func(t *testing.T) (converge.Store, func(*converge.Options)) {
		srv := s3test.StartVersity(t, "tide-backups")
		return srv.Client(t).Store("tide-backups", "prod"), nil
	}},
}

// TestStatefulRoundTrip writes data on the stateful role, scales it to
// zero, finds a verified backup in the store, scales up again and reads
// the same data back.
func TestStatefulRoundTrip(t *testing.T) {
	t.Parallel()
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := sc.open(t)
			tc := newTestCloud(t)
			c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store = st })
			f := newFleet(t, tc, c, deployer.Role{Name: "db"})

			if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			db := tc.connect(t, liveHosts(t, tc)["db-1"])
			run(t, db, "echo 'the ledger' > "+db.data+"/apps/kv/data/value")

			rep := reconcile(t, f, map[string]int{"db": 0})
			if rep.Err() != nil || rep.Count(deployer.ActionRemoved) != 1 {
				t.Fatalf("scaling to zero: %s: %v", rep.Summary(), rep.Err())
			}
			if left := liveHosts(t, tc); len(left) != 0 {
				t.Fatalf("hosts left after scaling to zero: %v", left)
			}
			b, err := converge.Latest(ctx, st, "conv", "db", "kv")
			if err != nil {
				t.Fatalf("no backup after scaling to zero: %v", err)
			}
			rc, err := st.Get(ctx, b.Key)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if int64(len(data)) != b.Size || hex.EncodeToString(sum[:]) != b.SHA256 || b.VerifiedAt.IsZero() || b.Label != "db-1" {
				t.Errorf("backup in the store does not match its manifest: %d bytes, %x; manifest %+v", len(data), sum, b)
			}

			if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			db = tc.connect(t, liveHosts(t, tc)["db-1"])
			if got := run(t, db, "cat "+db.data+"/apps/kv/data/value"); got != "the ledger" {
				t.Errorf("data after scaling up again: %q, want %q", got, "the ledger")
			}
			if as := appState(t, db, "kv"); as.Running != 1 || as.Revision != "1" {
				t.Errorf("kv on the new host: %+v", as)
			}
		})
	}
}

// corruptStore flips a byte of every object it stores.
type corruptStore struct{ converge.Store }

func (s corruptStore) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return objstore.Info{}, err
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
	return s.Store.Put(ctx, key, bytes.NewReader(b), size)
}

func TestUnverifiedBackupPreventsTermination(t *testing.T) {
	ctx := context.Background()
	inner, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestCloud(t)
	c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store = corruptStore{inner} })
	f := newFleet(t, tc, c, deployer.Role{Name: "db"})
	if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	rep := reconcile(t, f, map[string]int{"db": 0})
	if rep.Count(deployer.ActionFailed) != 1 || !errors.Is(rep.Err(), converge.ErrBackupUnverified) {
		t.Fatalf("scaling to zero with a corrupting store: %s: %v", rep.Summary(), rep.Err())
	}
	if rep.Hosts[0].Kind != deployer.KindBeforeTerminate {
		t.Errorf("failure kind %q, want %q", rep.Hosts[0].Kind, deployer.KindBeforeTerminate)
	}
	if _, ok := liveHosts(t, tc)["db-1"]; !ok {
		t.Fatal("the last db host was terminated without a verified backup")
	}
	if _, err := converge.Latest(ctx, inner, "conv", "db", "kv"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("an unverified backup was recorded as the latest: %v", err)
	}
	// Without any store, a stateful host is never terminated either.
	c2 := newConverger(t, statefulSchedule, nil)
	if err := c2.BeforeTerminate(ctx, nil, liveHosts(t, tc)["db-1"]); !errors.Is(err, converge.ErrUnreachable) {
		t.Errorf("unreachable stateful host: %v, want ErrUnreachable", err)
	}
	db := tc.connect(t, liveHosts(t, tc)["db-1"])
	if err := c2.BeforeTerminate(ctx, db.h, db.inst); !errors.Is(err, converge.ErrNoStore) {
		t.Errorf("stateful host without a store: %v, want ErrNoStore", err)
	}
}

func TestFailingHostIsReplaced(t *testing.T) {
	const text = `name: conv
applications:
  - name: web
    revision: "1"
    roles: [web]
    commands:
      setup: test -f "$TIDE_DATA/healthy"
      start: while :; do sleep 1; done
roles:
  - name: web
    min: 0
    max: 2
`
	tc := newTestCloud(t)
	c := newConverger(t, text, nil)
	f := newFleet(t, tc, c, deployer.Role{Name: "web"})
	rep := reconcile(t, f, map[string]int{"web": 1})
	if rep.Count(deployer.ActionFailed) != 1 {
		t.Fatalf("want one failed host: %s", rep.Summary())
	}
	h := rep.Hosts[0]
	if h.Reason != deployer.ReasonReplaced || h.Kind != deployer.KindDeploy || !strings.Contains(h.Err.Error(), "setup") {
		t.Errorf("failed host: reason %q kind %q err %v", h.Reason, h.Kind, h.Err)
	}
	if left := liveHosts(t, tc); len(left) != 0 {
		t.Errorf("the failed host was not terminated: %v", left)
	}
}

// TestHostsTemplate checks that the web role learns the db hosts'
// addresses.
func TestHostsTemplate(t *testing.T) {
	const text = `name: conv
applications:
  - name: web
    revision: "1"
    roles: [web]
    commands:
      deploy: echo '{{join (index .Hosts "db") ","}}' > db-hosts && echo "$TIDE_HOSTS_DB" > db-hosts-env
      start: while :; do sleep 1; done
roles:
  - name: web
    min: 0
    max: 2
  - name: db
    min: 0
    max: 2
`
	tc := newTestCloud(t)
	var f *deployer.Fleet
	c := newConverger(t, text, func(o *converge.Options) {
		o.Peers = func(ctx context.Context) (map[string][]string, error) {
			hs, err := f.Status(ctx)
			if err != nil {
				return nil, err
			}
			out := map[string][]string{}
			for _, h := range hs {
				if h.State == fleet.StateRunning && h.Address != "" {
					out[h.Role] = append(out[h.Role], h.Address)
				}
			}
			return out, nil
		}
	})
	f = newFleet(t, tc, c, deployer.Role{Name: "web"}, deployer.Role{Name: "db"})
	if rep := reconcile(t, f, map[string]int{"db": 2}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	hosts := liveHosts(t, tc)
	want := hosts["db-1"].Address + "," + hosts["db-2"].Address
	if rep := reconcile(t, f, map[string]int{"db": 2, "web": 1}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	web := tc.connect(t, liveHosts(t, tc)["web-1"])
	if got := run(t, web, "cat "+web.data+"/apps/web/current/db-hosts"); got != want {
		t.Errorf(".Hosts.db = %q, want %q", got, want)
	}
	if got := run(t, web, "cat "+web.data+"/apps/web/current/db-hosts-env"); got != strings.ReplaceAll(want, ",", " ") {
		t.Errorf("TIDE_HOSTS_DB = %q", got)
	}
}
