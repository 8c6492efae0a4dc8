package converge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
)

// releaseSchedule releases web from artifact (a path), keeping one
// release: the one before is pruned by each deploy.
func releaseSchedule(artifact string) string {
	return fmt.Sprintf(`name: conv
applications:
  - name: web
    revision: "1"
    roles: [web]
    artifact: {path: %q}
    keep_releases: 1
    processes: {default: 0}
    commands:
      deploy: cat bin/server > deployed
roles:
  - name: web
    min: 0
    max: 1
`, artifact)
}

// writeBuild writes a build directory whose bin/server holds body.
func writeBuild(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "server"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// sameHost connects a rollout to the test's one host.
type sameHost struct{ tg target }

func (s sameHost) Connect(context.Context, fleet.Instance) (deployer.Host, error) {
	return unclosed{s.tg.h}, nil
}

// unclosed leaves the test's connection open when a rollout is done.
type unclosed struct{ deployer.Host }

func (unclosed) Close() error { return nil }

func withRevision(t *testing.T, c *converge.Converger, rev string) *converge.Converger {
	t.Helper()
	n, err := c.WithRevision("web", rev)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rolloutRefused rolls c out to tg and checks it is refused before
// anything changed, with an error holding want; it returns the error.
func rolloutRefused(t *testing.T, c *converge.Converger, tg target, want ...string) error {
	t.Helper()
	before := run(t, tg, "cd "+tg.data+"/apps/web && readlink current && ls releases")
	res, err := c.Rollout(context.Background(), sameHost{tg}, []fleet.Instance{tg.inst}, []string{"web"}, 1)
	if !errors.Is(err, converge.ErrRolloutRefused) {
		t.Fatalf("rollout: %v, want it refused", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q says nothing of %q", err, w)
		}
	}
	if len(res) != 1 || res[0].Status != converge.RolloutUntouched || res[0].Label != "web-1" {
		t.Errorf("results %+v, want web-1 untouched", res)
	}
	if after := run(t, tg, "cd "+tg.data+"/apps/web && readlink current && ls releases"); after != before {
		t.Errorf("the refused rollout changed the host: %q, was %q", after, before)
	}
	return err
}

// TestArtifactPerRevision releases from a directory per revision: a
// revision pruned from the host is deployed again from its own directory,
// and one whose directory is missing is refused before the host is
// touched, naming the application, the revision and the path.
func TestArtifactPerRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeBuild(t, filepath.Join(src, "web-1"), "built one")
	writeBuild(t, filepath.Join(src, "web-2"), "built two")
	tg := startLocal(t, "web-1", "")
	c := newConverger(t, releaseSchedule(filepath.Join(src, "{{.App}}-{{.Revision}}")), nil)
	for _, step := range []struct{ rev, want string }{{"1", "built one"}, {"2", "built two"}, {"1", "built one"}} {
		if err := withRevision(t, c, step.rev).Converge(ctx, tg.h, tg.inst, "web"); err != nil {
			t.Fatalf("revision %s: %v", step.rev, err)
		}
		if got := run(t, tg, "cat "+tg.data+"/apps/web/current/deployed"); got != step.want {
			t.Errorf("revision %s deployed %q, want %q", step.rev, got, step.want)
		}
		if got := run(t, tg, "ls "+tg.data+"/apps/web/releases"); got != step.rev {
			t.Errorf("revision %s: releases %q, want only it (keep_releases 1)", step.rev, got)
		}
	}
	missing := filepath.Join(src, "web-3")
	err := withRevision(t, c, "3").Converge(ctx, tg.h, tg.inst, "web")
	if err == nil || errors.Is(err, deployer.ErrReplaceHost) || !strings.Contains(err.Error(), "application web: deploying 3") || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing artifact: %v, want an error naming web, 3 and %s that no new host fixes", err, missing)
	}
	rolloutRefused(t, withRevision(t, c, "3"), tg, "application web: revision 3: artifact "+missing, "needed by web-1")
	// Where the host holds the release, a missing artifact is not needed.
	if err := os.RemoveAll(filepath.Join(src, "web-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := withRevision(t, c, "1").Rollout(ctx, sameHost{tg}, []fleet.Instance{tg.inst}, []string{"web"}, 1); err != nil {
		t.Errorf("rollout of a release the host holds, its artifact gone: %v", err)
	}
}

// TestArtifactWithoutRevision releases from one directory whatever the
// revision: only the revision it holds is built from it; a host lacking
// another is refused, one at a time by Converge and up front by Rollout.
func TestArtifactWithoutRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	build := filepath.Join(t.TempDir(), "build")
	writeBuild(t, build, "built one")
	tg := startLocal(t, "web-1", "")
	c := newConverger(t, releaseSchedule(build), nil)
	if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
		t.Fatal(err)
	}
	// The artifact holds the schedule's revision, 1, unless told.
	err := withRevision(t, c, "2").Converge(ctx, tg.h, tg.inst, "web")
	var nr *converge.NotRebuildableError
	if !errors.As(err, &nr) || errors.Is(err, deployer.ErrReplaceHost) || nr.Built != "1" ||
		!strings.Contains(err.Error(), fmt.Sprintf(`web-1 has no release 2 of web, and the artifact path %q does not name {{.Revision}}: 2 cannot be rebuilt from it (it holds 1's build)`, build)) {
		t.Fatalf("revision 2 from the artifact holding 1: %v", err)
	}
	writeBuild(t, build, "built two")
	c2, err := withRevision(t, c, "2").WithArtifactRevision("web", "2")
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
		t.Fatal(err)
	}
	if got := run(t, tg, "cat "+tg.data+"/apps/web/current/deployed; ls "+tg.data+"/apps/web/releases"); got != "built two2" {
		t.Fatalf("after deploying 2: %q", got)
	}
	// 1 was pruned: the artifact holds 2's build, not 1's.
	err = rolloutRefused(t, withRevision(t, c2, "1"), tg, "web-1 has no release 1 of web", "it holds 2's build")
	if !errors.As(err, &nr) || !slices.Equal(nr.Labels, []string{"web-1"}) {
		t.Errorf("refusal %v: want a NotRebuildableError naming web-1", err)
	}
}
