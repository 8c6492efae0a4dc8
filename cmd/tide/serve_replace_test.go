package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/server"
)

// TestServeReplacesAHost replaces a stateless web-1 through a real tide
// serve's API: a new instance holds web-1 and is ready, web-2 is not
// touched; a label of no host fails the action with the fleet's labels,
// and a label of no role is refused at once.
func TestServeReplacesAHost(t *testing.T) {
	text := strings.NewReplacer("name: deployed", "name: replaced", "127.0.96.0/24", "127.0.81.0/24").Replace(serveAppSchedule)
	s := serveText(t, "replaced", "127.0.81.0/24", text)

	hosts := func() map[string]server.Host {
		var v struct {
			Hosts []server.Host `json:"hosts"`
		}
		s.get(t, "/api/fleet", &v)
		out := map[string]server.Host{}
		for _, h := range v.Hosts {
			out[h.Label] = h
		}
		return out
	}
	ready := func(hs map[string]server.Host) bool {
		return len(hs) == 2 && hs["web-1"].Ready && hs["web-2"].Ready
	}
	eventually(t, 60*time.Second, "web-1 and web-2 ready", func() bool { return ready(hosts()) })
	before := hosts()

	post := func(body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.addr+"/api/replace", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// replace posts a replace and returns its finished status.
	replace := func(body string) server.ActionStatus {
		t.Helper()
		code, b := post(body)
		var started server.ActionStatus
		if code != http.StatusAccepted || json.Unmarshal(b, &started) != nil || started.Kind != "replace" {
			t.Fatalf("POST /api/replace %s: %d %s, want 202 and a replace", body, code, b)
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

	if code, b := post(`{"labels":["cache-1"]}`); code != http.StatusBadRequest || !strings.Contains(string(b), `unknown role \"cache\" (known roles: web)`) {
		t.Fatalf("replace of cache-1: %d %s", code, b)
	}
	if a := replace(`{"labels":["web-7"]}`); !strings.Contains(a.Error, "replace web-7: replacing web-7: no host of the fleet has the label; the fleet's labels: web-1, web-2") || a.Result != nil {
		t.Fatalf("replace of web-7: %+v", a)
	}

	a := replace(`{"labels":["web-1"]}`)
	if a.Error != "" || strings.Join(a.Labels, ",") != "web-1" {
		t.Fatalf("replace of web-1: %+v", a)
	}
	// The inspections were forgotten: the page shows the new host at once.
	eventually(t, 60*time.Second, "a new web-1, ready", func() bool {
		hs := hosts()
		return ready(hs) && hs["web-1"].InstanceID != before["web-1"].InstanceID
	})
	after := hosts()
	// The status's result says what was done to each host, with the
	// deployer's reason for the removal.
	var outcomes []string
	if a.Result != nil {
		for _, o := range a.Result.Hosts {
			outcomes = append(outcomes, fmt.Sprintf("%s %s %s %s %s", o.Label, o.InstanceID, o.Action, o.Reason, o.Error))
		}
	}
	for _, want := range []string{
		fmt.Sprintf("web-1 %s removed replaced ", before["web-1"].InstanceID),
		fmt.Sprintf("web-1 %s launched  ", after["web-1"].InstanceID),
	} {
		if !slices.Contains(outcomes, want) {
			t.Errorf("the replace's result %q lacks %q", outcomes, want)
		}
	}
	if a.Result == nil || len(a.Result.Discarded) != 0 {
		t.Errorf("the replace's result: %+v, want no discarded host", a.Result)
	}
	if after["web-2"].InstanceID != before["web-2"].InstanceID {
		t.Errorf("web-2 was replaced too: %s -> %s", before["web-2"].InstanceID, after["web-2"].InstanceID)
	}
	if got := s.liveLabels(t); got != "web-1,web-2" {
		t.Errorf("running hosts: %s, want web-1,web-2", got)
	}
	for _, in := range s.live(s.name) {
		if in.ID == before["web-1"].InstanceID {
			t.Errorf("the old web-1 %s is still there: %s", in.ID, in.State)
		}
	}
	if errs := s.errs.String(); !strings.Contains(errs, `msg=replaced`) {
		t.Errorf("no replaced line in the log:\n%s", grepLines(errs, "time="))
	}
}

// TestServeRolesFixed: a role is fixed (the page offers no replace for
// its hosts) on the static cloud, or when the file lists its hosts.
func TestServeRolesFixed(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		hosts    []config.StaticHost
		want     bool
	}{
		{"local", "", nil, false},
		{"aws", "aws", nil, false},
		{"static", "static", nil, true},
		{"hosts listed", "", []config.StaticHost{{Label: "web-1", Address: "127.0.0.1"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &service{schedule: &config.Schedule{Cloud: config.Cloud{Provider: tt.provider},
				Roles: []config.Role{{Name: "web", Min: 1, Max: 2, Hosts: tt.hosts}}}}
			rs := serviceSchedule{svc}.Roles()
			if len(rs) != 1 || rs[0].Fixed != tt.want {
				t.Fatalf("roles %+v, want web fixed=%v", rs, tt.want)
			}
		})
	}
}

// TestReplaceResult: the action's result copies the report's hosts (with
// their reasons and errors) and each discarded host's backup error and
// restore points: a backup restored, none (started empty), or a role
// keeping no backup.
func TestReplaceResult(t *testing.T) {
	if r := replaceResult(deployer.Report{}, nil); r != nil {
		t.Errorf("nothing done: %+v, want nil", r)
	}
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	rep := deployer.Report{Hosts: []deployer.HostResult{
		{Label: "db-1", Role: "db", InstanceID: "i-1", Action: deployer.ActionRemoved, Reason: deployer.ReasonDataDiscarded, DrainErr: errors.New("backup: timeout")},
		{Label: "db-1", Role: "db", InstanceID: "i-2", Action: deployer.ActionLaunched},
		{Label: "web-1", Role: "web", InstanceID: "i-3", Action: deployer.ActionFailed, Intended: deployer.ActionRemoved, Err: errors.New("terminating: throttled")},
	}}
	discarded := []discardedHost{
		{Label: "db-1", InstanceID: "i-1", BackupErr: "backup: timeout", Restored: []restorePoint{
			{role: "db", app: "pg", b: converge.Backup{Key: "b/db/pg/1", CreatedAt: at}}, {role: "db", app: "redis"}}},
		{Label: "cache-1", InstanceID: "i-4", BackupErr: "drain: refused", Restored: []restorePoint{{role: "cache"}}},
	}
	got, err := json.Marshal(replaceResult(rep, discarded))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"hosts":[{"label":"db-1","instance_id":"i-1","action":"removed","reason":"replaced-data-discarded"},` +
		`{"label":"db-1","instance_id":"i-2","action":"launched"},` +
		`{"label":"web-1","instance_id":"i-3","action":"failed","error":"terminating: throttled"}],` +
		`"discarded":[{"label":"db-1","instance_id":"i-1","backup_error":"backup: timeout","restored":[` +
		`{"role":"db","app":"pg","key":"b/db/pg/1","created_at":"2026-11-26T03:00:00Z"},{"role":"db","app":"redis"}]},` +
		`{"label":"cache-1","instance_id":"i-4","backup_error":"drain: refused","restored":[{"role":"cache"}]}]}`
	if string(got) != want {
		t.Errorf("result\n got %s\nwant %s", got, want)
	}
}
