package loadsource

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/scheduler"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func TestPushValidation(t *testing.T) {
	p := NewPushed(clock.NewVirtual(t0), PushedOptions{Roles: []string{"web"}})
	for _, tc := range []struct {
		name    string
		role    string
		s       scheduler.Sample
		wantErr string
		unknown bool
	}{
		{name: "ok", role: "web", s: scheduler.Sample{At: t0, Value: 12}},
		{name: "zero is a value", role: "web", s: scheduler.Sample{At: t0, Value: 0}},
		{name: "slightly ahead", role: "web", s: scheduler.Sample{At: t0.Add(30 * time.Second), Value: 1}},
		{name: "NaN", role: "web", s: scheduler.Sample{At: t0, Value: math.NaN()}, wantErr: "finite"},
		{name: "infinite", role: "web", s: scheduler.Sample{At: t0, Value: math.Inf(1)}, wantErr: "finite"},
		{name: "negative", role: "web", s: scheduler.Sample{At: t0, Value: -1}, wantErr: "negative"},
		{name: "no time", role: "web", s: scheduler.Sample{Value: 1}, wantErr: "time is required"},
		{name: "far future", role: "web", s: scheduler.Sample{At: t0.Add(time.Hour), Value: 1}, wantErr: "ahead of tide's clock"},
		{name: "no role", role: "", s: scheduler.Sample{At: t0, Value: 1}, wantErr: "role is required"},
		{name: "unknown role", role: "db", s: scheduler.Sample{At: t0, Value: 1}, unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Push(tc.role, tc.s)
			switch {
			case tc.unknown:
				if !errors.Is(err, ErrUnknownRole) {
					t.Fatalf("got %v, want ErrUnknownRole", err)
				}
			case tc.wantErr == "":
				if err != nil {
					t.Fatal(err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestPushedLatest(t *testing.T) {
	clk := clock.NewVirtual(t0)
	p := NewPushed(clk, PushedOptions{})
	web := p.Role("web")
	if _, err := web.Latest(context.Background(), t0); !errors.Is(err, ErrNoData) {
		t.Fatalf("latest before any push: %v, want ErrNoData", err)
	}
	must(t, p.Push("web", scheduler.Sample{At: t0, Value: 10}))
	must(t, p.Push("web", scheduler.Sample{At: t0.Add(-time.Minute), Value: 5})) // late
	must(t, p.Push("db", scheduler.Sample{At: t0, Value: 0}))
	got, err := web.Latest(context.Background(), t0)
	if err != nil || got.Value != 10 || !got.At.Equal(t0) {
		t.Fatalf("latest web: %+v, %v; want 10 at t0 (a late sample does not replace it)", got, err)
	}
	if got, err := p.Role("db").Latest(context.Background(), t0); err != nil || got.Value != 0 {
		t.Fatalf("latest db: %+v, %v; want a pushed zero to stay a zero", got, err)
	}
	if s := p.Since("web", time.Time{}); len(s) != 2 || s[0].Value != 5 || s[1].Value != 10 {
		t.Fatalf("since: %+v, want both samples oldest first", s)
	}
	if s := p.Since("web", t0.Add(-time.Minute)); len(s) != 1 {
		t.Fatalf("since t0-1m (exclusive): %+v", s)
	}
}

func TestPushedIsBounded(t *testing.T) {
	p := NewPushed(clock.NewVirtual(t0), PushedOptions{Keep: 3, MaxRoles: 2})
	for i := range 10 {
		must(t, p.Push("web", scheduler.Sample{At: t0.Add(time.Duration(i) * time.Second), Value: float64(i)}))
	}
	s := p.Since("web", time.Time{})
	if len(s) != 3 || s[0].Value != 7 || s[2].Value != 9 {
		t.Fatalf("kept %+v, want the last 3 (7, 8, 9)", s)
	}
	must(t, p.Push("db", scheduler.Sample{At: t0, Value: 1}))
	if err := p.Push("cache", scheduler.Sample{At: t0, Value: 1}); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("third role: %v, want ErrUnknownRole (bounded to 2)", err)
	}
}

func TestPushedConcurrent(t *testing.T) {
	p := NewPushed(clock.NewVirtual(t0), PushedOptions{Keep: 16})
	var wg sync.WaitGroup
	for w := range 4 {
		role := fmt.Sprintf("r%d", w%2)
		wg.Go(func() {
			for i := range 200 {
				if err := p.Push(role, scheduler.Sample{At: t0.Add(time.Duration(i) * time.Millisecond), Value: float64(i)}); err != nil {
					t.Error(err)
					return
				}
				p.Role(role).Latest(context.Background(), t0)
				p.Since(role, time.Time{})
			}
		})
	}
	wg.Wait()
	for _, role := range []string{"r0", "r1"} {
		if s, err := p.Latest(role); err != nil || s.Value != 199 {
			t.Fatalf("%s latest %+v, %v; want 199", role, s, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPushedSetRoles(t *testing.T) {
	p := NewPushed(clock.NewVirtual(t0), PushedOptions{Roles: []string{"web", "db"}})
	must(t, p.Push("web", scheduler.Sample{At: t0, Value: 3}))
	must(t, p.Push("db", scheduler.Sample{At: t0, Value: 4}))
	p.SetRoles([]string{"web", "worker"})
	if s, err := p.Latest("web"); err != nil || s.Value != 3 {
		t.Fatalf("web after reload: %+v, %v; want its sample kept", s, err)
	}
	if _, err := p.Latest("db"); !errors.Is(err, ErrNoData) {
		t.Fatalf("db after reload: %v, want ErrNoData (dropped)", err)
	}
	if err := p.Push("db", scheduler.Sample{At: t0, Value: 1}); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("push for a dropped role: %v, want ErrUnknownRole", err)
	}
	must(t, p.Push("worker", scheduler.Sample{At: t0, Value: 1}))
	p.SetRoles(nil)
	must(t, p.Push("cache", scheduler.Sample{At: t0, Value: 1}))
	if s, err := p.Latest("worker"); err != nil || s.Value != 1 {
		t.Fatalf("worker after opening up: %+v, %v", s, err)
	}
}
