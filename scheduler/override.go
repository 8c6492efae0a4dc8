package scheduler

import (
	"fmt"
	"time"
)

// OverrideKind says how an override binds.
type OverrideKind string

// The kinds of override an operator can set.
const (
	// Pin holds the role at exactly Count hosts.
	Pin OverrideKind = "pin"
	// FloorOverride keeps at least Count hosts; policies may ask for more.
	FloorOverride OverrideKind = "floor"
)

// Override is an operator's instruction for a role until an expiry.
type Override struct {
	Role   string       `json:"role"`
	Kind   OverrideKind `json:"kind"`
	Count  int          `json:"count"`
	Until  time.Time    `json:"until"`
	Reason string       `json:"reason"`
	// IgnoreLimits lets the override go outside the role's min and max.
	IgnoreLimits bool      `json:"ignore_limits,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by,omitempty"`
}

// Active reports whether the override is in force at now.
func (o *Override) Active(now time.Time) bool {
	return o != nil && now.Before(o.Until)
}

// Validate checks an override before it is stored.
func (o Override) Validate(now time.Time) error {
	switch {
	case o.Role == "":
		return fmt.Errorf("override: role is required")
	case o.Kind != Pin && o.Kind != FloorOverride:
		return fmt.Errorf("override: kind must be %q or %q, not %q", Pin, FloorOverride, o.Kind)
	case o.Count < 0:
		return fmt.Errorf("override: count must not be negative, got %d", o.Count)
	case !o.Until.After(now):
		return fmt.Errorf("override: expiry %s is not in the future", o.Until.Format(time.RFC3339))
	case o.Reason == "":
		return fmt.Errorf("override: a reason is required")
	}
	return nil
}

func (o *Override) describe() string {
	return fmt.Sprintf("%s %d until %s: %q", o.Kind, o.Count, o.Until.UTC().Format("2006-01-02 15:04Z"), o.Reason)
}
