package converge_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/dir"
)

// plainDrainer hides the Converger's BeforeTerminateDuplicate: the
// deployer drains a duplicate as any other host, as before it existed.
type plainDrainer struct{ c *converge.Converger }

func (p plainDrainer) BeforeTerminate(ctx context.Context, h deployer.Host, inst fleet.Instance) error {
	return p.c.BeforeTerminate(ctx, h, inst)
}

// TestDuplicateNotBackedUp: a stateful label held by a live host and a
// newer duplicate (state an older tide could leave) keeps the live host
// and removes the duplicate, on real local hosts. Through
// BeforeTerminateDuplicate the duplicate's processes are stopped and its
// data, which may be older than the live host's, is not backed up: no
// latest.json appears. A Drainer without it backs the duplicate up as the
// role's latest, which is what the duplicate path prevents.
func TestDuplicateNotBackedUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plain  bool
		latest bool // the duplicate's backup becomes latest.json
	}{
		{name: "duplicate drainer", latest: false},
		{name: "plain drainer", plain: true, latest: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := dir.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cloud := newTestCloud(t)
			c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store = st })
			var drainer deployer.Drainer = c
			if tc.plain {
				drainer = plainDrainer{c}
			}
			f, err := deployer.New(deployer.Options{
				Name: "conv", Cloud: cloud, HostKeys: cloud, Dialer: cloud,
				CachePath: filepath.Join(t.TempDir(), "labels.json"),
				Roles:     []deployer.Role{{Name: "db", Stateful: true}}, Concurrency: 4, Deployer: c, Drainer: drainer,
				Timeouts: deployer.Timeouts{PollMin: 20 * time.Millisecond, PollMax: 200 * time.Millisecond, SSH: 20 * time.Second, SSHRemove: 5 * time.Second},
			})
			if err != nil {
				t.Fatal(err)
			}
			value := func(db target) string { return db.data + "/apps/kv/data/value" }

			if rep := reconcile(t, f, map[string]int{"db": 1}); rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			live := cloud.connect(t, liveHosts(t, cloud)["db-1"])
			run(t, live, "echo newest > "+value(live))
			// The duplicate: converged (so restored, its data the role's
			// as far as a backup can tell), holding older data.
			dup := cloud.launch(t, "conv", "db-1", "t3.large")
			if err := c.Converge(ctx, dup.h, dup.inst, "db"); err != nil {
				t.Fatal(err)
			}
			run(t, dup, "echo older > "+value(dup))

			rep := reconcile(t, f, map[string]int{"db": 1})
			if rep.Err() != nil {
				t.Fatal(rep.Err())
			}
			if rep.Count(deployer.ActionKept) != 1 || rep.Count(deployer.ActionRemoved) != 1 {
				t.Fatalf("reconcile: %s", rep.Summary())
			}
			for _, r := range rep.Hosts {
				if r.Action == deployer.ActionRemoved && (r.InstanceID != dup.inst.ID || r.Reason != deployer.ReasonDuplicate) {
					t.Errorf("removed %s (%s), want the duplicate %s", r.InstanceID, r.Reason, dup.inst.ID)
				}
			}
			if got := liveHosts(t, cloud)["db-1"]; got.ID != live.inst.ID {
				t.Errorf("db-1 is on %s, want the live holder %s", got.ID, live.inst.ID)
			}
			if got := run(t, live, "cat "+value(live)); got != "newest" {
				t.Errorf("the holder's value %q, want newest", got)
			}
			b, err := converge.Latest(ctx, st, "conv", "db", "kv")
			switch {
			case tc.latest && (err != nil || b.InstanceID != dup.inst.ID):
				t.Errorf("latest %+v, %v: want the duplicate's backup (a plain Drainer backs it up)", b, err)
			case !tc.latest && !errors.Is(err, objstore.ErrNotFound):
				t.Errorf("latest %+v, %v: the duplicate's data became the role's latest backup", b, err)
			}
		})
	}
}
