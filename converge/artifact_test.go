package converge_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/s3/s3test"
)

func artifactSchedule(artifact string) string {
	return fmt.Sprintf(`name: conv
applications:
  - name: web
    revision: "7"
    roles: [web]
    artifact: {%s}
    processes: {default: 0}
    commands:
      deploy: test -f bin/server && cat bin/server > deployed
roles:
  - name: web
    min: 0
    max: 1
`, artifact)
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Close() error }{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArtifacts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "tree", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "tree", "bin", "server"), []byte("from a directory"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTarGz(t, filepath.Join(src, "release.tar.gz"), map[string]string{"bin/server": "from a tarball"})
	srv := s3test.StartFake(t, "artifacts")
	client := srv.Client(t)
	tgz, err := os.ReadFile(filepath.Join(src, "release.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Store("artifacts", "").Put(ctx, "web/7.tgz", strings.NewReader(string(tgz)), int64(len(tgz))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, artifact, want string
	}{
		{"directory", "path: " + filepath.Join(src, "tree"), "from a directory"},
		{"tarball", "path: " + filepath.Join(src, "release.tar.gz"), "from a tarball"},
		{"s3", "s3: s3://artifacts/web/7.tgz", "from a tarball"},
		{"s3 per revision", `s3: "s3://artifacts/{{.App}}/{{.Revision}}.tgz"`, "from a tarball"},
	} {
		for _, be := range backends {
			t.Run(tc.name+"/"+be.name, func(t *testing.T) {
				tg := be.start(t, "web-1", "")
				c := newConverger(t, artifactSchedule(tc.artifact), func(o *converge.Options) {
					o.Presigner = client
					o.FetchCAFile = srv.CAFile
				})
				if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
					t.Fatal(err)
				}
				if got := run(t, tg, "cat "+tg.data+"/apps/web/current/deployed"); got != tc.want {
					t.Errorf("deployed %q, want %q", got, tc.want)
				}
				if got := run(t, tg, "test -x "+tg.data+"/apps/web/current/bin/server && echo x"); got != "x" {
					t.Errorf("bin/server lost its mode")
				}
			})
		}
	}
	t.Run("missing s3 object", func(t *testing.T) {
		tg := startLocal(t, "web-1", "")
		c := newConverger(t, artifactSchedule("s3: s3://artifacts/web/8.tgz"), func(o *converge.Options) {
			o.Presigner = client
			o.FetchCAFile = srv.CAFile
		})
		if err := c.Converge(ctx, tg.h, tg.inst, "web"); err == nil {
			t.Fatal("converged with an artifact that does not exist")
		}
		if out := run(t, tg, "readlink "+tg.data+"/apps/web/current || echo none"); out != "none" {
			t.Errorf("current is %q after a failed fetch", out)
		}
	})
	t.Run("missing s3 object refuses the rollout", func(t *testing.T) {
		tg := startLocal(t, "web-1", "")
		c := newConverger(t, artifactSchedule(`s3: "s3://artifacts/{{.App}}/{{.Revision}}.tgz"`), func(o *converge.Options) {
			o.Presigner = client
			o.FetchCAFile = srv.CAFile
		})
		if err := c.Converge(ctx, tg.h, tg.inst, "web"); err != nil {
			t.Fatal(err)
		}
		n, err := c.WithRevision("web", "9")
		if err != nil {
			t.Fatal(err)
		}
		err = rolloutRefused(t, n, tg, "application web: revision 9: artifact s3://artifacts/web/9.tgz", "needed by web-1")
		if !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("refusal %v does not say the object is missing", err)
		}
	})
	t.Run("missing local artifact is permanent", func(t *testing.T) {
		tg := startLocal(t, "web-1", "")
		c := newConverger(t, artifactSchedule("path: "+filepath.Join(src, "nope")), nil)
		err := c.Converge(ctx, tg.h, tg.inst, "web")
		if err == nil || errors.Is(err, deployerErrReplace) {
			t.Fatalf("missing artifact: %v, want an error that no new host fixes", err)
		}
	})
}
