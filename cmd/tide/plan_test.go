package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tideops/tide/scheduler"
)

func planRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }, Logger: discardLogger()}
	code := run(context.Background(), e, append([]string{"plan"}, args...))
	return out.String(), errb.String(), code
}

func TestPlanFridayWorkersWindow(t *testing.T) {
	out, errs, code := planRun(t, "-c", "../../examples/drp-weekly.yaml", "--at", "2026-11-27T19:00:00+01:00", "--explain", "worker")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"role worker", "desired 6", "Fri 18:00", "Europe/Brussels", "set by policy:"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	// On Thursday the window is closed: the worker role is at its minimum,
	// one host for ad-hoc plans.
	out, _, _ = planRun(t, "-c", "../../examples/drp-weekly.yaml", "--at", "2026-11-26T19:00:00+01:00", "--output", "json")
	var recs []scheduler.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Role == "worker" && r.Desired != 1 {
			t.Errorf("worker on Thursday: %d, want 1\n%s", r.Desired, r)
		}
	}
}

func TestPlanLoadSample(t *testing.T) {
	out, errs, code := planRun(t, "-c", "../../examples/office-dms.yaml", "--at", "2026-11-28T03:00:00+01:00", "--load", "web=120", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var recs []scheduler.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Role == "web" && (r.Winner != "load" || r.Load == nil || *r.Load != 120) {
			t.Errorf("web at night with load 120: %s", r)
		}
	}
}

func TestPlanWeekMarksDST(t *testing.T) {
	out, errs, code := planRun(t, "-c", "../../examples/office-dms.yaml", "--at", "2026-10-23T12:00:00Z", "--week")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "daylight-saving change: CEST -> CET") {
		t.Errorf("week across 2026-10-25 lacks the DST mark:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n < 7*24 {
		t.Errorf("week has %d lines, want at least 168", n)
	}
	// Monday 08:00 local opens business hours, also after the change.
	if !strings.Contains(out, "* Mon 2026-10-26 08:00 CET") {
		t.Errorf("business hours do not open at 08:00 local after the change:\n%s", out)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-c", "../../examples/office-dms.yaml", "--explain", "nope"},
		{"-c", "../../examples/office-dms.yaml", "--at", "yesterday"},
		{"-c", "../../examples/office-dms.yaml", "--load", "web"},
		{"-c", "does-not-exist.yaml"},
	} {
		if _, _, code := planRun(t, args...); code == 0 {
			t.Errorf("plan %v: exit 0, want an error", args)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
