package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
	if a := replace(`{"labels":["web-7"]}`); !strings.Contains(a.Error, "replace web-7: replacing web-7: no host of the fleet has the label; the fleet's labels: web-1, web-2") {
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
