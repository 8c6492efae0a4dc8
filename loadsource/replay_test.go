package loadsource

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/tideops/tide/loadgen"
	"github.com/tideops/tide/trace"
)

func TestReplayMapsTime(t *testing.T) {
	traceStart := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) // a Monday
	serviceStart := t0
	// The load is the trace instant's hour, so the mapping is visible.
	hour := func(at time.Time) float64 { return float64(at.Hour()) + float64(at.Minute())/60 }
	r, err := NewReplay(hour, traceStart, serviceStart, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after time.Duration // since serviceStart
		want  float64       // trace hour
	}{
		{"start", 0, 0},
		{"one minute is one hour", time.Minute, 1},
		{"nine minutes is 09:00", 9 * time.Minute, 9},
		{"half a minute", 30 * time.Second, 0.5},
		{"a day in 24 minutes", 24*time.Minute + 6*time.Minute, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := serviceStart.Add(tc.after)
			s, err := r.Latest(context.Background(), now)
			if err != nil {
				t.Fatal(err)
			}
			if !s.At.Equal(now) || math.Abs(s.Value-tc.want) > 1e-9 {
				t.Fatalf("sample %+v, want %g stamped at now %s", s, tc.want, now)
			}
		})
	}
}

func TestReplayOfficeDay(t *testing.T) {
	g, err := loadgen.New("office", loadgen.Options{Seed: 1, Peak: 1000, Noise: -1})
	if err != nil {
		t.Fatal(err)
	}
	monday := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	r, err := NewReplay(g.At, monday, t0, 60)
	if err != nil {
		t.Fatal(err)
	}
	at := func(minutes float64) float64 {
		s, err := r.Latest(context.Background(), t0.Add(time.Duration(minutes*float64(time.Minute))))
		if err != nil {
			t.Fatal(err)
		}
		return s.Value
	}
	night, morning := at(3), at(10.5) // 03:00 and 10:30 on the Monday
	if !(morning > 5*night) || morning < 500 {
		t.Fatalf("office replay: 03:00 %g, 10:30 %g; want the office busy at 10:30 and quiet at night", night, morning)
	}
	samples, err := r.Range(context.Background(), t0.Add(-10*time.Minute), t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 11 || !samples[10].At.Equal(t0) {
		t.Fatalf("range: %d samples ending %v, want 11 ending at t0", len(samples), samples[len(samples)-1].At)
	}
}

func TestReplayRejects(t *testing.T) {
	load := func(time.Time) float64 { return 1 }
	for _, speed := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewReplay(load, t0, t0, speed); err == nil {
			t.Errorf("speed %g accepted", speed)
		}
	}
	if _, err := NewReplay(nil, t0, t0, 1); err == nil {
		t.Error("nil load accepted")
	}
	nan, _ := NewReplay(func(time.Time) float64 { return math.NaN() }, t0, t0, 1)
	if _, err := nan.Latest(context.Background(), t0); !errors.Is(err, ErrNoData) {
		t.Fatalf("NaN load: %v, want ErrNoData", err)
	}
	if _, err := nan.Range(context.Background(), t0, t0.Add(time.Minute), time.Second); !errors.Is(err, ErrNoData) {
		t.Fatalf("NaN range: %v, want ErrNoData", err)
	}
	far, _ := NewReplay(load, t0, t0, 1e12)
	if _, err := far.Latest(context.Background(), t0.Add(time.Hour)); !errors.Is(err, ErrNoData) {
		t.Fatalf("out of range instant: %v, want ErrNoData", err)
	}
}

func TestTraceLoad(t *testing.T) {
	tr := &trace.Trace{Name: "t", Step: time.Minute, Points: []trace.Point{
		{At: t0, Value: 1}, {At: t0.Add(time.Minute), Value: 2}, {At: t0.Add(3 * time.Minute), Value: 4}, // gap at +2m
	}}
	for _, tc := range []struct {
		name string
		loop bool
		at   time.Duration
		want float64 // NaN: no data
	}{
		{"first point", false, 0, 1},
		{"inside a step", false, 90 * time.Second, 2},
		{"gap", false, 2*time.Minute + time.Second, math.NaN()},
		{"last step", false, 3*time.Minute + 59*time.Second, 4},
		{"after the end", false, 4 * time.Minute, math.NaN()},
		{"before the start", false, -time.Second, math.NaN()},
		{"loop after the end", true, 4*time.Minute + 30*time.Second, 1},
		{"loop before the start", true, -30 * time.Second, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			load, err := TraceLoad(tr, tc.loop)
			if err != nil {
				t.Fatal(err)
			}
			got := load(t0.Add(tc.at))
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && got != tc.want) {
				t.Fatalf("load at %s = %g, want %g", tc.at, got, tc.want)
			}
		})
	}
	if _, err := TraceLoad(&trace.Trace{Step: time.Minute}, false); !errors.Is(err, trace.ErrEmpty) {
		t.Fatalf("empty trace: %v", err)
	}
}
