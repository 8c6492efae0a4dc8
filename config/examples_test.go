package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// refNow is the instant tests validate at: fixed so results do not depend
// on the date the tests run.
var refNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func exampleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 example files, found %v", files)
	}
	return files
}

func TestExamplesAreValid(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f, WithNow(refNow))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if s.File != f {
				t.Errorf("File = %q, want %q", s.File, f)
			}
			// Every example runs on the embedded local cloud, but the one
			// made for tide ec2-demo, which goes through the aws provider.
			wantProvider := "local"
			if filepath.Base(f) == "aws-demo.yaml" {
				wantProvider = "aws"
			}
			if s.Cloud.Provider != wantProvider || s.SSH.Port != DefaultLocalSSHPort {
				t.Errorf("provider %q port %d, want %s on %d", s.Cloud.Provider, s.SSH.Port, wantProvider, DefaultLocalSSHPort)
			}
			for _, r := range s.Roles {
				if _, err := s.Windows(r.Name); err != nil {
					t.Errorf("Windows(%s): %v", r.Name, err)
				}
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(f, data, WithNow(refNow.AddDate(1, 5, 0))); err != nil {
				t.Errorf("valid at another time too? %v", err)
			}
		})
	}
}
