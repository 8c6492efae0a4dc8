package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
	"github.com/tideops/tide/objstore/dir"
)

// stoppedSchedule has a stateful db host whose backups go to a directory
// next to the file, and two stateless web hosts; each role runs a process.
const stoppedSchedule = `name: sttest
cloud:
  provider: local
  network: 127.0.86.0/24
  boot_delay: 100ms
ssh:
  port: 2222
  deadline: 1m
backups:
  store: backups
applications:
  - name: ledger
    revision: "1"
    roles: [db]
    commands:
      setup: mkdir -p data
      start: while :; do sleep 1; done
      backup: tar -czf "{{.Backup}}" data
      restore: tar -xzf "{{.Backup}}"
  - name: front
    revision: "1"
    roles: [web]
    commands:
      start: while :; do sleep 1; done
roles:
  - name: db
    instance_type: t3.large
    stateful: true
    min: 1
    max: 1
  - name: web
    instance_type: t3.medium
    min: 2
    max: 2
`

// killLocalHost kills every process of local host id (the host and what
// it runs), as a crash or a reboot of this machine would, and waits for
// the cloud to list it stopped.
func killLocalHost(t *testing.T, f *fleetEnv, id string) {
	t.Helper()
	localtest.KillProcessesWith(t, "TIDE_HOST_ID="+id)
	eventually(t, 20*time.Second, id+" listed stopped", func() bool {
		in, err := f.provider().Instance(context.Background(), id)
		return err == nil && in.State == fleet.StateStopped
	})
}

// TestApplyStartsStoppedHosts: hosts whose processes died (as after this
// machine rebooted) are started again by tide apply, not replaced: the
// stateful db-1 keeps the data written after its last verified backup
// (nothing is restored over it), the stateless web-2 its label; no second
// instance holds either label; both run their processes again. The text
// report says "started".
func TestApplyStartsStoppedHosts(t *testing.T) {
	ctx := t.Context()
	f := newFleetEnv(t, "sttest", "127.0.86.0/24")
	if err := os.WriteFile(f.file, []byte(stoppedSchedule), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.run(ctx, "apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	byLabel := func() map[string]fleet.Instance {
		t.Helper()
		out := map[string]fleet.Instance{}
		for _, in := range f.live("sttest") {
			out[in.Label] = in
		}
		return out
	}
	value := func(in fleet.Instance) string {
		return filepath.Join(in.Tags[deployer.TagDataPath], "apps", "ledger", "data", "value")
	}
	// A verified backup of v1 (tide replace backs db-1 up and restores the
	// new db-1 from it), then v2, newer than any backup.
	if err := os.WriteFile(value(byLabel()["db-1"]), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.run(ctx, "replace", "db-1"); code != 0 {
		t.Fatalf("replace: exit %d\n%s\n%s", code, out, errs)
	}
	before := byLabel()
	db1, web2 := before["db-1"], before["web-2"]
	st, err := dir.New(filepath.Join(filepath.Dir(f.file), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	backup, err := converge.Latest(ctx, st, "sttest", "db", "ledger")
	if err != nil || backup.InstanceID == db1.ID {
		t.Fatalf("latest backup %+v, %v; want the first db-1's", backup, err)
	}
	if err := os.WriteFile(value(db1), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	killLocalHost(t, f, db1.ID)
	killLocalHost(t, f, web2.ID)
	code, out, errs := f.run(ctx, "apply", "--output", "json")
	rep := decodeReport(t, out)
	if want := []string{"db-1:started", "web-1:kept", "web-2:started"}; code != 0 || !slices.Equal(actionsOf(rep), want) {
		t.Fatalf("apply after the kills: exit %d, %q, want %q\n%s", code, actionsOf(rep), want, errs)
	}
	for _, h := range rep.Hosts {
		want := before[h["label"].(string)]
		if h["instance_id"] != want.ID || h["address"] != want.Address {
			t.Errorf("%s: %v at %v, want %s at %s", h["label"], h["instance_id"], h["address"], want.ID, want.Address)
		}
	}
	if got, err := os.ReadFile(value(db1)); err != nil || string(got) != "v2\n" {
		t.Errorf("db-1's data after its start: %q, %v; want v2, written after the last backup", got, err)
	}
	if strings.Contains(errs, "backup restored") {
		t.Errorf("a backup was restored:\n%s", errs)
	}
	insts, err := f.provider().List(ctx, "sttest")
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, in := range insts {
		labels = append(labels, in.Label+":"+string(in.State))
	}
	slices.Sort(labels)
	if want := []string{"db-1:running", "web-1:running", "web-2:running"}; !slices.Equal(labels, want) {
		t.Fatalf("instances %q, want %q: one per label, none beside the started ones", labels, want)
	}
	checkHosts(t, f, "sttest", "db-1", "web-1", "web-2")

	// Their processes run again, and the next apply changes nothing.
	code, out, errs = f.run(ctx, "status", "--output", "json")
	var rows []struct {
		Label     string `json:"label"`
		Processes string `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("status: exit %d, %v\n%s\n%s", code, err, out, errs)
	}
	for _, r := range rows {
		want := map[string]string{"db-1": "ledger=1", "web-1": "front=1", "web-2": "front=1"}[r.Label]
		if r.Processes != want {
			t.Errorf("%s runs %q, want %q", r.Label, r.Processes, want)
		}
	}
	code, out, errs = f.run(ctx, "apply", "--output", "json")
	if got := actionsOf(decodeReport(t, out)); code != 0 || !slices.Equal(got, []string{"db-1:kept", "web-1:kept", "web-2:kept"}) {
		t.Fatalf("apply once started: exit %d, %q\n%s", code, got, errs)
	}

	// The text report.
	killLocalHost(t, f, before["web-1"].ID)
	code, out, errs = f.run(ctx, "apply")
	if code != 0 || !strings.Contains(out, "apply: 0 launched, 1 started, 2 kept, 0 removed, 0 failed") {
		t.Fatalf("apply, text: exit %d\n%s\n%s", code, out, errs)
	}
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "web-1 ") {
			line = l
		}
	}
	if fields := strings.Fields(line); len(fields) < 6 || fields[2] != before["web-1"].ID || fields[4] != "started" || fields[5] != "address" {
		t.Errorf("web-1's line %q, want it started on %s\n%s", line, before["web-1"].ID, out)
	}
}

// TestApplyThroughEC2StartsStoppedHost: an EC2 instance whose host died
// while it ran is stopped; tide apply starts it again through the real
// SDK (StartInstances), verifies its key against its console, and counts
// it as web-1's host: nothing is launched.
func TestApplyThroughEC2StartsStoppedHost(t *testing.T) {
	f := newEC2Env(t, "it-ec2-stop", "127.0.87.0/24", nil)
	f.schedule("it-ec2-stop", 0, 1)
	ctx := t.Context()
	if code, out, errs := f.run(ctx, "apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	web1 := f.checkHosts("web-1")[0]
	var lid string
	hosts, err := f.cloud.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Tags[ec2local.TagInstanceID] == web1.ID {
			lid = h.ID
		}
	}
	if lid == "" {
		t.Fatalf("no local host behind %s", web1.ID)
	}
	localtest.KillProcessesWith(t, "TIDE_HOST_ID="+lid)
	launches := f.srv.Calls("RunInstances")

	code, out, errs := f.run(ctx, "apply", "--output", "json")
	rep := decodeReport(t, out)
	if got := actionsOf(rep); code != 0 || !slices.Equal(got, []string{"web-1:started"}) || rep.Hosts[0]["instance_id"] != web1.ID {
		t.Fatalf("apply after the kill: exit %d, %q (%v)\n%s", code, got, rep.Hosts, errs)
	}
	if n := f.srv.Calls("StartInstances"); n != 1 {
		t.Errorf("%d StartInstances calls, want 1", n)
	}
	if n := f.srv.Calls("RunInstances") - launches; n != 0 {
		t.Errorf("%d launches beside the started instance", n)
	}
	if strings.Contains(errs, "trusting host key on first use") {
		t.Errorf("the started host's key was trusted on first use:\n%s", errs)
	}
	if again := f.checkHosts("web-1")[0]; again.ID != web1.ID || again.Address != web1.Address {
		t.Errorf("web-1 is %s at %s, was %s at %s", again.ID, again.Address, web1.ID, web1.Address)
	}
}
