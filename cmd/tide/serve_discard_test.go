package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore/dir"
	"github.com/tideops/tide/server"
)

// TestServeReplaceDiscardsData replaces a stateful db-1 through a real
// tide serve's API: a healthy one through a verified backup; once it is
// dead (stopped, its address taken so that it cannot be started) a
// replace fails and terminates nothing, and a replace that discards data
// terminates it, says in the status what was lost and which backup the
// new db-1 restored, and the new db-1 holds that backup's data.
func TestServeReplaceDiscardsData(t *testing.T) {
	ctx := context.Background()
	const name, network = "rpserve", "127.0.79.0/24"
	text := strings.NewReplacer("name: rptest", "name: "+name, "127.0.65.0/24", network,
		"backups:", "interval: 1s\nbackups:").Replace(replaceSchedule)
	s := serveText(t, name, network, text)

	db1 := func() (server.Host, bool) {
		var v struct {
			Hosts []server.Host `json:"hosts"`
		}
		s.get(t, "/api/fleet", &v)
		if len(v.Hosts) != 1 || v.Hosts[0].Label != "db-1" {
			return server.Host{}, false
		}
		return v.Hosts[0], true
	}
	// instance is db-1's instance as the local cloud lists it.
	instance := func(id string) fleet.Instance {
		t.Helper()
		in, err := s.provider().Instance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	value := func(in fleet.Instance) string {
		return filepath.Join(in.Tags[deployer.TagDataPath], "apps", "ledger", "data", "value")
	}
	instances := func() map[string]fleet.State {
		t.Helper()
		insts, err := s.provider().List(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]fleet.State{}
		for _, in := range insts {
			out[in.ID] = in.State
		}
		return out
	}
	// replace posts a replace and returns its finished status.
	replace := func(body string) server.ActionStatus {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.addr+"/api/replace", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var started server.ActionStatus
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &started) != nil || started.Kind != "replace" {
			t.Fatalf("POST /api/replace %s: %d %s, want 202 and a replace", body, resp.StatusCode, b)
		}
		var st struct {
			Action *server.ActionStatus `json:"action"`
		}
		eventually(t, 90*time.Second, "the replace to finish", func() bool {
			s.get(t, "/api/status", &st)
			return st.Action != nil && st.Action.Started.Equal(started.Started) && !st.Action.Running
		})
		return *st.Action
	}

	var first server.Host
	eventually(t, 60*time.Second, "db-1 ready", func() bool {
		var ok bool
		first, ok = db1()
		return ok && first.Ready
	})
	if err := os.WriteFile(value(instance(first.InstanceID)), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A healthy db-1: backed up, verified, replaced; the new one restores v1.
	if a := replace(`{"labels":["db-1"]}`); a.Error != "" || a.Result == nil || len(a.Result.Discarded) != 0 {
		t.Fatalf("replace of the healthy db-1: %+v", a)
	}
	var second server.Host
	eventually(t, 60*time.Second, "a new db-1, ready", func() bool {
		var ok bool
		second, ok = db1()
		return ok && second.Ready && second.InstanceID != first.InstanceID
	})
	secondIn := instance(second.InstanceID)
	if got, err := os.ReadFile(value(secondIn)); err != nil || string(got) != "v1\n" {
		t.Fatalf("the new db-1's data: %q, %v; want v1, the old one's", got, err)
	}
	st, err := dir.New(filepath.Join(filepath.Dir(s.file), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	backup, err := converge.Latest(ctx, st, name, "db", "ledger")
	if err != nil || backup.InstanceID != first.InstanceID {
		t.Fatalf("latest backup %+v, %v; want the first db-1's (%s)", backup, err, first.InstanceID)
	}

	// Newer data, then db-1 dies for good: its process killed and its
	// address taken. The loop may start it again before the address is
	// taken: then it is killed again.
	if err := os.WriteFile(value(secondIn), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	held := holdDeadHost(t, s.fleetEnv, secondIn)
	// The held address is let go before the served fleet's cleanup (tide
	// down) runs: cleanups run last registered first.
	t.Cleanup(func() { held.Close() })

	before := instances()
	a := replace(`{"labels":["db-1"]}`)
	if a.Error == "" || a.Result == nil || len(a.Result.Hosts) != 1 || a.Result.Hosts[0].Action != "failed" ||
		!strings.Contains(a.Result.Hosts[0].Error, "something else listens") || len(a.Result.Discarded) != 0 {
		t.Fatalf("replace of the dead db-1 without discard: %+v, result %+v; want it failed, its error saying why", a, a.Result)
	}
	if after := instances(); !mapsEqual(after, before) || after[second.InstanceID] != fleet.StateStopped {
		t.Fatalf("instances changed although the replace failed: %v, were %v", after, before)
	}

	// No backup was made meanwhile: the discard restores the first one.
	if b, err := converge.Latest(ctx, st, name, "db", "ledger"); err != nil || b.Key != backup.Key {
		t.Fatalf("latest backup %+v, %v; want still %s", b, err, backup.Key)
	}
	a = replace(`{"labels":["db-1"],"discard_data":true,"reason":"disk lost"}`)
	if a.Error != "" || !a.DiscardData || a.Reason != "disk lost" || a.Result == nil || len(a.Result.Discarded) != 1 {
		t.Fatalf("replace of the dead db-1, discarding data: %+v, result %+v", a, a.Result)
	}
	d := a.Result.Discarded[0]
	if d.Label != "db-1" || d.InstanceID != second.InstanceID || d.BackupError == "" ||
		len(d.Restored) != 1 || d.Restored[0].App != "ledger" || d.Restored[0].Key != backup.Key ||
		d.Restored[0].CreatedAt == nil || !d.Restored[0].CreatedAt.Equal(backup.CreatedAt) {
		t.Errorf("discarded: %+v; want db-1 on %s, a backup error and %s", d, second.InstanceID, backup.Key)
	}
	removed := false
	for _, h := range a.Result.Hosts {
		removed = removed || (h.InstanceID == second.InstanceID && h.Action == "removed" && h.Reason == deployer.ReasonDataDiscarded)
	}
	if !removed {
		t.Errorf("the result's hosts %+v lack %s removed (%s)", a.Result.Hosts, second.InstanceID, deployer.ReasonDataDiscarded)
	}
	if in := instance(second.InstanceID); in.State != fleet.StateTerminated {
		t.Errorf("the dead db-1 (%s) is %s, want terminated", second.InstanceID, in.State)
	}
	var third server.Host
	eventually(t, 60*time.Second, "a new db-1, ready", func() bool {
		var ok bool
		third, ok = db1()
		return ok && third.Ready && third.InstanceID != second.InstanceID
	})
	if got, err := os.ReadFile(value(instance(third.InstanceID))); err != nil || string(got) != "v1\n" {
		t.Errorf("the new db-1's data: %q, %v; want v1, the last verified backup's", got, err)
	}
	for _, want := range []string{`msg="host terminated without a verified backup: its data is discarded"`,
		"instance_id=" + second.InstanceID, `reason="disk lost"`, "restores_key=" + backup.Key} {
		if !strings.Contains(s.errs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, grepLines(s.errs.String(), "time="))
		}
	}
	// The server narrows its logger once.
	if strings.Contains(s.errs.String(), "component=server component=server") {
		t.Errorf("the server's lines name their component twice:\n%s", grepLines(s.errs.String(), "time="))
	}
}

// holdDeadHost kills the local-cloud host of in and takes its SSH
// address, so that it cannot be started again; whoever starts it in the
// meantime (a service's loop) sees it killed again. The caller closes the
// listener.
func holdDeadHost(t *testing.T, f *fleetEnv, in fleet.Instance) net.Listener {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		killHost(t, f, in.ID)
		// The dying host's listener may outlive it for a moment.
		wait := time.Now().Add(5 * time.Second)
		for time.Now().Before(wait) {
			l, err := net.Listen("tcp", net.JoinHostPort(in.Address, "2222"))
			if err == nil {
				return l
			}
			if cur, err := f.provider().Instance(context.Background(), in.ID); err == nil && cur.State != fleet.StateStopped {
				break // started again: kill it again
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not take %s's address %s within 60s", in.ID, in.Address)
		}
	}
}
