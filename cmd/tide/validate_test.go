package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateEnv returns an env writing to buffers.
func validateEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{
		Stdout: &out,
		Stderr: &errb,
		Stdin:  strings.NewReader(""),
		Getenv: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &out, &errb
}

const validateAt = "2026-03-02T09:00:00Z"

func TestValidateExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	want := map[string]string{
		"office-dms.yaml":         "(2 roles, 2 applications)",
		"drp-weekly.yaml":         "(3 roles, 4 applications)",
		"statements-monthly.yaml": "(2 roles, 2 applications)",
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			e, out, errb := validateEnv()
			if code := run(context.Background(), e, []string{"validate", "-c", f, "-at", validateAt}); code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errb)
			}
			got := out.String()
			if !strings.HasPrefix(got, f+": ok ") || !strings.Contains(got, want[filepath.Base(f)]) {
				t.Errorf("stdout %q, want %q and %s", got, f+": ok", want[filepath.Base(f)])
			}
			if errb.Len() != 0 {
				t.Errorf("stderr not empty: %s", errb)
			}
		})
	}
}

func TestValidateReportsProblems(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("..", "..", "examples", "office-dms.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// lineOf returns the 1-based line and column where s first occurs.
	lineOf := func(data, s string) (int, int) {
		i := strings.Index(data, s)
		if i < 0 {
			t.Fatalf("%q not in the example", s)
		}
		return strings.Count(data[:i], "\n") + 1, i - strings.LastIndex(data[:i], "\n")
	}
	tests := []struct {
		name       string
		old, new   string // replace old by new in the example
		find       string // where the problem is: first occurrence of this in the broken file
		path, msg  string
		wantOffset int // column offset from find
	}{
		{"broken cron", `start: "0 8 * * 1-5"`, `start: "0 25 * * 1-5"`, `"0 25 * * 1-5"`,
			"roles[1].policies.schedule[0].start", `bad cron "0 25 * * 1-5": hour out of range`, 0},
		{"unknown field", "    stateful: true\n", "    stateful: true\n    statefull: true\n", "statefull",
			"roles[0].statefull", `unknown field "statefull"; did you mean "stateful"?`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := strings.Replace(string(orig), tt.old, tt.new, 1)
			if broken == string(orig) {
				t.Fatalf("%q not in the example", tt.old)
			}
			file := filepath.Join(t.TempDir(), "office-dms.yaml")
			if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			e, out, errb := validateEnv()
			if code := run(context.Background(), e, []string{"validate", "-c", file, "-at", validateAt}); code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errb)
			}
			line, col := lineOf(broken, tt.find)
			want := fmt.Sprintf("%s:%d:%d: %s: %s\n", file, line, col+tt.wantOffset, tt.path, tt.msg)
			if errb.String() != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", errb, want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty: %q", out)
			}
		})
	}
}

func TestValidateEveryProblemOneALine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	doc := "name: t\nroles:\n  - name: web\n    min: 4\n    max: 3\n  - name: web\n    max: 0\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _, errb := validateEnv()
	if code := run(context.Background(), e, []string{"validate", "-c", file}); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := file + ":4:10: roles[0].min: min 4 is above max 3\n" +
		file + ":6:11: roles[1].name: duplicate role name \"web\" (also roles[0])\n" +
		file + ":7:10: roles[1].max: required: at least 1 (the most hosts this role may have)\n"
	if errb.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errb, want)
	}
}

func TestValidateUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no file", []string{"validate"}, 2, "-c FILE is required"},
		{"missing file", []string{"validate", "-c", filepath.Join(t.TempDir(), "nope.yaml")}, 1, "no such file"},
		{"bad -at", []string{"validate", "-c", "x.yaml", "-at", "tomorrow"}, 2, "bad -at"},
		{"stray argument", []string{"validate", "-c", "x.yaml", "extra"}, 1, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, errb := validateEnv()
			if code := run(context.Background(), e, tt.args); code != tt.code || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, errb, tt.code, tt.err)
			}
		})
	}
}
