package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func forecastEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, &out, &errb
}

// writeM4 writes an M4-layout file of n seasonal series of different
// lengths (padded with empty cells) and returns its path.
func writeM4(t *testing.T, n int) string {
	var b strings.Builder
	const maxLen = 24 * 7 * 3
	b.WriteString(`"V1"`)
	for j := 2; j <= maxLen+1; j++ {
		fmt.Fprintf(&b, `,"V%d"`, j)
	}
	b.WriteString("\n")
	for i := 0; i < n; i++ {
		l := maxLen - 24*(i%3)
		fmt.Fprintf(&b, `"H%d"`, i+1)
		for j := 0; j < maxLen; j++ {
			if j >= l {
				b.WriteString(`,""`)
				continue
			}
			v := 100 + float64(10*i) + 30*math.Sin(2*math.Pi*float64(j)/24) + float64((j*7919)%13)
			fmt.Fprintf(&b, ",%g", v)
		}
		b.WriteString("\n")
	}
	p := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestForecastM4Writes(t *testing.T) {
	train := writeM4(t, 5)
	out := filepath.Join(t.TempDir(), "f.csv")
	e, stdout, stderr := forecastEnv()
	if code := run(context.Background(), e, []string{"forecast", "m4", "--train", train, "--horizon", "48", "--out", out}); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want header and 5 rows", len(lines))
	}
	if !strings.HasPrefix(lines[0], "id,F1,F2,") || !strings.HasSuffix(lines[0], ",F48") {
		t.Errorf("header %q", lines[0])
	}
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 49 || f[0] != "H"+strconv.Itoa(i+1) {
			t.Fatalf("row %d: %d fields, id %q", i, len(f), f[0])
		}
		for _, c := range f[1:] {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil || v < 40 || v > 200 {
				t.Fatalf("row %d: forecast %q out of the series' range", i, c)
			}
		}
	}
}

func TestForecastM4Eval(t *testing.T) {
	train := writeM4(t, 6)
	e, stdout, stderr := forecastEnv()
	if code := run(context.Background(), e, []string{"forecast", "m4", "--train", train, "--horizon", "48", "--holdout", "48", "--eval"}); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"series 6, holdout 48, horizon 48", "tide/naive ratio", "upper p95 coverage"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`(?m)^tide\s+([0-9.]+)\s+([0-9.]+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tide line:\n%s", out)
	}
	if mase, _ := strconv.ParseFloat(m[1], 64); mase > 1.2 {
		t.Errorf("MASE %v on clean seasonal data, want <= 1.2:\n%s", mase, out)
	}
}

func TestForecastEval(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,requests\n")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for at := t0; at.Before(t0.Add(20 * 24 * time.Hour)); at = at.Add(time.Hour) {
		if at.After(t0.Add(5*24*time.Hour)) && at.Before(t0.Add(6*24*time.Hour)) {
			continue // a gap
		}
		h := float64(at.Sub(t0)) / float64(time.Hour)
		fmt.Fprintf(&b, "%s,%.0f\n", at.Format(time.RFC3339), 200+80*math.Sin(2*math.Pi*h/24)+float64(int(h*37)%11))
	}
	p := filepath.Join(t.TempDir(), "trace.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e, stdout, stderr := forecastEnv()
	if code := run(context.Background(), e, []string{"forecast", "eval", "--trace", p, "--horizon", "3h", "--weeks", "1", "--every", "5h"}); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"step 1h0m0s, horizon 3h0m0s", "model changes ", "seasonal-naive-daily", "seasonal-naive-weekly", "coverage of the window maximum"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^tide\s+[0-9.]+\s+[0-9.]+$`).MatchString(out) {
		t.Errorf("no tide scores:\n%s", out)
	}
}

func TestForecastUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"forecast"}, 2},
		{"unknown subcommand", []string{"forecast", "nope"}, 2},
		{"help", []string{"forecast", "--help"}, 0},
		{"m4 without train", []string{"forecast", "m4", "--out", "x.csv"}, 1},
		{"eval without horizon", []string{"forecast", "eval", "--trace", "x.csv"}, 1},
		{"missing file", []string{"forecast", "m4", "--train", "/nonexistent/x.csv", "--out", "y.csv"}, 1},
		{"bad flag", []string{"forecast", "m4", "--bogus"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := forecastEnv()
			if code := run(context.Background(), e, tc.args); code != tc.code {
				t.Errorf("exit %d, want %d: %s %s", code, tc.code, stdout, stderr)
			}
		})
	}
}
