package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/policies"
	"github.com/tideops/tide/predictor"
)

var update = flag.Bool("update", false, "rewrite testdata/records.golden from the records decided now")

// goldenRecords decides one record for every kind of input and step, with
// awkward numbers (huge, tiny, negative, NaN, Inf) and text that JSON
// escapes, in a fixed order.
func goldenRecords() []struct {
	name string
	rec  Record
} {
	type named = struct {
		name string
		rec  Record
	}
	var out []named
	win := func(name string, count int, mode policies.Mode) fixedWindow {
		return fixedWindow{name: name, from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: count, mode: mode}
	}
	odd := fixedWindow{name: "odd<&>", from: t0.Add(-time.Hour), until: t0.Add(time.Hour), count: 2, mode: policies.Floor}
	once := func(name string, p Params, ws policies.Set, f Forecaster, prev int, load *float64, age time.Duration, ov *Override) {
		r := NewRole(p, ws, f)
		if prev > 0 {
			r.Restore(prev, t0.Add(-time.Hour))
		}
		if load != nil {
			r.Observe(Sample{At: t0.Add(-age), Value: *load})
		}
		out = append(out, named{name, r.Decide(t0, ov)})
	}
	est := func(upper, q float64, model string) *fakeForecaster {
		return &fakeForecaster{est: predictor.Estimate{Point: upper / 2, Upper: upper, Quantile: q, Model: model}}
	}
	later := func(upper, q float64, model string) *laterFake {
		return &laterFake{later: predictor.Estimate{Upper: upper, Quantile: q, Model: model}}
	}
	reactive := baseParams()
	reactive.Predict = false

	for _, v := range []float64{100, 0, -5, 1234567, 0.000123456, 39.99999, math.NaN(), math.Inf(1), math.Inf(-1)} {
		once(fmt.Sprintf("reactive load %v", v), reactive, nil, nil, 0, ptr(v), 0, nil)
	}
	odd1 := reactive
	odd1.Headroom, odd1.Target = 0.125, 33.3333
	once("reactive odd headroom and target", odd1, nil, nil, 0, ptr(250), 0, nil)
	odd2 := reactive
	odd2.Headroom, odd2.Target = 0.005, 1e-7
	once("reactive tiny headroom and target", odd2, nil, nil, 0, ptr(1e-6), 0, nil)
	once("forecast wins", baseParams(), nil, est(612, 0.95, "m"), 0, ptr(100), 0, nil)
	once("forecast default quantile", baseParams(), nil, est(77.77, 0, "hw(day)"), 0, ptr(10), 0, nil)
	once("forecast p99.9", baseParams(), nil, est(1.5e9, 0.999, "seasonal-naive"), 0, ptr(3), 0, nil)
	once("forecast NaN", baseParams(), nil, est(math.NaN(), 0.9, ""), 0, ptr(3), 0, nil)
	once("forecast below load", baseParams(), nil, est(20, 0.95, "m"), 0, ptr(400), 0, nil)
	once("forecast after the lead", baseParams(), nil, later(200, 0.95, "m<1>"), 0, ptr(40), 0, nil)
	once("no forecast yet", baseParams(), nil, &fakeForecaster{err: predictor.ErrInsufficientHistory}, 0, ptr(100), 0, nil)
	once("forecast failed", baseParams(), nil, &fakeForecaster{err: errors.New(`model "x" <diverged> & stopped`)}, 0, ptr(100), 0, nil)
	once("no sample", baseParams(), nil, nil, 7, nil, 0, nil)
	once("stale sample", baseParams(), nil, nil, 7, ptr(1), 6*time.Minute+30400*time.Millisecond, nil)
	noMax := baseParams()
	noMax.MaxAge = 0
	once("frozen above max", baseParams(), nil, nil, 30, nil, 0, nil)
	once("old sample without max age", noMax, nil, nil, 7, ptr(1), 48*time.Hour, nil)
	once("windows and min", baseParams(), policies.Set{win("business-hours", 6, policies.Floor), odd}, nil, 0, ptr(10), 0, nil)
	once("exact window", baseParams(), policies.Set{win("drp", 4, policies.Exact)}, nil, 10, ptr(1000), 0, nil)
	once("exact window under min", baseParams(), policies.Set{win("drp", 0, policies.Exact)}, nil, 10, ptr(1000), 0, nil)
	once("exact window over max", baseParams(), policies.Set{win("drp", 99, policies.Exact)}, nil, 3, ptr(1), 0, nil)
	once("clamp max", baseParams(), nil, nil, 0, ptr(10000), 0, nil)
	noMin := baseParams()
	noMin.Min, noMin.LoadDriven = 3, false
	once("not load driven", noMin, nil, nil, 0, nil, 0, nil)
	ov := func(kind OverrideKind, n int, limits bool) *Override {
		return &Override{Kind: kind, Count: n, Until: t0.Add(90 * time.Minute), Reason: `launch "day" <&>`, IgnoreLimits: limits}
	}
	once("floor override", baseParams(), nil, nil, 0, ptr(10), 0, ov(FloorOverride, 6, false))
	once("floor override over max", baseParams(), nil, nil, 0, ptr(10), 0, ov(FloorOverride, 60, false))
	once("floor override ignoring limits", baseParams(), nil, nil, 0, ptr(10), 0, ov(FloorOverride, 60, true))
	once("pin", baseParams(), policies.Set{win("bh", 5, policies.Floor)}, est(900, 0.95, "m"), 12, ptr(1000), 0, ov(Pin, 3, false))
	once("pin under min", baseParams(), nil, nil, 5, ptr(10), 0, ov(Pin, 0, false))
	once("pin frozen", baseParams(), nil, nil, 5, nil, 0, ov(Pin, 2, true))

	// A sequence: scale up, stabilization holds, step limits, freeze.
	p := baseParams()
	p.Stabilization = 90 * time.Second
	seq := NewRole(p, nil, nil)
	now := t0
	for i, v := range []float64{400, 40, 40, 40, 40, 40, 40} {
		seq.Observe(Sample{At: now, Value: v})
		out = append(out, named{fmt.Sprintf("sequence %d", i), seq.Decide(now, nil)})
		now = now.Add(time.Minute)
	}
	out = append(out, named{"sequence frozen", seq.Decide(now.Add(time.Hour), nil)})
	return out
}

// render shows a record every way a record is shown: String, Summary,
// the line `tide plan` prints, fmt's %+v of its inputs and steps, and its
// JSON as the state store, the API (indented, HTML escaped) and `tide plan
// -o json` write it.
func render(t *testing.T, name string, rec Record) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s\n", name)
	b.WriteString(rec.String())
	fmt.Fprintf(&b, "summary: %s\n", rec.Summary())
	var reason strings.Builder
	for _, in := range rec.Inputs {
		if in.Won {
			fmt.Fprintf(&reason, "%s", in.Detail)
		}
	}
	for _, s := range rec.Steps {
		fmt.Fprintf(&reason, " [%s: %s]", s.Kind, s.Detail)
	}
	fmt.Fprintf(&b, "plan: %s\n", reason.String())
	fmt.Fprintf(&b, "%%+v: %+v %+v\n", rec.Inputs, rec.Steps)
	// A NaN or infinite load or forecast makes the whole record
	// unencodable (so is the error); its inputs and steps are shown alone.
	parts := struct {
		Inputs []Input `json:"inputs"`
		Steps  []Step  `json:"steps"`
	}{rec.Inputs, rec.Steps}
	for _, v := range []any{parts, rec} {
		compact, err := json.Marshal(v)
		if err != nil {
			fmt.Fprintf(&b, "json error: %v\n", err)
			continue
		}
		fmt.Fprintf(&b, "json: %s\n", compact)
		var ind bytes.Buffer
		enc := json.NewEncoder(&ind)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fmt.Fprintf(&b, "json unescaped:\n%s", ind.String())
	}
	return b.String()
}

// TestRecordGolden pins how records read: every detail, in the text and
// JSON forms, is the text testdata/records.golden holds (written from the
// decision code before details were formatted on demand). Run with
// -update to rewrite it after a deliberate change of wording.
func TestRecordGolden(t *testing.T) {
	var b strings.Builder
	for _, g := range goldenRecords() {
		b.WriteString(render(t, g.name, g.rec))
	}
	got := b.String()
	path := filepath.Join("testdata", "records.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d differs:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("got %d lines, want %d", len(gl), len(wl))
	}
}

// TestRecordJSONRoundTrip decodes each golden record's JSON, as the state
// store reads stored decisions back, and finds the same text and JSON.
func TestRecordJSONRoundTrip(t *testing.T) {
	for _, g := range goldenRecords() {
		t.Run(g.name, func(t *testing.T) {
			rec := g.rec
			rec.Load, rec.Forecast = nil, nil // NaN and Inf do not encode
			data, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			var back Record
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if got, want := render(t, g.name, back), render(t, g.name, rec); got != want {
				t.Fatalf("decoded record reads differently:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestRecordDecodesStoredJSON decodes a decision as stored before details
// were formatted on demand, null and missing details included.
func TestRecordDecodesStoredJSON(t *testing.T) {
	stored := `{"role":"web","at":"2026-11-27T12:00:00Z","previous":7,"desired":5,"winner":"forecast",` +
		`"inputs":[{"source":"load","count":3,"detail":"load 100 at 40 per host (the forecast's upper bound is the headroom)"},` +
		`{"source":"forecast","count":5,"detail":"forecast p95 200 in 10m0s to 11m0s: 5 hosts needed at 40 per host (m)","won":true},` +
		`{"source":"min","count":1,"detail":null},{"source":"policy:x","count":1}],` +
		`"steps":[{"kind":"step-limit","from":3,"to":5,"detail":"at most 2 hosts removed per decision \u003c\u0026\u003e"}],"load":100,"forecast":200}`
	var rec Record
	if err := json.Unmarshal([]byte(stored), &rec); err != nil {
		t.Fatal(err)
	}
	want := "role web at 2026-11-27T12:00:00Z: desired 5 (previous 7)\n" +
		"  inputs:\n" +
		"     load                            3  load 100 at 40 per host (the forecast's upper bound is the headroom)\n" +
		"   * forecast                        5  forecast p95 200 in 10m0s to 11m0s: 5 hosts needed at 40 per host (m)\n" +
		"     min                             1  \n" +
		"     policy:x                        1  \n" +
		"  then:\n" +
		"    step-limit     3 -> 5  at most 2 hosts removed per decision <&>\n" +
		"  result: 5 hosts, set by forecast\n"
	if got := rec.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	again, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(again), `"detail":"at most 2 hosts removed per decision \u003c\u0026\u003e"`) ||
		!strings.Contains(string(again), `{"source":"min","count":1,"detail":""}`) {
		t.Fatalf("re-encoded: %s", again)
	}
	var bad Record
	if err := json.Unmarshal([]byte(`{"inputs":[{"source":"min","detail":3}]}`), &bad); err == nil {
		t.Fatal("a number as a detail was accepted")
	}
}
