package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/server"
)

// rollbackSchedule has one application on two hosts, released from an
// artifact directory (build/, next to the file) with the default
// keep_releases (3).
const rollbackSchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 100ms
ssh:
  port: 2222
  deadline: 1m
applications:
  - name: shop
    revision: r1
    roles: [web]
    artifact: {path: build}
    processes: {default: 1}
    commands:
      deploy: test -f bin/app && echo "{{.Revision}}" > REVISION
      start: while :; do sleep 1; done
      health: test "$(cat current/REVISION)" = "{{.Revision}}"
roles:
  - name: web
    instance_type: t3.medium
    min: 2
    max: 2
`

// TestRollbackWalksTheHistory deploys r1 to r3 and rolls back step by
// step, deploys r4 over the rollbacks, goes --to a release only the hosts
// still hold, and --to one keep_releases pruned, which is deployed again
// from the artifact.
func TestRollbackWalksTheHistory(t *testing.T) {
	ctx := context.Background()
	const name = "rollbacktest"
	f := newFleetEnv(t, name, "127.0.62.0/24")
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(rollbackSchedule, name, "127.0.62.0/24")), 0o644); err != nil {
		t.Fatal(err)
	}
	build := filepath.Join(filepath.Dir(f.file), "build", "bin")
	if err := os.MkdirAll(build, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(build, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tide := func(args ...string) string {
		t.Helper()
		code, out, errs := f.run(ctx, args...)
		if code != 0 {
			t.Fatalf("tide %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	// atRevision checks, on each host, that shop's current release is rev
	// and its processes run.
	atRevision := func(step, rev string) {
		t.Helper()
		st := f.status(ctx)
		for _, l := range []string{"web-1", "web-2"} {
			if g := st[l]; g.Revision != "shop="+rev || g.Processes != "shop=1" {
				t.Errorf("%s: %s shows %q / %q, want shop=%s / shop=1", step, l, g.Revision, g.Processes, rev)
			}
		}
	}
	// history checks the recorded history and current revision.
	history := func(step, cur string, want ...string) {
		t.Helper()
		rec, err := converge.LoadRevisions(converge.RevisionsPath(f.stateDir, name))
		if err != nil {
			t.Fatal(err)
		}
		d := rec.Apps["shop"]
		if got, _ := d.Branch(); d.Revision != cur || !slices.Equal(got, want) {
			t.Errorf("%s: recorded %q in %q, want %q in %q", step, d.Revision, got, cur, want)
		}
	}
	// onDisk returns the complete releases in each host's directory, read
	// from the file system the local cloud's hosts live in.
	onDisk := func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, in := range f.live(name) {
			dir := filepath.Join(in.Tags[deployer.TagDataPath], "apps", "shop", "releases")
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			out[in.Label] = []string{}
			for _, e := range ents {
				if _, err := os.Stat(filepath.Join(dir, e.Name(), ".tide-release")); err == nil {
					out[in.Label] = append(out[in.Label], e.Name())
				}
			}
		}
		return out
	}
	wantDisk := func(step string, want ...string) {
		t.Helper()
		for label, got := range onDisk() {
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s holds releases %q, want %q", step, label, got, want)
			}
		}
	}
	failing := func(wantErr string, args ...string) {
		t.Helper()
		code, out, errs := f.run(ctx, args...)
		if code != 1 || !strings.Contains(errs, wantErr) {
			t.Errorf("tide %s: exit %d, stderr %q; want exit 1 and %q\n%s", strings.Join(args, " "), code, errs, wantErr, out)
		}
	}

	tide("apply")
	atRevision("after apply", "r1")
	tide("deploy", "--app", "shop", "--revision", "r2", "--batch", "2")
	tide("deploy", "--app", "shop", "--revision", "r3", "--batch", "2")
	atRevision("after deploying r3", "r3")
	history("after deploying r3", "r3", "r1", "r2", "r3")
	wantDisk("after deploying r3", "r1", "r2", "r3")

	tide("rollback", "--app", "shop", "--batch", "2")
	atRevision("after one rollback", "r2")
	history("after one rollback", "r2", "r1", "r2", "r3")
	// An apply keeps the revision rolled back to.
	tide("apply")
	atRevision("after an apply", "r2")

	tide("rollback", "--app", "shop", "--batch", "2")
	atRevision("after two rollbacks", "r1")
	history("after two rollbacks", "r1", "r1", "r2", "r3")

	failing("no earlier release of shop recorded", "rollback", "--app", "shop")
	atRevision("after the refused rollback", "r1")

	// A deploy after rollbacks drops the revisions rolled back from;
	// keep_releases (3) prunes r3, deployed longest ago.
	tide("deploy", "--app", "shop", "--revision", "r4", "--batch", "2")
	history("after deploying r4", "r4", "r1", "r4")
	wantDisk("after deploying r4", "r1", "r2", "r4")

	// r2 is in the history no more, but the hosts still hold it.
	tide("rollback", "--app", "shop", "--to", "r2", "--batch", "2")
	atRevision("after --to r2", "r2")
	history("after --to r2", "r2", "r1", "r4", "r2")
	// r3 was dropped from the history and pruned from the hosts.
	failing("known: r1 r4 r2", "rollback", "--app", "shop", "--to", "r3")
	failing("--to r9: no such release of shop", "rollback", "--app", "shop", "--to", "r9")

	var list struct {
		Current  string `json:"current"`
		Rollback string `json:"rollback"`
		History  []struct {
			Revision, State string
			Hosts           []string
		} `json:"history"`
		Hosts []server.HostReleases `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(tide("rollback", "--app", "shop", "--list", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, h := range list.History {
		states = append(states, h.Revision+":"+h.State+":"+strings.Join(h.Hosts, ","))
	}
	if want := []string{"r1:earlier:web-1,web-2", "r4:earlier:web-1,web-2", "r2:current:web-1,web-2"}; list.Current != "r2" || list.Rollback != "r4" || !slices.Equal(states, want) {
		t.Errorf("--list: current %q rollback %q history %q, want r2, r4, %q", list.Current, list.Rollback, states, want)
	}
	if len(list.Hosts) != 2 || list.Hosts[0].Label != "web-1" || !list.Hosts[0].Answered || list.Hosts[0].Current != "r2" ||
		!slices.Equal(list.Hosts[0].Releases, []string{"r1", "r4", "r2"}) {
		t.Errorf("--list hosts: %+v", list.Hosts)
	}
	text := tide("rollback", "--app", "shop", "--list")
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{"shop: current r2, a rollback goes to r4", "r1 earlier web-1 web-2", "* r2 current web-1 web-2", "web-1 r2 r1 r4 r2"} {
		if !lines[want] {
			t.Errorf("--list prints no line %q:\n%s", want, text)
		}
	}

	// Deploying r5 prunes r1 (deployed longest ago). The artifact, build,
	// does not name {{.Revision}}: it holds r5's build, not r1's, so the
	// rollback to r1 is refused before any host changes.
	tide("deploy", "--app", "shop", "--revision", "r5", "--batch", "2")
	wantDisk("after deploying r5", "r2", "r4", "r5")
	failing(`rollout refused before any host was changed: web-1, web-2 have no release r1 of shop, and the artifact path "build" does not name {{.Revision}}: r1 cannot be rebuilt from it (it holds r5's build)`,
		"rollback", "--app", "shop", "--to", "r1", "--batch", "2")
	atRevision("after the refused --to r1", "r5")
	wantDisk("after the refused --to r1", "r2", "r4", "r5")
	history("after the refused --to r1", "r5", "r1", "r4", "r2", "r5")

	// Rolled back to r2, the fleet grows: web-3 lacks r2, which build
	// cannot make, and fails clearly rather than running r5 as r2.
	tide("rollback", "--app", "shop", "--batch", "2")
	atRevision("after rolling back to r2", "r2")
	if err := os.WriteFile(f.file, []byte(strings.Replace(fmt.Sprintf(rollbackSchedule, name, "127.0.62.0/24"), "min: 2\n    max: 2", "min: 3\n    max: 3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := f.run(ctx, "apply")
	if want := `web-3 has no release r2 of shop, and the artifact path "build" does not name {{.Revision}}: r2 cannot be rebuilt from it (it holds r5's build)`; code != 1 || !strings.Contains(out, want) {
		t.Errorf("apply growing the fleet: exit %d, want 1 and %q\n%s\n%s", code, want, out, errs)
	}
	for _, in := range f.live(name) {
		if _, err := os.Stat(filepath.Join(in.Tags[deployer.TagDataPath], "apps", "shop", "releases", "r2")); in.Label == "web-3" && !os.IsNotExist(err) {
			t.Errorf("web-3 got a release r2 (%v)", err)
		}
	}
	history("after the failed apply", "r2", "r1", "r4", "r2", "r5")
	// r5 is the build's own revision: web-3 can take it, the others hold it.
	tide("rollback", "--app", "shop", "--to", "r5", "--batch", "3")
	st := f.status(ctx)
	for _, l := range []string{"web-1", "web-2", "web-3"} {
		if g := st[l]; g.Revision != "shop=r5" {
			t.Errorf("after --to r5: %s shows %q, want shop=r5", l, g.Revision)
		}
	}
	// A rollback goes to r2 again: web-1 and web-2 hold it, web-3 not.
	failing("rollout refused before any host was changed: web-3 has no release r2 of shop", "rollback", "--app", "shop", "--batch", "3")
	history("after the refused rollback to r2", "r5", "r1", "r4", "r2", "r5")
}

// TestRollbackWithoutRecordedHistory records the revisions of a schedule
// edited and applied twice, then rolls back with the record gone (a state
// directory from before applies recorded): the history starts from the
// releases on its host.
func TestRollbackWithoutRecordedHistory(t *testing.T) {
	ctx := context.Background()
	const name = "rollbackseed"
	f := newFleetEnv(t, name, "127.0.82.0/24")
	text := strings.Replace(fmt.Sprintf(rollbackSchedule, name, "127.0.82.0/24"), "min: 2\n    max: 2", "min: 1\n    max: 1", 1)
	build := filepath.Join(filepath.Dir(f.file), "build", "bin")
	if err := os.MkdirAll(build, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(build, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	step := func(args ...string) (int, string) {
		t.Helper()
		code, out, errs := f.run(ctx, args...)
		if code != 0 && code != 1 {
			t.Fatalf("tide %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
		}
		return code, errs
	}
	for _, rev := range []string{"r0", "r1"} {
		if err := os.WriteFile(f.file, []byte(strings.Replace(text, "revision: r1", "revision: "+rev, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, errs := step("apply"); code != 0 {
			t.Fatalf("apply %s: %s", rev, errs)
		}
	}
	path := converge.RevisionsPath(f.stateDir, name)
	rec, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.Apps["shop"]; d.Revision != "r1" || !slices.Equal(d.History, []string{"r0", "r1"}) || d.ScheduleRevision != "r1" || d.Built != "r1" {
		t.Errorf("the applies recorded %+v, want r1 current in r0, r1 over the schedule's r1, built r1", d)
	}
	// An apply that changes no revision records nothing more.
	if code, errs := step("apply"); code != 0 {
		t.Fatalf("apply again: %s", errs)
	}
	if again, err := converge.LoadRevisions(path); err != nil || !again.Apps["shop"].At.Equal(rec.Apps["shop"].At) {
		t.Errorf("an apply of the same revision rewrote the record: %+v (%v)", again.Apps["shop"], err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check := func(what, cur string, history ...string) {
		t.Helper()
		if g := f.status(ctx)["web-1"]; g.Revision != "shop="+cur {
			t.Errorf("%s: web-1 shows %q, want shop=%s", what, g.Revision, cur)
		}
		rec, err := converge.LoadRevisions(path)
		if err != nil {
			t.Fatal(err)
		}
		d := rec.Apps["shop"]
		if got, _ := d.Branch(); d.Revision != cur || !slices.Equal(got, history) || d.ScheduleRevision != "r1" {
			t.Errorf("%s: recorded %+v, want %q in %q over the schedule's r1", what, d, cur, history)
		}
	}
	if code, errs := step("rollback", "--app", "shop"); code != 0 {
		t.Fatalf("rollback: %s", errs)
	}
	check("after the rollback", "r0", "r0", "r1")
	if code, errs := step("rollback", "--app", "shop"); code != 1 || !strings.Contains(errs, "no earlier release of shop recorded") {
		t.Errorf("second rollback: exit %d, %q", code, errs)
	}
	// --to goes forward again to the revision rolled back from.
	if code, errs := step("rollback", "--app", "shop", "--to", "r1"); code != 0 {
		t.Fatalf("rollback --to r1: %s", errs)
	}
	check("after --to r1", "r1", "r0", "r1")
}
