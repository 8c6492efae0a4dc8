package fromconfig

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/loadsource"
	"github.com/tideops/tide/loadsource/promql"
	"github.com/tideops/tide/scheduler"
)

// A Wednesday, 12:00 UTC.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const schedule = `name: t
roles:
  - name: api
    max: 5
    capacity: 10
    policies:
      load:
        source:
          prometheus:
            url: http://127.0.0.1:9
            query: sum(rate(http_requests_total{job="api"}[1m]))
            timeout: 3s
  - name: web
    max: 5
    capacity: 10
    policies:
      schedule:
        - name: office
          start: "0 8 * * 1-5"
          end: "0 18 * * 1-5"
          timezone: Europe/Brussels
          count: 2
      load:
        source:
          synthetic:
            profile: office
            peak: 200
            speed: 60
  - name: worker
    max: 5
    capacity: 10
    policies:
      load:
        source:
          push: true
  - name: batch
    max: 5
    capacity: 10
    policies:
      load:
        source:
          trace:
            file: load.csv
            speed: 2
  - name: db
    max: 1
`

func load(t *testing.T) *config.Schedule {
	t.Helper()
	dir := t.TempDir()
	csv := "timestamp,requests\n2026-01-05T00:00:00Z,10\n2026-01-05T00:01:00Z,20\n2026-01-05T00:02:00Z,30\n"
	if err := os.WriteFile(filepath.Join(dir, "load.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tide.yaml")
	if err := os.WriteFile(path, []byte(schedule), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuild(t *testing.T) {
	clk := clock.NewVirtual(t0)
	srcs, err := Build(load(t), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if len(srcs.ByRole) != 4 || srcs.ByRole["db"] != nil {
		t.Fatalf("sources for %d roles, want the 4 load-driven ones: %v", len(srcs.ByRole), srcs.ByRole)
	}
	if len(srcs.Backfill) != 3 || srcs.Backfill["worker"] != nil {
		t.Fatalf("backfill for %d roles, want api, web and batch", len(srcs.Backfill))
	}

	t.Run("prometheus", func(t *testing.T) {
		ps, ok := srcs.ByRole["api"].(*promql.Source)
		if !ok || ps.Query() != `sum(rate(http_requests_total{job="api"}[1m]))` {
			t.Fatalf("api source %T %v", srcs.ByRole["api"], srcs.ByRole["api"])
		}
		// Nothing listens on port 9: missing, never zero.
		if _, err := ps.Latest(ctx, t0); !errors.Is(err, loadsource.ErrNoData) {
			t.Fatalf("unreachable server: %v, want ErrNoData", err)
		}
	})

	t.Run("synthetic starts at the office morning", func(t *testing.T) {
		web := srcs.ByRole["web"].(*loadsource.Replay)
		start, _ := web.TraceTime(t0)
		if want := time.Date(2026, 11, 25, 7, 0, 0, 0, mustZone(t, "Europe/Brussels")); !start.Equal(want) {
			t.Fatalf("replay starts at %s, want %s", start, want)
		}
		early, err := web.Latest(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		busy, err := web.Latest(ctx, t0.Add(3*time.Minute)) // 10:00 Brussels
		if err != nil {
			t.Fatal(err)
		}
		if !busy.At.Equal(t0.Add(3*time.Minute)) || busy.Value < 2*early.Value || busy.Value < 100 {
			t.Fatalf("07:00 load %g, 10:00 load %+v: want the morning rise", early.Value, busy)
		}
	})

	t.Run("push", func(t *testing.T) {
		if srcs.Pushed == nil {
			t.Fatal("no Pushed for the push role")
		}
		if _, err := srcs.ByRole["worker"].Latest(ctx, t0); !errors.Is(err, loadsource.ErrNoData) {
			t.Fatalf("before a push: %v, want ErrNoData", err)
		}
		if err := srcs.Pushed.Push("worker", scheduler.Sample{At: t0, Value: 17}); err != nil {
			t.Fatal(err)
		}
		if got, err := srcs.ByRole["worker"].Latest(ctx, t0); err != nil || got.Value != 17 {
			t.Fatalf("after a push: %+v, %v", got, err)
		}
		if err := srcs.Pushed.Push("web", scheduler.Sample{At: t0, Value: 1}); !errors.Is(err, loadsource.ErrUnknownRole) {
			t.Fatalf("push for a synthetic role: %v, want ErrUnknownRole", err)
		}
	})

	t.Run("trace relative to the schedule file", func(t *testing.T) {
		batch := srcs.ByRole["batch"]
		for _, tc := range []struct {
			after time.Duration
			want  float64
		}{{0, 10}, {30 * time.Second, 20}, {time.Minute, 30}, {90 * time.Second, 10}} { // speed 2, looping
			got, err := batch.Latest(ctx, t0.Add(tc.after))
			if err != nil || got.Value != tc.want {
				t.Fatalf("at +%s: %+v, %v; want %g", tc.after, got, err, tc.want)
			}
		}
	})

	t.Run("reload keeps pushed samples", func(t *testing.T) {
		again, err := Build(load(t), Options{Clock: clk, Pushed: srcs.Pushed})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := again.ByRole["worker"].Latest(ctx, t0); err != nil || got.Value != 17 {
			t.Fatalf("after reload: %+v, %v; want the pushed 17", got, err)
		}
	})
}

func TestBuildErrors(t *testing.T) {
	s := load(t)
	s.Roles[3].Policies.Load.Source.Trace.File = "missing.csv"
	if _, err := Build(s, Options{Clock: clock.NewVirtual(t0)}); err == nil {
		t.Fatal("missing trace file accepted")
	}
}

func TestMorningBefore(t *testing.T) {
	utc := time.UTC
	for _, tc := range []struct {
		name string
		t    time.Time
		want time.Time
	}{
		{"weekday afternoon", time.Date(2026, 11, 25, 15, 0, 0, 0, utc), time.Date(2026, 11, 25, 7, 0, 0, 0, utc)},
		{"weekday before seven", time.Date(2026, 11, 25, 6, 0, 0, 0, utc), time.Date(2026, 11, 24, 7, 0, 0, 0, utc)},
		{"exactly seven", time.Date(2026, 11, 25, 7, 0, 0, 0, utc), time.Date(2026, 11, 25, 7, 0, 0, 0, utc)},
		{"sunday", time.Date(2026, 11, 29, 12, 0, 0, 0, utc), time.Date(2026, 11, 27, 7, 0, 0, 0, utc)},
		{"monday early", time.Date(2026, 11, 30, 5, 0, 0, 0, utc), time.Date(2026, 11, 27, 7, 0, 0, 0, utc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MorningBefore(tc.t, utc); !got.Equal(tc.want) {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
