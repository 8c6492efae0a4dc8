package config

import (
	"path/filepath"
	"testing"
)

func TestBackupsChecks(t *testing.T) {
	// aws is a valid aws schedule with a stateful db role; cases append a
	// backups block.
	const aws = "name: t\ncloud:\n  provider: aws\n  region: eu-west-1\n  image: ami-1\nroles:\n  - name: db\n    instance_type: t3.large\n    max: 1\n    stateful: true\n"
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"s3 store", base + "backups:\n  store: s3://tide-backups/prod\n  keep: 3\n", nil},
		{"s3 store without a prefix", base + "backups:\n  store: s3://tide-backups\n", nil},
		{"s3 store with a trailing slash", base + "backups:\n  store: s3://tide-backups/prod/eu/\n", nil},
		{"directory store", base + "backups:\n  store: ../backups\n", nil},
		{"keep zero keeps every backup", base + "backups:\n  keep: 0\n", nil},
		{"s3 url without a bucket", base + "backups:\n  store: s3:///prod\n",
			[]want{{"backups.store", 6, 10, `want s3://bucket/prefix, got "s3:///prod": no bucket`}}},
		{"bad bucket name", base + "backups:\n  store: s3://Tide_Backups/prod\n",
			[]want{{"backups.store", 6, 10, `bad bucket name "Tide_Backups"`}}},
		{"bucket name too short", base + "backups:\n  store: s3://ab\n",
			[]want{{"backups.store", 6, 10, `bad bucket name "ab"`}}},
		{"empty prefix segment", base + "backups:\n  store: s3://tide-backups/prod//eu\n",
			[]want{{"backups.store", 6, 10, `bad key prefix "prod//eu"`}}},
		{"dot-dot prefix segment", base + "backups:\n  store: s3://tide-backups/../eu\n",
			[]want{{"backups.store", 6, 10, `bad key prefix "../eu"`}}},
		{"s3 with one slash", base + "backups:\n  store: s3:/tide-backups\n",
			[]want{{"backups.store", 6, 10, `want s3://bucket/prefix or a directory, got "s3:/tide-backups"`}}},
		{"another scheme", base + "backups:\n  store: gs://tide-backups\n",
			[]want{{"backups.store", 6, 10, `want s3://bucket/prefix or a directory, got "gs://tide-backups"`}}},
		{"tilde", base + "backups:\n  store: ~/backups\n",
			[]want{{"backups.store", 6, 10, "~ is not expanded"}}},
		{"empty store", base + "backups:\n  store: \"\"\n",
			[]want{{"backups.store", 6, 10, "must not be empty"}}},
		{"negative keep", base + "backups:\n  keep: -1\n",
			[]want{{"backups.keep", 6, 9, "must not be negative, got -1"}}},
		{"keep of the wrong type", base + "backups:\n  keep: all\n",
			[]want{{"backups.keep", 6, 9, `want a whole number, got "all"`}}},
		{"unknown field", base + "backups:\n  stor: s3://tide-backups\n",
			[]want{{"backups.stor", 6, 3, `unknown field "stor"; did you mean "store"?`}}},
		{"stateful role on aws without a store", aws,
			[]want{{"roles[0].stateful", 10, 15, `role "db" is stateful, and nothing on aws keeps its data when its hosts go: set backups.store`}}},
		{"stateful role on aws with a store", aws + "backups:\n  store: s3://tide-backups/prod\n", nil},
		{"stateful role on the local cloud defaults to the state directory", "name: t\nroles:\n  - name: db\n    max: 1\n    stateful: true\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.doc, tt.want) })
	}
}

func TestBackupsDefaultsAndStore(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleets", "shop.yaml")
	tests := []struct {
		name      string
		backups   string
		wantStore string
		wantKeep  int
	}{
		{"left out", "", "", DefaultBackupKeep},
		{"s3 kept as written", "backups:\n  store: s3://tide-backups/p\n  keep: 2\n", "s3://tide-backups/p", 2},
		{"relative directory from the schedule's directory", "backups:\n  store: ../backups\n", filepath.Join(dir, "backups"), DefaultBackupKeep},
		{"absolute directory", "backups:\n  store: /var/backups/tide\n  keep: 0\n", "/var/backups/tide", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(file, []byte(base+tt.backups), WithNow(refNow))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.BackupStore(); got != tt.wantStore {
				t.Errorf("BackupStore() = %q, want %q", got, tt.wantStore)
			}
			if s.Backups.Keep != tt.wantKeep {
				t.Errorf("keep = %d, want %d", s.Backups.Keep, tt.wantKeep)
			}
		})
	}
}
