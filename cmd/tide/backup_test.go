package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/objstore/dir"
)

// backupSchedule has a stateful db role whose backups go to a directory
// named in the file, relative to it; %d is the db role's min.
const backupSchedule = `name: bktest
cloud:
  provider: local
  network: 127.0.63.0/24
  boot_delay: 100ms
ssh:
  port: 2222
  deadline: 1m
backups:
  store: kept-backups
  keep: 1
applications:
  - name: ledger
    revision: "1"
    roles: [db]
    commands:
      setup: mkdir -p data
      start: while :; do sleep 1; done
      backup: tar -czf "{{.Backup}}" data
      restore: tar -xzf "{{.Backup}}"
roles:
  - name: db
    instance_type: t3.large
    stateful: true
    min: %d
    max: 1
`

// TestScheduleBackupStore drives tide apply and down: scaling the stateful
// role to zero puts a verified backup in the directory the schedule names
// (not in the state directory's default), scaling up again restores it,
// and backups.keep holds the store to the newest backup.
func TestScheduleBackupStore(t *testing.T) {
	ctx := context.Background()
	f := newFleetEnv(t, "bktest", "127.0.63.0/24")
	write := func(min int) {
		t.Helper()
		if err := os.WriteFile(f.file, []byte(fmt.Sprintf(backupSchedule, min)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(step string) {
		t.Helper()
		if code, out, errs := f.run(ctx, "apply"); code != 0 {
			t.Fatalf("%s: apply: exit %d\n%s\n%s", step, code, out, errs)
		}
	}
	write(1)
	apply("up")
	live := f.live("bktest")
	if len(live) != 1 {
		t.Fatalf("live hosts %v, want db-1", live)
	}
	value := func() string {
		return filepath.Join(f.live("bktest")[0].Tags[deployer.TagDataPath], "apps", "ledger", "data", "value")
	}
	if err := os.WriteFile(value(), []byte("the ledger\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	write(0)
	apply("scale to zero")
	if live := f.live("bktest"); len(live) != 0 {
		t.Fatalf("hosts left after scaling to zero: %v", live)
	}
	st, err := dir.New(filepath.Join(filepath.Dir(f.file), "kept-backups"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := converge.Latest(ctx, st, "bktest", "db", "ledger")
	if err != nil || first.Label != "db-1" || first.VerifiedAt.IsZero() {
		t.Fatalf("backup in the schedule's store: %+v, %v", first, err)
	}
	if _, err := os.Stat(filepath.Join(f.stateDir, "backups")); !os.IsNotExist(err) {
		t.Errorf("the state directory's default store was used too: %v", err)
	}

	write(1)
	apply("up again")
	got, err := os.ReadFile(value())
	if err != nil || string(got) != "the ledger\n" {
		t.Fatalf("data after scaling up again: %q, %v", got, err)
	}

	if code, out, errs := f.run(ctx, "down"); code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", code, out, errs)
	}
	second, err := converge.Latest(ctx, st, "bktest", "db", "ledger")
	if err != nil || second.Key == first.Key {
		t.Fatalf("backup after down: %+v, %v (the first was %s)", second, err, first.Key)
	}
	objs, err := st.List(ctx, "bktest/db/ledger/")
	if err != nil {
		t.Fatal(err)
	}
	var backups []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".backup") {
			backups = append(backups, o.Key)
		}
	}
	if len(backups) != 1 || backups[0] != second.Key {
		t.Errorf("backups kept %q, want only the latest %s (keep: 1)", backups, second.Key)
	}

	// TIDE_BACKUP_STORE naming another store stops tide before any host
	// is touched.
	code, _, errs := f.runEnv(ctx, map[string]string{"TIDE_BACKUP_STORE": filepath.Join(t.TempDir(), "elsewhere")}, "apply")
	if code == 0 || !strings.Contains(errs, "names another store than the schedule's backups.store") {
		t.Errorf("apply with another TIDE_BACKUP_STORE: exit %d\n%s", code, errs)
	}
	if live := f.live("bktest"); len(live) != 0 {
		t.Errorf("hosts launched despite the conflicting stores: %v", live)
	}
}

// runEnv is run with more environment variables.
func (f *fleetEnv) runEnv(ctx context.Context, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	var out, errb syncBuffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string {
			if k == "TIDE_STATE_DIR" {
				return f.stateDir
			}
			return vars[k]
		},
		Logger: slog.New(slog.NewTextHandler(&errb, nil)),
	}
	code = run(ctx, e, append(args, "-c", f.file))
	return code, out.String(), errb.String()
}
