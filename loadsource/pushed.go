package loadsource

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/scheduler"
)

// ErrUnknownRole says a sample was pushed for a role Pushed does not take.
var ErrUnknownRole = errors.New("unknown role")

// PushedOptions tune Pushed. The zero value gives the defaults.
type PushedOptions struct {
	// Roles lists the roles samples may be pushed for. Empty: any role,
	// up to MaxRoles of them.
	Roles []string
	// MaxRoles bounds the roles kept when Roles is empty. Default 64.
	MaxRoles int
	// Keep is how many recent samples are kept per role for Since.
	// Default 1024.
	Keep int
	// MaxSkew is how far in the future of the clock a sample may be
	// (pushers' clocks drift). Default 1 minute.
	MaxSkew time.Duration
}

// Pushed holds load samples pushed to tide's API, per role. It keeps a
// bounded ring of recent samples per role and a bounded number of roles.
// It is safe for concurrent use.
type Pushed struct {
	clk  clock.Clock
	opts PushedOptions

	mu    sync.Mutex
	roles map[string]*ring
	fixed bool // roles limited to opts.Roles
}

// ring is a bounded run of samples in push order, with the newest by time.
type ring struct {
	buf    []scheduler.Sample
	next   int
	full   bool
	newest scheduler.Sample
}

// NewPushed returns an empty Pushed that checks sample times against clk.
func NewPushed(clk clock.Clock, o PushedOptions) *Pushed {
	if o.MaxRoles <= 0 {
		o.MaxRoles = 64
	}
	if o.Keep <= 0 {
		o.Keep = 1024
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = time.Minute
	}
	p := &Pushed{clk: clk, opts: o, roles: map[string]*ring{}}
	for _, r := range o.Roles {
		p.roles[r] = &ring{buf: make([]scheduler.Sample, o.Keep)}
		p.fixed = true
	}
	return p
}

// SetRoles changes the roles samples may be pushed for, as after a
// schedule reload: the kept samples of the roles still listed stay, the
// others are dropped. An empty list accepts any role again, up to MaxRoles.
func (p *Pushed) SetRoles(roles []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := make(map[string]*ring, len(roles))
	for _, r := range roles {
		if old := p.roles[r]; old != nil {
			keep[r] = old
		} else {
			keep[r] = &ring{buf: make([]scheduler.Sample, p.opts.Keep)}
		}
	}
	if len(roles) == 0 {
		for r, old := range p.roles {
			keep[r] = old
		}
	}
	p.roles, p.fixed = keep, len(roles) > 0
}

// Push stores a sample for a role. It refuses a value that is NaN,
// infinite or negative, a sample without a time or more than MaxSkew ahead
// of the clock, and a role it does not take (ErrUnknownRole). A sample
// older than the role's newest is kept for Since but does not replace the
// newest.
func (p *Pushed) Push(role string, s scheduler.Sample) error {
	switch {
	case role == "":
		return fmt.Errorf("pushing load: role is required")
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return fmt.Errorf("pushing load for %s: value must be a finite number, got %g", role, s.Value)
	case s.Value < 0:
		return fmt.Errorf("pushing load for %s: value must not be negative, got %g", role, s.Value)
	case s.At.IsZero():
		return fmt.Errorf("pushing load for %s: time is required", role)
	}
	if now := p.clk.Now(); s.At.After(now.Add(p.opts.MaxSkew)) {
		return fmt.Errorf("pushing load for %s: time %s is %s ahead of tide's clock (at most %s)",
			role, s.At.Format(time.RFC3339), s.At.Sub(now).Round(time.Second), p.opts.MaxSkew)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.roles[role]
	if !ok {
		if p.fixed {
			return fmt.Errorf("pushing load for %s: %w", role, ErrUnknownRole)
		}
		if len(p.roles) >= p.opts.MaxRoles {
			return fmt.Errorf("pushing load for %s: %w (already %d roles)", role, ErrUnknownRole, len(p.roles))
		}
		r = &ring{buf: make([]scheduler.Sample, p.opts.Keep)}
		p.roles[role] = r
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
	if r.newest.At.IsZero() || !s.At.Before(r.newest.At) {
		r.newest = s
	}
	return nil
}

// Latest returns the role's newest pushed sample, or an error matching
// ErrNoData when none was pushed. How old it may be is the scheduler's
// business (its max-age freezes the role on a stale sample).
func (p *Pushed) Latest(role string) (scheduler.Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.roles[role]
	if r == nil || r.newest.At.IsZero() {
		return scheduler.Sample{}, fmt.Errorf("%w: nothing pushed for role %s", ErrNoData, role)
	}
	return r.newest, nil
}

// Since returns the role's kept samples pushed with a time after after,
// oldest first: what the service feeds to the predictor and stores.
func (p *Pushed) Since(role string, after time.Time) []scheduler.Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.roles[role]
	if r == nil {
		return nil
	}
	var out []scheduler.Sample
	start, n := 0, r.next
	if r.full {
		start, n = r.next, len(r.buf)
	}
	for i := range n {
		s := r.buf[(start+i)%len(r.buf)]
		if s.At.After(after) {
			out = append(out, s)
		}
	}
	sortSamples(out)
	return out
}

// Role returns the Source of one role.
func (p *Pushed) Role(role string) *PushedRole { return &PushedRole{p: p, role: role} }

// PushedRole is one role's view of Pushed.
type PushedRole struct {
	p    *Pushed
	role string
}

var _ Source = (*PushedRole)(nil)

// Latest returns the role's newest pushed sample; see Pushed.Latest.
func (r *PushedRole) Latest(_ context.Context, _ time.Time) (scheduler.Sample, error) {
	return r.p.Latest(r.role)
}
