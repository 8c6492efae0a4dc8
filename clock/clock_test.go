package clock

import (
	"testing"
	"time"
)

func TestVirtualFiresInOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(t0)
	late := v.After(2 * time.Minute)
	early := v.After(time.Minute)
	now := v.After(0)
	select {
	case <-now:
	default:
		t.Fatal("After(0) did not fire at once")
	}
	v.Advance(90 * time.Second)
	select {
	case got := <-early:
		if !got.Equal(t0.Add(90 * time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("1m timer did not fire after 90s")
	}
	select {
	case <-late:
		t.Fatal("2m timer fired after 90s")
	default:
	}
	if v.Waiters() != 1 {
		t.Fatalf("waiters %d, want 1", v.Waiters())
	}
	v.Set(t0) // never backwards
	if !v.Now().Equal(t0.Add(90 * time.Second)) {
		t.Fatal("Set moved the clock backwards")
	}
	v.Advance(time.Minute)
	<-late
}

func TestScaledRunsFaster(t *testing.T) {
	origin := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	s := NewScaled(origin, 3600) // an hour a second
	start := time.Now()
	<-s.After(30 * time.Minute) // half a second of wall time
	wall := time.Since(start)
	if got := s.Now().Sub(origin); got < 30*time.Minute {
		t.Fatalf("scaled clock advanced %v after the timer, want at least 30m", got)
	}
	if wall > 20*time.Second {
		t.Fatalf("a 30m scaled timer took %v of wall time", wall)
	}
}
