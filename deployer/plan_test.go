package deployer

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// host builds an observed host: "web-3/i-7/running/5" is label web-3 on
// instance i-7, running, launched 5 minutes after t0.
func host(spec string) Observed {
	p := strings.Split(spec, "/")
	var min int
	fmt.Sscanf(p[3], "%d", &min)
	role, _, _ := fleet.ParseLabel(p[0])
	return Observed{Label: p[0], Confirmed: true, Instance: fleet.Instance{
		ID: p[1], Label: p[0], Role: role, State: fleet.State(p[2]), LaunchedAt: t0.Add(time.Duration(min) * time.Minute)}}
}

func summarize(p Plan) (launch, keep, remove []string) {
	for _, s := range p.Launch {
		launch = append(launch, s.Label+"@"+s.Zone)
	}
	for _, h := range p.Keep {
		keep = append(keep, h.Label+"/"+h.Instance.ID)
	}
	for _, r := range p.Remove {
		remove = append(remove, r.Label+"/"+r.Instance.ID+":"+r.Reason)
	}
	return
}

func TestMakePlan(t *testing.T) {
	roles := []Role{
		{Name: "web", Zones: []string{"a", "b", "c"}},
		{Name: "db", Zones: []string{"a"}},
		{Name: "static", Fixed: true},
		{Name: "nozone"},
	}
	tests := []struct {
		name                 string
		desired              map[string]int
		hosts                []string
		launch, keep, remove []string
	}{
		{
			name:    "from nothing, zones round-robin",
			desired: map[string]int{"web": 4, "db": 1},
			launch:  []string{"db-1@a", "web-1@a", "web-2@b", "web-3@c", "web-4@a"},
		},
		{
			name:    "no zones",
			desired: map[string]int{"nozone": 2},
			launch:  []string{"nozone-1@", "nozone-2@"},
		},
		{
			name:    "steady state keeps everything",
			desired: map[string]int{"web": 2},
			hosts:   []string{"web-1/i-1/running/0", "web-2/i-2/pending/1"},
			keep:    []string{"web-1/i-1", "web-2/i-2"},
		},
		{
			name:    "replacement keeps the label's zone",
			desired: map[string]int{"web": 3},
			hosts:   []string{"web-1/i-1/running/0", "web-3/i-3/running/0"},
			launch:  []string{"web-2@b"},
			keep:    []string{"web-1/i-1", "web-3/i-3"},
		},
		{
			name:    "above the count, highest first",
			desired: map[string]int{"web": 1},
			hosts:   []string{"web-2/i-2/running/0", "web-1/i-1/running/0", "web-4/i-4/running/0", "web-3/i-3/running/0"},
			keep:    []string{"web-1/i-1"},
			remove:  []string{"web-4/i-4:above-count", "web-3/i-3:above-count", "web-2/i-2:above-count"},
		},
		{
			name:    "to zero",
			desired: map[string]int{"web": 0},
			hosts:   []string{"web-1/i-1/running/0", "web-2/i-2/running/0"},
			remove:  []string{"web-2/i-2:above-count", "web-1/i-1:above-count"},
		},
		{
			name:    "duplicates keep the oldest running",
			desired: map[string]int{"web": 2},
			hosts: []string{
				"web-1/i-5/running/5", "web-1/i-1/running/1", "web-1/i-3/running/3",
				"web-2/i-2/pending/1", "web-2/i-6/running/6",
			},
			keep:   []string{"web-1/i-1", "web-2/i-6"},
			remove: []string{"web-2/i-2:duplicate", "web-1/i-5:duplicate", "web-1/i-3:duplicate"},
		},
		{
			name:    "duplicates above the count all go, newest first",
			desired: map[string]int{"web": 1},
			hosts:   []string{"web-1/i-1/running/0", "web-2/i-2/running/1", "web-2/i-3/running/2"},
			keep:    []string{"web-1/i-1"},
			remove:  []string{"web-2/i-3:above-count", "web-2/i-2:above-count"},
		},
		{
			name:    "same launch time: lowest id kept",
			desired: map[string]int{"db": 1},
			hosts:   []string{"db-1/i-9/running/0", "db-1/i-2/running/0"},
			keep:    []string{"db-1/i-2"},
			remove:  []string{"db-1/i-9:duplicate"},
		},
		{
			name:    "roles not desired are left alone",
			desired: map[string]int{"db": 1},
			hosts:   []string{"web-7/i-7/running/0", "db-1/i-1/running/0"},
			keep:    []string{"db-1/i-1", "web-7/i-7"},
		},
		{
			name:    "fixed roles are never launched nor removed",
			desired: map[string]int{"static": 1},
			hosts:   []string{"static-3/i-3/running/0", "static-5/i-5/running/0"},
			keep:    []string{"static-3/i-3", "static-5/i-5"},
		},
		{
			name:    "a role unknown to the schedule but desired is planned",
			desired: map[string]int{"old": 0},
			hosts:   []string{"old-1/i-1/running/0"},
			remove:  []string{"old-1/i-1:above-count"},
		},
		{
			name:    "labels that are not role-n are kept",
			desired: map[string]int{"web": 1},
			hosts:   []string{"web-1/i-1/running/0", "frontdoor/i-2/running/0"},
			keep:    []string{"web-1/i-1", "frontdoor/i-2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hosts []Observed
			for _, h := range tt.hosts {
				hosts = append(hosts, host(h))
			}
			if strings.HasPrefix(tt.name, "labels that") {
				hosts[1].Instance.Role = "web"
			}
			launch, keep, remove := summarize(MakePlan(roles, tt.desired, hosts, PlanOptions{}))
			if !reflect.DeepEqual(launch, tt.launch) {
				t.Errorf("launch = %q, want %q", launch, tt.launch)
			}
			if !reflect.DeepEqual(keep, tt.keep) {
				t.Errorf("keep = %q, want %q", keep, tt.keep)
			}
			if !reflect.DeepEqual(remove, tt.remove) {
				t.Errorf("remove = %q, want %q", remove, tt.remove)
			}
		})
	}
}

func TestPlanDown(t *testing.T) {
	roles := []Role{{Name: "web"}, {Name: "db"}, {Name: "static", Fixed: true}}
	hosts := []Observed{
		host("web-1/i-1/running/0"), host("web-2/i-2/running/0"), host("web-2/i-5/pending/3"),
		host("db-1/i-3/running/0"), host("static-1/i-4/running/0"), host("ghost-1/i-6/running/0"),
	}
	launch, keep, remove := summarize(PlanDown(roles, hosts))
	if len(launch) != 0 {
		t.Errorf("down launches %q", launch)
	}
	if want := []string{"static-1/i-4"}; !reflect.DeepEqual(keep, want) {
		t.Errorf("keep = %q, want %q", keep, want)
	}
	want := []string{"db-1/i-3:down", "ghost-1/i-6:down", "web-2/i-5:down", "web-2/i-2:down", "web-1/i-1:down"}
	if !reflect.DeepEqual(remove, want) {
		t.Errorf("remove = %q, want %q", remove, want)
	}
}

func TestResolve(t *testing.T) {
	inst := func(id, label, addr string, st fleet.State) fleet.Instance {
		return fleet.Instance{ID: id, Label: label, Address: addr, State: st}
	}
	c := newCacheFile("f")
	c.Hosts["i-1"] = cacheEntry{ID: "i-1", Address: "10.0.0.1", Label: "web-1"}
	c.Hosts["i-2"] = cacheEntry{ID: "i-2", Address: "10.0.0.2", Label: "web-2"}       // address changes
	c.Hosts["i-3"] = cacheEntry{ID: "i-3", Address: "10.0.0.3", Label: "web-3"}       // vanished
	c.Hosts["i-4"] = cacheEntry{ID: "i-4", Address: "10.0.0.4", Label: "web-4"}       // terminating
	c.Hosts["i-5"] = cacheEntry{ID: "i-5", Address: "10.0.0.5", Label: "static-1"}    // untagged, cached
	c.Hosts["i-8"] = cacheEntry{ID: "i-8", Address: "10.0.0.8", Label: "web-8-label"} // cache wins over tag
	insts := []fleet.Instance{
		inst("i-1", "web-1", "10.0.0.1", fleet.StateRunning),
		inst("i-2", "web-2", "10.0.9.2", fleet.StateRunning),
		inst("i-4", "web-4", "10.0.0.4", fleet.StateShuttingDown),
		inst("i-5", "", "10.0.0.5", fleet.StateRunning),
		inst("i-6", "web-6", "", fleet.StatePending),
		inst("i-7", "", "10.0.0.7", fleet.StateRunning),
		inst("i-8", "web-8", "10.0.0.8", fleet.StateRunning),
	}
	hosts, ask, stale := c.resolve(insts)
	var got []string
	for _, h := range hosts {
		got = append(got, fmt.Sprintf("%s=%s/%v", h.Instance.ID, h.Label, h.Confirmed))
	}
	want := []string{"i-1=web-1/true", "i-2=web-2/false", "i-5=static-1/true", "i-6=web-6/false", "i-8=web-8-label/true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %q, want %q", got, want)
	}
	if len(ask) != 1 || ask[0].ID != "i-7" {
		t.Errorf("ask = %v, want i-7 only", ask)
	}
	slices.Sort(stale)
	if want := []string{"i-2", "i-3", "i-4"}; !slices.Equal(stale, want) {
		t.Errorf("stale = %q, want %q (address change, vanished, terminating)", stale, want)
	}
}

func TestZoneFor(t *testing.T) {
	r := Role{Zones: []string{"a", "b"}}
	for n, want := range map[int]string{1: "a", 2: "b", 3: "a", 4: "b", 0: ""} {
		if got := r.ZoneFor(n); got != want {
			t.Errorf("ZoneFor(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestClientToken(t *testing.T) {
	a := ClientToken("f", "web-1", 1)
	if a != ClientToken("f", "web-1", 1) {
		t.Error("token is not deterministic")
	}
	for _, other := range []string{ClientToken("f", "web-1", 2), ClientToken("f", "web-2", 1), ClientToken("g", "web-1", 1)} {
		if other == a {
			t.Errorf("token %s repeats for another fleet, label or generation", a)
		}
	}
	if len(a) > 64 {
		t.Errorf("token %q longer than EC2's 64", a)
	}
}

// TestResolveStale covers the walk resolve spares when every entry matched,
// and the listing with an id twice that must not be taken for that.
func TestResolveStale(t *testing.T) {
	run := func(id, addr string) fleet.Instance {
		return fleet.Instance{ID: id, Label: "web-1", Address: addr, State: fleet.StateRunning}
	}
	tests := []struct {
		name    string
		entries []string // id=address
		insts   []fleet.Instance
		stale   []string
	}{
		{"all matched", []string{"i-1=a", "i-2=b"}, []fleet.Instance{run("i-1", "a"), run("i-2", "b"), run("i-9", "z")}, nil},
		{"one vanished", []string{"i-1=a", "i-2=b"}, []fleet.Instance{run("i-1", "a")}, []string{"i-2"}},
		{"id listed twice", []string{"i-1=a", "i-3=c"}, []fleet.Instance{run("i-1", "a"), run("i-1", "a")}, []string{"i-3"}},
		{"twice, last moved", []string{"i-1=a"}, []fleet.Instance{run("i-1", "a"), run("i-1", "b")}, []string{"i-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCacheFile("f")
			for _, e := range tt.entries {
				id, addr, _ := strings.Cut(e, "=")
				c.Hosts[id] = cacheEntry{ID: id, Address: addr, Label: "web-1"}
			}
			_, _, stale := c.resolve(tt.insts)
			slices.Sort(stale)
			if !slices.Equal(stale, tt.stale) {
				t.Errorf("stale = %q, want %q", stale, tt.stale)
			}
		})
	}
}
