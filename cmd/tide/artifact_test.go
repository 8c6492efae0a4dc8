package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/deployer"
)

// artifactSchedule releases shop from a directory per revision,
// build/<revision> next to the file, keeping one release per host.
const artifactSchedule = `name: %s
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
    artifact: {path: "build/{{.Revision}}"}
    keep_releases: 1
    processes: {default: 1}
    commands:
      deploy: test -x bin/app
      start: while :; do sleep 1; done
      health: grep -q "build of {{.Revision}}$" current/bin/app
roles:
  - name: web
    instance_type: t3.medium
    min: %d
    max: %d
`

// TestRollbackRebuildsFromItsArtifact deploys r1, r2 and r3, each from
// its own build directory with keep_releases 1, and rolls back to r1: its
// release, pruned, is made again from r1's build, and so is a host
// launched afterwards. A revision whose build is missing is refused
// before any host changes.
func TestRollbackRebuildsFromItsArtifact(t *testing.T) {
	ctx := context.Background()
	const name, network = "artifacttest", "127.0.64.0/24"
	f := newFleetEnv(t, name, network)
	write := func(hosts int) {
		t.Helper()
		if err := os.WriteFile(f.file, []byte(fmt.Sprintf(artifactSchedule, name, network, hosts, hosts)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	build := filepath.Join(filepath.Dir(f.file), "build")
	for _, rev := range []string{"r1", "r2", "r3"} {
		bin := filepath.Join(build, rev, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "app"), []byte("#!/bin/sh\n# build of "+rev+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tide := func(args ...string) {
		t.Helper()
		if code, out, errs := f.run(ctx, args...); code != 0 {
			t.Fatalf("tide %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
		}
	}
	// onHosts checks that each host's only release is rev, made from
	// rev's build.
	onHosts := func(step, rev string) {
		t.Helper()
		for _, in := range f.live(name) {
			rels := filepath.Join(in.Tags[deployer.TagDataPath], "apps", "shop", "releases")
			ents, err := os.ReadDir(rels)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 || ents[0].Name() != rev {
				t.Errorf("%s: %s holds %v, want %s only", step, in.Label, ents, rev)
			}
			b, err := os.ReadFile(filepath.Join(rels, rev, "bin", "app"))
			if want := "#!/bin/sh\n# build of " + rev + "\n"; err != nil || string(b) != want {
				t.Errorf("%s: %s's %s/bin/app holds %q (%v), want %q", step, in.Label, rev, b, err, want)
			}
		}
	}
	tide("apply")
	onHosts("after apply", "r1")
	tide("deploy", "--app", "shop", "--revision", "r2")
	tide("deploy", "--app", "shop", "--revision", "r3")
	onHosts("after deploying r3", "r3")

	tide("rollback", "--app", "shop", "--to", "r1")
	onHosts("after rolling back to r1", "r1")
	// A host launched later takes r1 from r1's build, not r3's.
	write(2)
	tide("apply")
	onHosts("after growing the fleet", "r1")
	if st := f.status(ctx); st["web-2"].Revision != "shop=r1" || st["web-2"].Processes != "shop=1" {
		t.Errorf("web-2 shows %+v, want shop=r1 running", st["web-2"])
	}

	code, out, errs := f.run(ctx, "deploy", "--app", "shop", "--revision", "r9", "--batch", "2")
	if want := "application shop: revision r9: artifact " + filepath.Join(build, "r9") + ": stat "; code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "needed by web-1, web-2") {
		t.Errorf("deploy of a revision without a build: exit %d, stderr %q, want 1 and %q ... needed by web-1, web-2\n%s", code, errs, want, out)
	}
	onHosts("after the refused deploy", "r1")
}
