package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers. Real is the wall clock; Virtual is
// advanced explicitly.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// After is time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Virtual is a clock that only moves when Advance or Set is called. It is
// safe for concurrent use. Timers created with After fire, in deadline order,
// when the clock is moved past their deadline.
type Virtual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

var _ Clock = (*Virtual)(nil)

// NewVirtual returns a virtual clock that reads start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// After returns a channel that receives the virtual time once the clock has
// been advanced by at least d. A non-positive d fires at once.
func (v *Virtual) After(d time.Duration) <-chan time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- v.now
		return ch
	}
	v.waiters = append(v.waiters, waiter{at: v.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires the timers that are due.
func (v *Virtual) Advance(d time.Duration) { v.Set(v.Now().Add(d)) }

// Set moves the clock to t (never backwards) and fires the timers that are due.
func (v *Virtual) Set(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.Before(v.now) {
		return
	}
	v.now = t
	sort.SliceStable(v.waiters, func(i, j int) bool { return v.waiters[i].at.Before(v.waiters[j].at) })
	kept := v.waiters[:0]
	for _, w := range v.waiters {
		if !w.at.After(t) {
			w.ch <- t
			continue
		}
		kept = append(kept, w)
	}
	v.waiters = kept
}

// Waiters reports how many timers are pending; tests poll it to know that a
// loop has gone back to waiting before they advance the clock.
func (v *Virtual) Waiters() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.waiters)
}

// Scaled is a clock that runs Speed times faster than the wall clock from
// Origin on: a demo can show a working day pass in minutes while every
// component still reads one consistent time.
type Scaled struct {
	origin, wallStart time.Time
	speed             float64
}

var _ Clock = (*Scaled)(nil)

// NewScaled returns a clock that reads origin now and then runs speed times
// faster than the wall clock. A speed of 1 or less is the wall clock shifted to origin.
func NewScaled(origin time.Time, speed float64) *Scaled {
	if speed < 1 {
		speed = 1
	}
	return &Scaled{origin: origin, wallStart: time.Now(), speed: speed}
}

// Now returns the scaled time.
func (s *Scaled) Now() time.Time {
	return s.origin.Add(time.Duration(float64(time.Since(s.wallStart)) * s.speed))
}

// After fires once d of scaled time has passed.
func (s *Scaled) After(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	time.AfterFunc(time.Duration(float64(d)/s.speed), func() { c <- s.Now() })
	return c
}

// Speed returns how many times faster than the wall clock s runs.
func (s *Scaled) Speed() float64 { return s.speed }
