package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tideops/tide/policies"
)

func mustParse(t *testing.T, doc string) *Schedule {
	t.Helper()
	s, err := Parse("t.yaml", []byte(doc), WithNow(refNow))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return s
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, `name: t
applications:
  - name: dms
    roles: [web]
roles:
  - name: web
    max: 3
    capacity: 40
    policies:
      schedule:
        - start: "0 8 * * *"
          duration: 10h
      windows:
        - from: 2026-04-01T00:00:00Z
          until: 2026-04-02T00:00:00Z
      load:
        source: {push: true}
`)
	checks := []struct {
		name      string
		got, want any
	}{
		{"provider", s.Cloud.Provider, "local"},
		{"data_path", s.DataPath, "/mnt"},
		{"interval", s.Interval.D(), time.Minute},
		{"ssh.port on the local cloud", s.SSH.Port, 2222},
		{"ssh.timeout", s.SSH.Timeout.D(), 10 * time.Second},
		{"ssh.deadline", s.SSH.Deadline.D(), 5 * time.Minute},
		{"keep_releases", s.Applications[0].KeepReleases, 3},
		{"schedule name", s.Roles[0].Policies.Schedule[0].Name, "schedule[0]"},
		{"schedule timezone", s.Roles[0].Policies.Schedule[0].TimeZone, "UTC"},
		{"schedule mode", s.Roles[0].Policies.Schedule[0].Mode, "floor"},
		{"window name", s.Roles[0].Policies.Windows[0].Name, "windows[0]"},
		{"window mode", s.Roles[0].Policies.Windows[0].Mode, "floor"},
		{"headroom", s.Roles[0].Policies.Load.Headroom, 0.2},
		{"lead_time", s.Roles[0].Policies.Load.LeadTime.D(), 10 * time.Minute},
		{"max_age", s.Roles[0].Policies.Load.MaxAge.D(), 5 * time.Minute},
		{"target_per_instance from capacity", s.Roles[0].Policies.Load.TargetPerInstance, 40.0},
		{"predict", *s.Roles[0].Policies.Load.Predict, true},
		{"stabilization", s.Roles[0].Policies.ScaleDown.Stabilization.D(), 15 * time.Minute},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestDefaultsKeepExplicitZeros(t *testing.T) {
	s := mustParse(t, `name: t
cloud:
  provider: aws
  region: eu-west-1
  image: ami-123
roles:
  - name: web
    instance_type: t3.small
    max: 3
    policies:
      load:
        source: {push: true}
        target_per_instance: 10
        headroom: 0
        lead_time: 0s
      scale_down:
        stabilization: 0s
`)
	l := s.Roles[0].Policies.Load
	if l.Headroom != 0 || l.LeadTime != 0 || s.Roles[0].Policies.ScaleDown.Stabilization != 0 {
		t.Errorf("explicit zeros overwritten: headroom %v lead_time %v stabilization %v", l.Headroom, l.LeadTime, s.Roles[0].Policies.ScaleDown.Stabilization)
	}
	if s.SSH.Port != 22 {
		t.Errorf("ssh.port on aws = %d, want 22", s.SSH.Port)
	}
}

func TestMergeKeys(t *testing.T) {
	s := mustParse(t, `name: t
roles:
  - name: web
    max: 6
    policies:
      schedule:
        - &office
          name: office
          start: "0 8 * * 1-5"
          end: "0 18 * * 1-5"
          timezone: Europe/Brussels
          count: 4
        - <<: *office
          name: saturday
          start: "0 9 * * 6"
          end: "0 13 * * 6"
          count: 2
`)
	sat := s.Roles[0].Policies.Schedule[1]
	if sat.Name != "saturday" || sat.TimeZone != "Europe/Brussels" || sat.Count != 2 || sat.Start != "0 9 * * 6" {
		t.Errorf("merged window = %+v", sat)
	}
	// A merged field that is unknown is still reported, at the anchor.
	_, err := Parse("t.yaml", []byte(`name: t
roles:
  - &r
    name: web
    max: 6
    colour: red
  - <<: *r
    name: db
`), WithNow(refNow))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 || ps[0].Line != 6 || ps[1].Line != 6 {
		t.Errorf("want the unknown field reported for both roles on line 6, got\n%v", err)
	}
}

func TestWindows(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "office-dms.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse("office-dms.yaml", data, WithNow(refNow))
	if err != nil {
		t.Fatal(err)
	}
	set, err := s.Windows("web")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at    string
		count int // -1: no window open
	}{
		{"2026-03-02T07:59:00+01:00", -1}, // Monday before office hours
		{"2026-03-02T08:00:00+01:00", 5},
		{"2026-03-02T17:59:00+01:00", 5},
		{"2026-03-02T18:00:00+01:00", -1},
		{"2026-03-07T10:00:00+01:00", -1}, // Saturday
		{"2026-03-30T08:30:00+02:00", 5},  // after the clocks changed
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			props := set.At(now)
			switch {
			case tt.count < 0 && len(props) != 0:
				t.Errorf("want no proposal, got %+v", props)
			case tt.count >= 0 && (len(props) != 1 || props[0].Count != tt.count || props[0].Mode != policies.Floor || props[0].Policy != "business-hours"):
				t.Errorf("want business-hours floor %d, got %+v", tt.count, props)
			}
		})
	}
	if _, err := s.Windows("nope"); err == nil {
		t.Error("Windows of an unknown role: want an error")
	}
}

func TestWindowsOfAHandBuiltSchedule(t *testing.T) {
	s := &Schedule{Roles: []Role{{Name: "web", Max: 2, Policies: Policies{Schedule: []CronWindow{{Name: "w", Start: "0 25 * * *", Duration: Duration(time.Hour)}}}}}}
	_, err := s.Windows("web")
	var se *policies.SpecError
	if !errors.As(err, &se) || se.Field != "start" {
		t.Errorf("want a *policies.SpecError on start, got %v", err)
	}
}

func TestValidateHandBuiltSchedule(t *testing.T) {
	s := &Schedule{Name: "t", Roles: []Role{{Name: "web", Min: 3, Max: 2}}}
	s.applyDefaults()
	err := s.Validate(refNow)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != "roles[0].min" || ps[0].Line != 0 {
		t.Fatalf("want one problem at roles[0].min without a position, got %v", err)
	}
	if got, want := ps.Error(), "roles[0].min: min 3 is above max 2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestProcessesFor(t *testing.T) {
	app := Application{Name: "planner", Processes: map[string]int{"t3.medium": 4, "m5.xlarge": 8, "default": 2}}
	tests := []struct {
		typ  string
		app  Application
		want int
	}{
		{"t3.medium", app, 4},
		{"m5.xlarge", app, 8},
		{"c5.large", app, 2},
		{"", app, 2},
		{"m5.xlarge", Application{Name: "web"}, 1},
		{"m5.xlarge", Application{Name: "off", Processes: map[string]int{"m5.xlarge": 0}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.app.Name+"/"+tt.typ, func(t *testing.T) {
			if got := (Role{InstanceType: tt.typ}).ProcessesFor(tt.app); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAppsAndRoles(t *testing.T) {
	s, err := Load(filepath.Join("..", "examples", "drp-weekly.yaml"), WithNow(refNow))
	if err != nil {
		t.Fatal(err)
	}
	names := func(apps []Application) []string {
		var out []string
		for _, a := range apps {
			out = append(out, a.Name)
		}
		return out
	}
	if got, want := names(s.AppsOf("web")), []string{"drp", "reports"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AppsOf(web) = %v, want %v", got, want)
	}
	if got, want := s.RolesOf("reports"), []string{"web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("RolesOf(reports) = %v, want %v", got, want)
	}
	worker, _ := s.Role("worker")
	planner, _ := s.Application("planner")
	if got := worker.ProcessesFor(planner); got != 8 {
		t.Errorf("planner processes on a worker = %d, want 8", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("want os.ErrNotExist, got %v", err)
	}
	var ps Problems
	if errors.As(err, &ps) {
		t.Errorf("a missing file is not a Problems: %v", err)
	}
}

func TestParentPath(t *testing.T) {
	tests := map[string]string{
		"roles[1].policies.schedule[0].start":    "roles[1].policies.schedule[0]",
		"roles[1].policies.schedule[0]":          "roles[1].policies.schedule",
		"roles":                                  "",
		`applications[0].processes["t3.medium"]`: "applications[0].processes",
		`cloud.subnets["eu-west-1a"]`:            "cloud.subnets",
		`x["a[1]"]`:                              "x",
	}
	for in, want := range tests {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
