package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore/dir"
)

// replaceSchedule has one stateful db host whose backups go to a
// directory next to the file.
const replaceSchedule = `name: rptest
cloud:
  provider: local
  network: 127.0.65.0/24
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
roles:
  - name: db
    instance_type: t3.large
    stateful: true
    min: 1
    max: 1
`

type replaceJSON struct {
	Hosts []struct {
		Label      string `json:"label"`
		InstanceID string `json:"instance_id"`
		Action     string `json:"action"`
		Reason     string `json:"reason"`
		Error      string `json:"error"`
		DrainError string `json:"drain_error"`
	} `json:"hosts"`
	Discarded []struct {
		Label      string `json:"label"`
		InstanceID string `json:"instance_id"`
		Reason     string `json:"reason"`
		BackupErr  string `json:"backup_error"`
		Restored   []struct {
			App string `json:"app"`
			Key string `json:"restores_key"`
		} `json:"restored"`
	} `json:"discarded"`
}

func (r replaceJSON) actions() []string {
	var out []string
	for _, h := range r.Hosts {
		s := h.Label + ":" + h.Action
		if h.Reason != "" {
			s += "(" + h.Reason + ")"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestReplaceStatefulHost drives tide replace on the local cloud: a
// healthy db-1 is replaced and its data survives through a verified
// backup; a stopped db-1 is started, backed up and replaced; once db-1 is
// dead (stopped, and it cannot be started) a replace fails and touches
// nothing, and a replace with --discard-data terminates it and gives the
// new db-1 the last verified backup, saying what was lost.
func TestReplaceStatefulHost(t *testing.T) {
	ctx := context.Background()
	f := newFleetEnv(t, "rptest", "127.0.65.0/24")
	if err := os.WriteFile(f.file, []byte(replaceSchedule), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := f.run(ctx, "apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	value := func(in fleet.Instance) string {
		return filepath.Join(in.Tags[deployer.TagDataPath], "apps", "ledger", "data", "value")
	}
	db1 := func() fleet.Instance {
		t.Helper()
		live := f.live("rptest")
		if len(live) != 1 || live[0].Label != "db-1" {
			t.Fatalf("live hosts %v, want db-1 alone", live)
		}
		return live[0]
	}
	first := db1()
	if err := os.WriteFile(value(first), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	replace := func(args ...string) (int, replaceJSON, string) {
		t.Helper()
		code, out, errs := f.run(ctx, append([]string{"replace", "--output", "json"}, args...)...)
		var r replaceJSON
		if out != "" {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("replace %q: decoding %q: %v\n%s", args, out, err, errs)
			}
		}
		return code, r, errs
	}

	// A healthy host: backed up, verified, terminated, launched again,
	// restored.
	code, rep, errs := replace("db-1")
	if want := []string{"db-1:launched", "db-1:removed(replaced)"}; code != 0 || !slices.Equal(rep.actions(), want) {
		t.Fatalf("replace db-1: exit %d, %q, want %q\n%s", code, rep.actions(), want, errs)
	}
	second := db1()
	if second.ID == first.ID {
		t.Fatalf("db-1 is still %s after its replacement", first.ID)
	}
	if got, err := os.ReadFile(value(second)); err != nil || string(got) != "v1\n" {
		t.Fatalf("the new db-1's data: %q, %v; want the old one's", got, err)
	}
	st, err := dir.New(filepath.Join(filepath.Dir(f.file), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	backup, err := converge.Latest(ctx, st, "rptest", "db", "ledger")
	if err != nil || backup.InstanceID != first.ID {
		t.Fatalf("latest backup %+v, %v; want the first db-1's (%s)", backup, err, first.ID)
	}

	// Data written after the last verified backup, then the host stops
	// (its process killed): replace starts it again, backs the newer data
	// up, and the new db-1 restores it.
	if err := os.WriteFile(value(second), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killHost(t, f, second.ID)
	code, rep, errs = replace("db-1")
	if want := []string{"db-1:launched", "db-1:removed(replaced)"}; code != 0 || !slices.Equal(rep.actions(), want) {
		t.Fatalf("replace of the stopped db-1: exit %d, %q, want %q\n%s", code, rep.actions(), want, errs)
	}
	third := db1()
	if got, err := os.ReadFile(value(third)); err != nil || string(got) != "v2\n" {
		t.Fatalf("the db-1 after the stopped one: %q, %v; want v2, backed up after its start", got, err)
	}
	if backup, err = converge.Latest(ctx, st, "rptest", "db", "ledger"); err != nil || backup.InstanceID != second.ID {
		t.Fatalf("latest backup %+v, %v; want the stopped db-1's (%s)", backup, err, second.ID)
	}

	// Newer data again, then the host dies for good: stopped, and its
	// address taken, it cannot be started.
	if err := os.WriteFile(value(third), []byte("v3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killHost(t, f, third.ID)
	// The dying host's listener may outlive it for a moment.
	var held net.Listener
	eventually(t, 10*time.Second, "db-1's address to be free", func() bool {
		var err error
		held, err = net.Listen("tcp", net.JoinHostPort(third.Address, "2222"))
		return err == nil
	})
	t.Cleanup(func() { held.Close() })
	instances := func() map[string]fleet.State {
		insts, err := f.provider().List(ctx, "rptest")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]fleet.State{}
		for _, in := range insts {
			out[in.ID] = in.State
		}
		return out
	}
	before := instances()
	code, rep, errs = replace("db-1")
	if code != 1 || !slices.Equal(rep.actions(), []string{"db-1:failed(replaced)"}) || !strings.Contains(rep.Hosts[0].Error, "something else listens") {
		t.Fatalf("replace of the dead db-1: exit %d, %+v\n%s", code, rep, errs)
	}
	code, _, errs = replace("db-1", "--discard-data")
	if code != 1 || !strings.Contains(errs, "--discard-data needs --reason") {
		t.Errorf("--discard-data without --reason: exit %d\n%s", code, errs)
	}
	code, _, errs = replace("db-7", "db-1")
	if code != 1 || !strings.Contains(errs, "replacing db-7: no host of the fleet has the label; the fleet's labels: db-1") {
		t.Errorf("replace of an unknown label: exit %d\n%s", code, errs)
	}
	if after := instances(); !mapsEqual(after, before) || after[third.ID] != fleet.StateStopped {
		t.Fatalf("instances changed although every replace failed: %v, were %v", after, before)
	}

	code, rep, errs = replace("db-1", "--discard-data", "--reason", "disk lost")
	if want := []string{"db-1:launched", "db-1:removed(replaced-data-discarded)"}; code != 0 || !slices.Equal(rep.actions(), want) {
		t.Fatalf("replace --discard-data: exit %d, %q, want %q\n%s", code, rep.actions(), want, errs)
	}
	if len(rep.Discarded) != 1 {
		t.Fatalf("discarded: %+v", rep.Discarded)
	}
	d := rep.Discarded[0]
	if d.Label != "db-1" || d.InstanceID != third.ID || d.Reason != "disk lost" || !strings.Contains(d.BackupErr, "host unreachable") ||
		len(d.Restored) != 1 || d.Restored[0].App != "ledger" || d.Restored[0].Key != backup.Key {
		t.Errorf("discarded: %+v; want db-1 on %s, the reason, the backup error and %s", d, third.ID, backup.Key)
	}
	for _, want := range []string{`msg="host terminated without a verified backup: its data is discarded"`, "label=db-1",
		"instance_id=" + third.ID, `reason="disk lost"`, "restores_key=" + backup.Key, "backup_err="} {
		if !strings.Contains(errs, want) {
			t.Errorf("the log lacks %s:\n%s", want, errs)
		}
	}
	if in, err := f.provider().Instance(ctx, third.ID); err != nil || in.State != fleet.StateTerminated {
		t.Errorf("the dead db-1 (%s) is %s (%v), want terminated", third.ID, in.State, err)
	}
	fourth := db1()
	if got, err := os.ReadFile(value(fourth)); err != nil || string(got) != "v2\n" {
		t.Errorf("the new db-1's data: %q, %v; want v2, the last verified backup's", got, err)
	}

	// The text output says the same to a person.
	killHost(t, f, fourth.ID)
	code, out, errs := f.run(ctx, "replace", "db-1", "--discard-data", "--reason", "disk lost again")
	if code != 0 || !strings.Contains(out, `DATA DISCARDED (--discard-data, reason: "disk lost again")`) ||
		!strings.Contains(out, "ledger: the new db-1 restored "+backup.Key) {
		t.Errorf("replace --discard-data, text: exit %d\n%s\n%s", code, out, errs)
	}

	if code, out, errs := f.run(ctx, "down"); code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", code, out, errs)
	}
}

// killHost kills the local-cloud host process of instance id, as a
// crash would, and waits for the cloud to list it stopped.
func killHost(t *testing.T, f *fleetEnv, id string) {
	t.Helper()
	dir := f.provider().HostDir(id)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !slices.Contains(strings.Split(string(cmdline), "\x00"), dir) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no host process found for %s", id)
	}
	eventually(t, 20*time.Second, id+" listed stopped", func() bool {
		in, err := f.provider().Instance(context.Background(), id)
		return err == nil && in.State == fleet.StateStopped
	})
}

// TestReplaceRefusals checks what tide replace refuses before it opens
// the cloud: no label, --discard-data without a reason, static hosts.
func TestReplaceRefusals(t *testing.T) {
	f := newFleetEnv(t, "rpstatic", "127.0.66.0/24")
	static := `name: rpstatic
cloud:
  provider: static
roles:
  - name: web
    min: 1
    max: 1
    hosts:
      - label: web-1
        address: 127.0.66.10
`
	if err := os.WriteFile(f.file, []byte(static), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no label", []string{"replace"}, "name the hosts to replace"},
		{"discard without reason", []string{"replace", "web-1", "--discard-data"}, "--discard-data needs --reason"},
		{"blank reason", []string{"replace", "--discard-data", "--reason", "  ", "web-1"}, "--discard-data needs --reason"},
		{"static hosts", []string{"replace", "web-1"}, "the static cloud's hosts cannot be replaced"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := f.run(t.Context(), tc.args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q, want 1 and %q (stdout %q)", code, errs, tc.want, out)
			}
		})
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
