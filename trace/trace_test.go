package trace

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadValid(t *testing.T) {
	in := "timestamp,requests\r\n" +
		"2024-01-01T00:00:00Z,10\r\n" +
		"2024-01-01T00:01:00Z,12.5\n" +
		"\n" +
		"2024-01-01T00:02:00Z,0\n" +
		"2024-01-01T00:05:00Z,7\n" + // 2 missing steps
		"2024-01-01T00:06:00Z,8\n"
	tr, err := Read(strings.NewReader(in), "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Step != time.Minute {
		t.Errorf("step = %s, want 1m", tr.Step)
	}
	if len(tr.Points) != 5 {
		t.Fatalf("got %d points, want 5", len(tr.Points))
	}
	if tr.Points[1].Value != 12.5 || !tr.Points[3].At.Equal(time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC)) {
		t.Errorf("points = %+v", tr.Points)
	}
	gaps := tr.Gaps()
	if len(gaps) != 1 || gaps[0].Missing != 2 || !gaps[0].From.Equal(time.Date(2024, 1, 1, 0, 3, 0, 0, time.UTC)) {
		t.Errorf("gaps = %+v, want one of 2 steps from 00:03", gaps)
	}
	if got := tr.End(); !got.Equal(time.Date(2024, 1, 1, 0, 7, 0, 0, time.UTC)) {
		t.Errorf("end = %s", got)
	}
	if cut := tr.Until(time.Date(2024, 1, 1, 0, 4, 0, 0, time.UTC)); len(cut.Points) != 3 || cut.Step != time.Minute {
		t.Errorf("until: %d points, step %s", len(cut.Points), cut.Step)
	}
	var buf bytes.Buffer
	if err := Write(&buf, tr); err != nil {
		t.Fatal(err)
	}
	want := "timestamp,requests\n2024-01-01T00:00:00Z,10\n2024-01-01T00:01:00Z,12.5\n2024-01-01T00:02:00Z,0\n2024-01-01T00:05:00Z,7\n2024-01-01T00:06:00Z,8\n"
	if buf.String() != want {
		t.Errorf("write:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestReadErrors(t *testing.T) {
	const h = "timestamp,requests\n"
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"empty", "", 1, "empty file"},
		{"bad header", "time,requests\n2024-01-01T00:00:00Z,1\n", 1, "header"},
		{"three columns", h + "2024-01-01T00:00:00Z,1,2\n", 2, "2 columns"},
		{"bad time", h + "2024-01-01T00:00:00Z,1\n2024-01-01 00:01,1\n", 3, "not RFC3339"},
		{"not utc", h + "2024-01-01T00:00:00+01:00,1\n", 2, "not in UTC"},
		{"bad value", h + "2024-01-01T00:00:00Z,abc\n", 2, "not a finite number"},
		{"nan", h + "2024-01-01T00:00:00Z,NaN\n", 2, "not a finite number"},
		{"negative", h + "2024-01-01T00:00:00Z,-1\n", 2, "negative"},
		{"empty value", h + "2024-01-01T00:00:00Z,\n", 2, "missing value"},
		{"repeat", h + "2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00Z,1\n", 3, "repeats line 2"},
		{"backwards", h + "2024-01-01T00:01:00Z,1\n2024-01-01T00:00:00Z,1\n", 3, "time order"},
		{"off grid", h + "2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,1\n2024-01-01T00:02:00Z,1\n2024-01-01T00:03:30Z,1\n", 5, "not a multiple"},
		{"one row", h + "2024-01-01T00:00:00Z,1\n", 2, "at least two rows"},
		{"no rows", h, 1, "no rows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in), "load.csv")
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || pe.File != "load.csv" {
				t.Errorf("at %s:%d, want load.csv:%d", pe.File, pe.Line, tc.line)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "load.csv:") {
				t.Errorf("error %q does not start with load.csv: and mention %q", err, tc.msg)
			}
		})
	}
}

func TestReadFileNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.csv")
	if err := os.WriteFile(p, []byte("timestamp,requests\n2024-01-01T00:00:00Z,1\noops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":3: ") {
		t.Fatalf("err = %v, want it to start with %s:3:", err, p)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.csv")); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// TestReadSharedTraces reads the real traces the team develops with, when
// they are present (they are never committed).
func TestReadSharedTraces(t *testing.T) {
	dir := sharedTraces(t)
	tests := []struct {
		file  string
		step  time.Duration
		rows  int
		gaps  int
		first string
	}{
		{"nasa_http_1995_per_minute.csv", time.Minute, 82067, 2, "1995-07-01T04:00:00Z"},
		{"appserver_cluster_2015_2020_hourly.csv", time.Hour, 44026, -1, "2015-03-26T13:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tr, err := ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tr.Step != tc.step || len(tr.Points) != tc.rows || tr.Start().Format(time.RFC3339) != tc.first {
				t.Errorf("step %s, %d rows, first %s", tr.Step, len(tr.Points), tr.Start().Format(time.RFC3339))
			}
			if g := tr.Gaps(); tc.gaps >= 0 && len(g) != tc.gaps {
				t.Errorf("%d gaps, want %d: %+v", len(g), tc.gaps, g)
			} else if len(g) == 0 {
				t.Errorf("no gaps found")
			}
		})
	}
}

// sharedTraces finds ../shared/traces from the module root; it skips the
// test when the folder is absent, except under CI.
func sharedTraces(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "traces")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared traces missing under CI: %v", err)
		}
		t.Skipf("shared traces absent: %v", err)
	}
	return p
}
