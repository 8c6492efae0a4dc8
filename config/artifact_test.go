package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArtifactRender(t *testing.T) {
	v := ArtifactVars{App: "drp", Revision: "5.1.0"}
	tests := []struct {
		name      string
		art       Artifact
		want      Artifact
		names     bool
		wantErr   string
		wantField string
	}{
		{"plain path", Artifact{Path: "build"}, Artifact{Path: "build"}, false, "", "path"},
		{"templated path", Artifact{Path: "build/{{.App}}-{{.Revision}}.tar.gz"}, Artifact{Path: "build/drp-5.1.0.tar.gz"}, true, "", "path"},
		{"templated s3", Artifact{S3: "s3://artifacts/{{.App}}/{{.Revision}}.tgz"}, Artifact{S3: "s3://artifacts/drp/5.1.0.tgz"}, true, "", "s3"},
		{"app only", Artifact{S3: "s3://artifacts/{{.App}}.tgz"}, Artifact{S3: "s3://artifacts/drp.tgz"}, false, "", "s3"},
		{"revision tested, not named", Artifact{Path: "build{{if .Revision}}{{end}}"}, Artifact{Path: "build"}, false, "", "path"},
		{"none", Artifact{}, Artifact{}, true, "", ""},
		{"host field", Artifact{Path: "build/{{.Label}}"}, Artifact{}, false, "artifact.path: bad template (an artifact may use {{.App}} and {{.Revision}} only)", "path"},
		{"unparsable", Artifact{S3: "s3://b/{{.Revision"}, Artifact{}, false, "artifact.s3: bad template: template: s3:1: unclosed action", "s3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.art.Render(v)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Render: %v, want an error with %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Render: %v", err)
			case got != tt.want:
				t.Errorf("Render = %+v, want %+v", got, tt.want)
			}
			if n := tt.art.NamesRevision(); n != tt.names {
				t.Errorf("NamesRevision = %v, want %v", n, tt.names)
			}
			if f, _ := tt.art.Field(); f != tt.wantField {
				t.Errorf("Field = %q, want %q", f, tt.wantField)
			}
		})
	}
}

// TestArtifactTemplateErrorPosition loads a file whose artifact template
// does not parse: the problem reads FILE:LINE:COL like any other.
func TestArtifactTemplateErrorPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drp.yaml")
	doc := base + "applications:\n  - name: drp\n    roles: [web]\n    artifact: {path: \"build/drp-{{.Revison}}.tar.gz\"}\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("Load: %v, want one problem", err)
	}
	want := path + ":8:22: applications[0].artifact.path: bad template (an artifact may use {{.App}} and {{.Revision}} only): "
	if got := ps[0].String(); !strings.HasPrefix(got, want) || !strings.Contains(got, "can't evaluate field Revison") {
		t.Errorf("problem:\n got  %s\n want %s...can't evaluate field Revison...", got, want)
	}
}
