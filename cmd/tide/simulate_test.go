package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// simEnv is an env for running commands in tests.
func simEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, &out, &errb
}

// sharedTrace returns the path of a trace in ../shared/traces (from the
// module root); it skips when absent, except under CI.
func sharedTrace(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("go.mod not found")
		}
		dir = filepath.Dir(dir)
	}
	p := filepath.Join(dir, "..", "shared", "traces", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("trace missing under CI: %v", err)
		}
		t.Skipf("trace absent: %v", err)
	}
	return p
}

type simSummary struct {
	InstanceHours         float64 `json:"instance_hours"`
	OracleInstanceHours   float64 `json:"oracle_instance_hours"`
	UnderProvisionedShare float64 `json:"under_provisioned_share"`
	OverProvisionedShare  float64 `json:"over_provisioned_share"`
	UnservedFraction      float64 `json:"unserved_fraction"`
	ScaleEvents           int     `json:"scale_events"`
	Steps                 int     `json:"steps"`
	Step                  string  `json:"step"`
	Tide                  struct {
		InstanceHours float64 `json:"instance_hours"`
	} `json:"tide"`
	Baselines map[string]struct {
		InstanceHours         float64  `json:"instance_hours"`
		OracleInstanceHours   float64  `json:"oracle_instance_hours"`
		UnderProvisionedShare *float64 `json:"under_provisioned_share"`
		OverProvisionedShare  *float64 `json:"over_provisioned_share"`
		UnservedFraction      *float64 `json:"unserved_fraction"`
		ScaleEvents           *int     `json:"scale_events"`
	} `json:"baselines"`
}

var timelineRow = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,[a-z0-9-]+,[0-9.]+,([0-9]+\.[0-9]{2})?,\d+,\d+$`)

// checkTimeline checks the timeline's format to the letter and returns its
// rows split into fields.
func checkTimeline(t *testing.T, path string) [][]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	if !sc.Scan() || sc.Text() != "timestamp,role,load,forecast,desired,ready" {
		t.Fatalf("timeline header = %q", sc.Text())
	}
	var rows [][]string
	for sc.Scan() {
		if !timelineRow.MatchString(sc.Text()) {
			t.Fatalf("timeline row %d = %q does not match the format", len(rows)+2, sc.Text())
		}
		rows = append(rows, strings.Split(sc.Text(), ","))
	}
	return rows
}

func TestSimulateNASA(t *testing.T) {
	tracePath := sharedTrace(t, "nasa_http_1995_per_minute.csv")
	dir := t.TempDir()
	tl, svg := filepath.Join(dir, "tl.csv"), filepath.Join(dir, "tl.svg")
	e, out, errb := simEnv()
	code := run(context.Background(), e, []string{"simulate", "--trace", tracePath, "--capacity-per-instance", "40",
		"--lead", "10m", "--out", tl, "--json", "--chart", svg})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s simSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out.String())
	}
	if s.Steps != 82067 || s.Step != "1m0s" {
		t.Errorf("steps %d of %s, want 82067 of 1m0s", s.Steps, s.Step)
	}
	if s.InstanceHours <= 0 || s.InstanceHours != s.Tide.InstanceHours || s.OracleInstanceHours <= 0 || s.InstanceHours < s.OracleInstanceHours*0.9 {
		t.Errorf("instance hours: top %v, tide %v, oracle %v", s.InstanceHours, s.Tide.InstanceHours, s.OracleInstanceHours)
	}
	for _, v := range []float64{s.UnderProvisionedShare, s.OverProvisionedShare, s.UnservedFraction} {
		if v < 0 || v > 1 {
			t.Errorf("share %v outside [0,1]", v)
		}
	}
	for _, name := range []string{"static_peak", "reactive", "schedule_only"} {
		b, ok := s.Baselines[name]
		if !ok || b.InstanceHours <= 0 || b.OracleInstanceHours != s.OracleInstanceHours || b.UnderProvisionedShare == nil ||
			b.OverProvisionedShare == nil || b.UnservedFraction == nil || b.ScaleEvents == nil {
			t.Errorf("baseline %s missing or incomplete: %+v", name, b)
		}
	}
	if sp := s.Baselines["static_peak"]; sp.UnderProvisionedShare == nil || *sp.UnderProvisionedShare != 0 {
		t.Errorf("static peak under-provisioned: %+v", sp)
	}
	rows := checkTimeline(t, tl)
	if len(rows) != 82067 {
		t.Fatalf("timeline has %d rows, want one per trace row (82067)", len(rows))
	}
	if rows[0][0] != "1995-07-01T04:00:00Z" || rows[0][2] != "42" || rows[1][2] != "61" {
		t.Errorf("first rows %v %v: want the trace's timestamps and loads", rows[0], rows[1])
	}
	forecasts := 0
	for _, r := range rows {
		if r[3] != "" {
			forecasts++
		}
	}
	t.Logf("%d of %d decisions used a forecast", forecasts, len(rows))
	checkSVG(t, svg)
}

// checkSVG checks that the chart is well-formed XML with an svg root.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
			if se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("svg namespace = %q", se.Name.Space)
			}
		}
	}
	if root != "svg" {
		t.Errorf("chart root element = %q, want svg", root)
	}
}

func TestSimulateSynthetic(t *testing.T) {
	for _, profile := range []string{"office", "weekly-batch", "monthly", "spike"} {
		t.Run(profile, func(t *testing.T) {
			tl := filepath.Join(t.TempDir(), "tl.csv")
			e, out, errb := simEnv()
			code := run(context.Background(), e, []string{"simulate", "--synthetic", profile, "--days", "8", "--step", "15m",
				"--seed", "4", "--out", tl})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), "reactive") || !strings.Contains(out.String(), "static_peak") {
				t.Errorf("table lacks baselines:\n%s", out.String())
			}
			rows := checkTimeline(t, tl)
			if len(rows) != 8*24*4 {
				t.Errorf("%d rows, want %d", len(rows), 8*24*4)
			}
			peak := 0.0
			for _, r := range rows {
				v, _ := strconv.ParseFloat(r[2], 64)
				peak = max(peak, v)
			}
			if peak < 700 || peak > 1500 {
				t.Errorf("synthetic peak %v, want about the default 1000", peak)
			}
		})
	}
}

func TestSimulateErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("timestamp,requests\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("timestamp,requests\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no load", []string{"simulate", "--capacity-per-instance", "10"}, "--trace"},
		{"both loads", []string{"simulate", "--trace", bad, "--synthetic", "office"}, "exclude"},
		{"bad trace row", []string{"simulate", "--trace", bad, "--capacity-per-instance", "10"}, bad + ":3:"},
		{"no capacity", []string{"simulate", "--trace", good}, "capacity"},
		{"unknown profile", []string{"simulate", "--synthetic", "lunar"}, "office"},
		{"config without role", []string{"simulate", "--synthetic", "office", "-c", "x.yaml"}, "--role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, errb := simEnv()
			if code := run(context.Background(), e, tc.args); code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), tc.want)
			}
		})
	}
}

// TestSimulateScheduleFile takes the role and its windows from an example
// schedule file; explicit flags override the file's limits.
func TestSimulateScheduleFile(t *testing.T) {
	file := filepath.Join("..", "..", "examples", "office-dms.yaml")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("example missing: %v", err)
	}
	tl := filepath.Join(t.TempDir(), "tl.csv")
	e, out, errb := simEnv()
	code := run(context.Background(), e, []string{"simulate", "-c", file, "--role", "web", "--synthetic", "office",
		"--peak", "250", "--days", "9", "--step", "15m", "--max", "5", "--json", "--out", tl})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s struct {
		Role      string  `json:"role"`
		Capacity  float64 `json:"capacity_per_instance"`
		Min, Max  int
		PeakHosts int `json:"peak_hosts"`
		Baselines map[string]struct {
			PeakHosts   int `json:"peak_hosts"`
			ScaleEvents int `json:"scale_events"`
		} `json:"baselines"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Role != "web" || s.Capacity != 50 || s.Min != 1 || s.Max != 5 || s.PeakHosts > 5 {
		t.Errorf("role %s, capacity %g, min %d, max %d, peak %d: want web from the file (capacity 50, min 1) with --max 5",
			s.Role, s.Capacity, s.Min, s.Max, s.PeakHosts)
	}
	// The file's office-hours windows make schedule_only move.
	if so := s.Baselines["schedule_only"]; so.ScaleEvents == 0 || so.PeakHosts <= 1 {
		t.Errorf("schedule_only = %+v: the file's windows did not apply", so)
	}
	rows := checkTimeline(t, tl)
	if len(rows) != 9*24*4 || rows[0][1] != "web" {
		t.Errorf("%d rows, role %q", len(rows), rows[0][1])
	}
	for _, bad := range [][]string{
		{"simulate", "-c", file, "--role", "nope", "--synthetic", "office"},
		{"simulate", "-c", filepath.Join(t.TempDir(), "missing.yaml"), "--role", "web", "--synthetic", "office"},
	} {
		e, _, _ := simEnv()
		if code := run(context.Background(), e, bad); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
}
