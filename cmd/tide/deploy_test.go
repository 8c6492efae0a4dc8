package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/objstore/dir"
)

const deploySchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 100ms
ssh:
  port: 2222
  deadline: 1m
applications:
  - name: shop
    revision: "1.0"
    roles: [web]
    processes: {t3.medium: 3, default: 1}
    commands:
      deploy: echo "{{.Revision}}" > REVISION && test "{{.Revision}}" != bad
      start: while :; do sleep 1; done
      health: test "$(cat current/REVISION)" = "{{.Revision}}"
  - name: ledger
    revision: "1"
    roles: [db]
    commands:
      setup: mkdir -p data && echo kept > data/value
      start: while :; do sleep 1; done
      backup: tar -czf "{{.Backup}}" data
      restore: tar -xzf "{{.Backup}}"
roles:
  - name: db
    instance_type: t3.large
    stateful: true
    min: 1
    max: 1
  - name: web
    instance_type: t3.medium
    min: 2
    max: 4
`

type statusRow struct {
	Label     string `json:"label"`
	Revision  string `json:"revision"`
	Processes string `json:"processes"`
}

func (f *fleetEnv) status(ctx context.Context) map[string]statusRow {
	f.t.Helper()
	code, out, errs := f.run(ctx, "status", "--output", "json")
	if code != 0 {
		f.t.Fatalf("status: exit %d\n%s", code, errs)
	}
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		f.t.Fatalf("status output: %v\n%s", err, out)
	}
	m := map[string]statusRow{}
	for _, r := range rows {
		m[r.Label] = r
	}
	return m
}

func TestDeployAndRollback(t *testing.T) {
	ctx := context.Background()
	f := newFleetEnv(t, "deploytest", "127.0.61.0/24")
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(deploySchedule, "deploytest", "127.0.61.0/24")), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.run(ctx, "apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	wantStatus := func(step string, want map[string]statusRow) {
		t.Helper()
		got := f.status(ctx)
		for label, w := range want {
			if g := got[label]; g.Revision != w.Revision || g.Processes != w.Processes {
				t.Errorf("%s: %s shows %q / %q, want %q / %q", step, label, g.Revision, g.Processes, w.Revision, w.Processes)
			}
		}
	}
	wantStatus("after apply", map[string]statusRow{
		"web-1": {Revision: "shop=1.0", Processes: "shop=3"},
		"web-2": {Revision: "shop=1.0", Processes: "shop=3"},
		"db-1":  {Revision: "ledger=1", Processes: "ledger=1"},
	})

	if code, out, errs := f.run(ctx, "deploy", "--app", "shop", "--revision", "1.1", "--batch", "1"); code != 0 {
		t.Fatalf("deploy 1.1: exit %d\n%s\n%s", code, out, errs)
	}
	wantStatus("after deploy 1.1", map[string]statusRow{
		"web-1": {Revision: "shop=1.1", Processes: "shop=3"},
		"web-2": {Revision: "shop=1.1", Processes: "shop=3"},
	})
	revs, err := converge.LoadRevisions(converge.RevisionsPath(f.stateDir, "deploytest"))
	if err != nil {
		t.Fatal(err)
	}
	if d := revs.Apps["shop"]; d.Revision != "1.1" || d.Previous != "1.0" || d.ScheduleRevision != "1.0" {
		t.Errorf("recorded %+v", d)
	}

	// A later apply keeps the deployed revision, not the file's.
	if code, out, errs := f.run(ctx, "apply"); code != 0 {
		t.Fatalf("second apply: exit %d\n%s\n%s", code, out, errs)
	}
	wantStatus("after a second apply", map[string]statusRow{"web-1": {Revision: "shop=1.1", Processes: "shop=3"}})

	// A revision that fails stops at the first host; the second is untouched.
	code, out, _ := f.run(ctx, "deploy", "--app", "shop", "--revision", "bad", "--output", "json")
	if code != 1 {
		t.Fatalf("deploy bad: exit %d, want 1\n%s", code, out)
	}
	var res struct {
		Hosts []converge.RolloutResult `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	statuses := map[string]string{}
	for _, h := range res.Hosts {
		statuses[h.Label] = h.Status
	}
	if statuses["web-1"] != converge.RolloutFailed || statuses["web-2"] != converge.RolloutUntouched {
		t.Errorf("failed rollout: %v", statuses)
	}
	wantStatus("after the failed deploy", map[string]statusRow{
		"web-1": {Revision: "shop=1.1", Processes: "shop=3"},
		"web-2": {Revision: "shop=1.1", Processes: "shop=3"},
	})

	if code, out, errs := f.run(ctx, "rollback", "--app", "shop", "--batch", "2"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	wantStatus("after rollback", map[string]statusRow{
		"web-1": {Revision: "shop=1.0", Processes: "shop=3"},
		"web-2": {Revision: "shop=1.0", Processes: "shop=3"},
	})

	// down backs the stateful role up before its host goes.
	if code, out, errs := f.run(ctx, "down"); code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", code, out, errs)
	}
	if live := f.live("deploytest"); len(live) != 0 {
		t.Errorf("hosts left after down: %v", live)
	}
	st, err := dir.New(filepath.Join(f.stateDir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := converge.Latest(ctx, st, "deploytest", "db", "ledger")
	if err != nil || b.Label != "db-1" || !strings.HasSuffix(b.Key, ".backup") {
		t.Errorf("backup after down: %+v, %v", b, err)
	}
}
