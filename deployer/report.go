package deployer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tideops/tide/fleet"
)

// Action is what a reconcile did to one host.
type Action string

// The actions a host result can carry.
const (
	ActionLaunched Action = "launched"
	// ActionStarted is a stopped host that holds a wanted label, started
	// again (its disk, data and host key kept) and converged: it counts as
	// the label's host, as a kept one does.
	ActionStarted Action = "started"
	ActionKept    Action = "kept"
	ActionRemoved Action = "removed"
	ActionFailed  Action = "failed"
)

// Step is a stage of a host's pipeline, as reported to a Progress.
type Step string

// The steps of the launch and removal pipelines.
const (
	StepLaunching      Step = "launching"
	StepStarting       Step = "starting"
	StepWaitingAddress Step = "waiting for address"
	StepConnecting     Step = "connecting"
	StepLabelling      Step = "labelling"
	StepAsking         Step = "reading label"
	StepDeploying      Step = "deploying"
	StepDraining       Step = "draining"
	StepTerminating    Step = "terminating"
	StepDone           Step = "done"
	StepFailed         Step = "failed"
)

// Durations are the timed steps of one host's launch: these are the lead
// time the predictor must look ahead.
type Durations struct {
	// LaunchToAddress runs from the launch call to the address showing up.
	LaunchToAddress time.Duration
	// AddressToSSH runs from the address to the first SSH connection.
	AddressToSSH time.Duration
	// Deploy is the Deployer's Converge.
	Deploy time.Duration
}

// Total is the sum of the steps.
func (d Durations) Total() time.Duration { return d.LaunchToAddress + d.AddressToSSH + d.Deploy }

// MarshalJSON writes the durations as Go duration strings.
func (d Durations) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"launch_to_address": d.LaunchToAddress.String(),
		"address_to_ssh":    d.AddressToSSH.String(),
		"deploy":            d.Deploy.String(),
	})
}

// HostResult is what a reconcile did to one host, or one label.
type HostResult struct {
	Label      string `json:"label"`
	Role       string `json:"role"`
	InstanceID string `json:"instance_id,omitempty"`
	Address    string `json:"address,omitempty"`
	Zone       string `json:"zone,omitempty"`
	Action     Action `json:"action"`
	// Intended is what was being done when Action is failed: launched,
	// started, kept or removed.
	Intended Action `json:"intended,omitempty"`
	// Reason says why a host was removed: above-count, duplicate, down,
	// start-failed, replaced, replaced-data-discarded.
	Reason string `json:"reason,omitempty"`
	// Err is the failure; Kind classifies it (KindCapacity, ...).
	Err  error  `json:"-"`
	Kind string `json:"error_kind,omitempty"`
	// DrainErr is the Drainer's failure that a removal went ahead despite
	// (Replace with DiscardData; Reason is then ReasonDataDiscarded): what
	// the host held that the Drainer did not save is lost.
	DrainErr  error     `json:"-"`
	Durations Durations `json:"durations"`
}

// MarshalJSON adds the errors' text.
func (r HostResult) MarshalJSON() ([]byte, error) {
	type plain HostResult
	out := struct {
		plain
		Error      string `json:"error,omitempty"`
		DrainError string `json:"drain_error,omitempty"`
	}{plain: plain(r)}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	if r.DrainErr != nil {
		out.DrainError = r.DrainErr.Error()
	}
	return json.Marshal(out)
}

// StepTiming summarises one step over a role's new hosts.
type StepTiming struct {
	Count int           `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	Max   time.Duration `json:"max_ns"`
}

func (s *StepTiming) add(d time.Duration) {
	s.Mean = (s.Mean*time.Duration(s.Count) + d) / time.Duration(s.Count+1)
	s.Count++
	s.Max = max(s.Max, d)
}

// RoleTimings are a role's launch durations in one reconcile.
type RoleTimings struct {
	LaunchToAddress StepTiming `json:"launch_to_address"`
	AddressToSSH    StepTiming `json:"address_to_ssh"`
	Deploy          StepTiming `json:"deploy"`
}

// Report is the outcome of one reconcile.
type Report struct {
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Hosts    []HostResult `json:"hosts"`
	// Roles holds, per role, the durations of its hosts launched in this
	// reconcile.
	Roles map[string]RoleTimings `json:"roles"`
}

// Count returns how many hosts had the action.
func (r Report) Count(a Action) int {
	n := 0
	for _, h := range r.Hosts {
		if h.Action == a {
			n++
		}
	}
	return n
}

// Changed reports whether anything was launched, removed or failed.
func (r Report) Changed() bool { return r.Count(ActionKept) != len(r.Hosts) }

// Err returns nil when no host failed, else an error wrapping
// ErrHostsFailed and each host's error.
func (r Report) Err() error {
	var errs []error
	for _, h := range r.Hosts {
		if h.Action == ActionFailed {
			errs = append(errs, fmt.Errorf("%s: %w", h.Label, h.Err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d: %w", ErrHostsFailed, len(errs), len(r.Hosts), errors.Join(errs...))
}

// Summary is one line a person reads: "3 launched, 2 kept, 1 removed,
// 0 failed", with "1 started" after the launched when hosts were started.
func (r Report) Summary() string {
	parts := make([]string, 0, 5)
	for _, a := range []Action{ActionLaunched, ActionStarted, ActionKept, ActionRemoved, ActionFailed} {
		n := r.Count(a)
		if a == ActionStarted && n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, a))
	}
	return strings.Join(parts, ", ")
}

func (r *Report) finish(now time.Time) {
	r.Finished = now
	sortResults(r.Hosts)
	r.Roles = map[string]RoleTimings{}
	for _, h := range r.Hosts {
		if h.Action != ActionLaunched || h.Reason == ReasonAdopted {
			continue // adopted hosts were launched by an earlier run: their timings are unknown
		}
		t := r.Roles[h.Role]
		t.LaunchToAddress.add(h.Durations.LaunchToAddress)
		t.AddressToSSH.add(h.Durations.AddressToSSH)
		t.Deploy.add(h.Durations.Deploy)
		r.Roles[h.Role] = t
	}
}

// sortResults orders by role, then label number, then instance id.
func sortResults(rs []HostResult) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		_, na, _ := fleet.ParseLabel(a.Label)
		_, nb, _ := fleet.ParseLabel(b.Label)
		if na != nb {
			return na < nb
		}
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		return a.InstanceID < b.InstanceID
	})
}

// Event is one step of one host's pipeline.
type Event struct {
	At         time.Time
	Label      string
	Role       string
	InstanceID string
	Address    string
	Step       Step
	// Action is set on StepDone and StepFailed.
	Action Action
	// Err is set on StepFailed.
	Err error
	// Durations are set on StepDone for launched hosts.
	Durations Durations
}

// Progress observes the pipeline, one event per step of each host. It is
// called from many goroutines at once and must not block for long.
type Progress interface {
	Update(Event)
}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(Event)

// Update calls f.
func (f ProgressFunc) Update(e Event) { f(e) }
