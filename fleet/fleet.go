package fleet

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tag keys tide puts on every instance it launches, from the launch on.
const (
	TagFleet = "tide:fleet"
	TagRole  = "tide:role"
	TagLabel = "tide:label"
)

// State is the lifecycle state of an instance, as EC2 names them.
type State string

// The instance states tide distinguishes.
const (
	StatePending      State = "pending"
	StateRunning      State = "running"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
	StateShuttingDown State = "shutting-down"
	StateTerminated   State = "terminated"
)

// Live reports whether an instance in this state is, or is becoming, a host.
func (s State) Live() bool { return s == StatePending || s == StateRunning }

// Instance is one machine as the cloud reports it.
type Instance struct {
	ID         string            `json:"id"`
	Label      string            `json:"label,omitempty"`
	Role       string            `json:"role,omitempty"`
	Fleet      string            `json:"fleet,omitempty"`
	Type       string            `json:"type,omitempty"`
	Zone       string            `json:"zone,omitempty"`
	Address    string            `json:"address,omitempty"` // the address tide reaches it on (private, else public)
	State      State             `json:"state"`
	Tags       map[string]string `json:"tags,omitempty"`
	LaunchedAt time.Time         `json:"launched_at"`
}

// LaunchSpec says what to launch. ClientToken makes the launch idempotent:
// a second launch with the same token returns the first instance.
type LaunchSpec struct {
	ClientToken string
	Fleet       string
	Role        string
	Label       string
	Type        string
	Zone        string
	Image       string
	Tags        map[string]string
}

// AllTags returns the spec's tags plus the fleet, role and label tags.
func (s LaunchSpec) AllTags() map[string]string {
	tags := make(map[string]string, len(s.Tags)+3)
	for k, v := range s.Tags {
		tags[k] = v
	}
	tags[TagFleet] = s.Fleet
	tags[TagRole] = s.Role
	tags[TagLabel] = s.Label
	return tags
}

// Label builds the label of the n-th host of a role: Label("web", 3) is "web-3".
func Label(role string, n int) string { return role + "-" + strconv.Itoa(n) }

// ParseLabel splits "web-3" into "web" and 3. ok is false when the label
// does not end in a positive number.
func ParseLabel(label string) (role string, n int, ok bool) {
	i := strings.LastIndexByte(label, '-')
	if i <= 0 || i == len(label)-1 {
		return "", 0, false
	}
	n, err := strconv.Atoi(label[i+1:])
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return label[:i], n, true
}

// NotFoundError says an instance does not exist (or no longer does).
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("instance %s not found", e.ID) }

// InsufficientCapacityError says the cloud has no capacity for the type in the zone.
type InsufficientCapacityError struct {
	Type, Zone string
	Err        error
}

func (e *InsufficientCapacityError) Error() string {
	return fmt.Sprintf("insufficient capacity for %s in %s: %v", e.Type, e.Zone, e.Err)
}

// Unwrap returns the underlying error.
func (e *InsufficientCapacityError) Unwrap() error { return e.Err }

// ThrottledError says the cloud refused the call for its rate; retry later.
type ThrottledError struct{ Err error }

func (e *ThrottledError) Error() string { return fmt.Sprintf("throttled: %v", e.Err) }

// Unwrap returns the underlying error.
func (e *ThrottledError) Unwrap() error { return e.Err }
