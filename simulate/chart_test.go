package simulate

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWriteChart(t *testing.T) {
	// Two days of minutes with a sudden step on the second day and a gap.
	var loads []float64
	for i := range 2 * 24 * 60 {
		v := 30.0
		if i >= 24*60+600 && i < 24*60+700 {
			v = 300
		}
		if i >= 200 && i < 260 {
			v = -1
		}
		loads = append(loads, v)
	}
	res, err := Run(context.Background(), minutes(loads...), plainRole(10), Options{Lead: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteChart(&buf, res); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var elems, polylines int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if elems == 0 && (se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root = %v", se.Name)
			}
			elems++
			if se.Name.Local == "polyline" {
				polylines++
			}
		}
	}
	svg := buf.String()
	for _, want := range []string{
		"zoom: Tue 5 Mar 2024 (UTC), the worst under-provisioned day", // the step is on the second day
		"load (min–max per pixel)", "ready × capacity", "no data from 2024-03-04T03:20:00Z (60 steps)", ">10:00<",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if polylines < 4 {
		t.Errorf("%d polylines, want lines for ready and desired in both panels", polylines)
	}
}

func TestTimeTicks(t *testing.T) {
	from := time.Date(1995, 7, 1, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		span     time.Duration
		min, max int
	}{
		{24 * time.Hour, 6, 14},
		{62 * 24 * time.Hour, 4, 14},
		{5 * 365 * 24 * time.Hour, 4, 14},
	}
	for _, tc := range tests {
		ticks, _ := timeTicks(from, from.Add(tc.span))
		if len(ticks) < tc.min || len(ticks) > tc.max {
			t.Errorf("span %s: %d ticks %v", tc.span, len(ticks), ticks)
		}
		for _, tk := range ticks {
			if tk.Before(from) || tk.After(from.Add(tc.span)) {
				t.Errorf("tick %s outside the span", tk)
			}
		}
	}
}
