//go:build !race

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestForecastM4RealFile runs the full M4 Hourly holdout evaluation through
// the command (skipped when the file is absent outside CI). It is left out
// of -race builds, where it takes minutes on 2 cores; there
// forecast.TestEvalM4Hourly scores a subset of the series.
func TestForecastM4RealFile(t *testing.T) {
	if testing.Short() {
		t.Skip("full M4 run; forecast.TestEvalM4Hourly covers a subset")
	}
	path := m4TrainPath(t)
	e, stdout, stderr := forecastEnv()
	if code := run(context.Background(), e, []string{"forecast", "m4", "--train", path, "--horizon", "48", "--holdout", "48", "--eval"}); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	t.Log(stdout.String())
	m := regexp.MustCompile(`tide/naive ratio\s+MASE ([0-9.]+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no ratio in output:\n%s", stdout)
	}
	if r, _ := strconv.ParseFloat(m[1], 64); r > 0.9 {
		t.Errorf("MASE ratio to seasonal naive %v, want <= 0.9", r)
	}
}

func m4TrainPath(t *testing.T) string {
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
	p := filepath.Join(dir, "..", "shared", "traces", "M4-Hourly-train.csv")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("absent: %v", err)
	}
	return p
}
