package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/config"
)

func TestBackupStorePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.yaml")
	stateDir := filepath.Join(dir, "state")
	schedule := func(t *testing.T, provider, backups string) *config.Schedule {
		t.Helper()
		text := "name: t\ncloud:\n  provider: " + provider + "\n"
		if provider == "aws" {
			text += "  region: eu-west-1\n  image: ami-1\n"
		}
		text += "roles:\n  - name: db\n    instance_type: t3.large\n    max: 1\n    stateful: true\n" + backups
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name     string
		provider string
		backups  string
		env      string
		want     string
		wantErr  string
	}{
		{"local default", "local", "", "", filepath.Join(stateDir, "backups"), ""},
		{"the schedule's directory, relative to the file", "local", "backups:\n  store: kept\n", "", filepath.Join(dir, "kept"), ""},
		{"the schedule's s3 store", "aws", "backups:\n  store: s3://tide-backups/prod\n", "", "s3://tide-backups/prod", ""},
		{"the environment when the schedule names none", "local", "", "s3://tide-backups/ops", "s3://tide-backups/ops", ""},
		{"the environment naming the same store", "aws", "backups:\n  store: s3://tide-backups/prod/\n", "s3://tide-backups/prod", "s3://tide-backups/prod/", ""},
		{"the environment naming the same directory", "local", "backups:\n  store: kept\n", filepath.Join(dir, "kept") + "/", filepath.Join(dir, "kept"), ""},
		{"the environment naming another store", "aws", "backups:\n  store: s3://tide-backups/prod\n", "s3://tide-backups/staging", "",
			"TIDE_BACKUP_STORE=s3://tide-backups/staging names another store than the schedule's backups.store (s3://tide-backups/prod)"},
		{"an unknown scheme in the environment", "local", "", "gs://tide-backups", "", "want s3://bucket/prefix or a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule(t, tt.provider, tt.backups)
			e := &env{Getenv: func(k string) string {
				if k == "TIDE_BACKUP_STORE" {
					return tt.env
				}
				return ""
			}}
			got, err := backupStore(e, s, stateDir, tt.provider)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// A schedule built in Go for aws, which config would refuse: no
	// store is an error before any host is touched.
	s := &config.Schedule{Name: "t", File: file, Cloud: config.Cloud{Provider: "aws"}, Roles: []config.Role{{Name: "db", Stateful: true}}}
	if _, err := backupStore(&env{Getenv: func(string) string { return "" }}, s, stateDir, "aws"); err == nil || !strings.Contains(err.Error(), "role db is stateful and no backup store is configured") {
		t.Errorf("stateful role on aws without a store: %v", err)
	}
}
