package static

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tideops/tide/fleet"
)

// ErrStatic says static hosts are never launched or terminated by tide.
var ErrStatic = errors.New("static hosts are never launched or terminated by tide")

// Host is one existing machine.
type Host struct {
	Label   string
	Role    string
	Address string // host or host:port
}

// Provider lists a fixed set of hosts as running instances of one fleet.
type Provider struct {
	fleet string
	insts []fleet.Instance
}

// New returns a provider of the fleet's hosts. Each instance's id is
// "static:" followed by its label, so it stays the same across runs.
func New(fleetName string, hosts []Host) (*Provider, error) {
	p := &Provider{fleet: fleetName}
	seen := map[string]bool{}
	for _, h := range hosts {
		role, _, ok := fleet.ParseLabel(h.Label)
		switch {
		case !ok:
			return nil, fmt.Errorf("static host %q: label is not ROLE-N", h.Label)
		case h.Role != "" && h.Role != role:
			return nil, fmt.Errorf("static host %q: label does not match role %q", h.Label, h.Role)
		case h.Address == "":
			return nil, fmt.Errorf("static host %q: no address", h.Label)
		case seen[h.Label]:
			return nil, fmt.Errorf("static host %q listed twice", h.Label)
		}
		seen[h.Label] = true
		p.insts = append(p.insts, fleet.Instance{
			ID: "static:" + h.Label, Label: h.Label, Role: role, Fleet: fleetName,
			Address: h.Address, State: fleet.StateRunning,
			Tags: map[string]string{fleet.TagFleet: fleetName, fleet.TagRole: role, fleet.TagLabel: h.Label},
		})
	}
	sort.Slice(p.insts, func(i, j int) bool { return p.insts[i].ID < p.insts[j].ID })
	return p, nil
}

// List returns the hosts as running instances when fleetName is the
// provider's fleet (or empty), and nothing otherwise.
func (p *Provider) List(ctx context.Context, fleetName string) ([]fleet.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fleetName != "" && fleetName != p.fleet {
		return nil, nil
	}
	out := make([]fleet.Instance, len(p.insts))
	for i, in := range p.insts {
		tags := make(map[string]string, len(in.Tags))
		for k, v := range in.Tags {
			tags[k] = v
		}
		in.Tags = tags
		out[i] = in
	}
	return out, nil
}

// Launch fails with ErrStatic.
func (p *Provider) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	return fleet.Instance{}, fmt.Errorf("launching %s: %w", spec.Label, ErrStatic)
}

// Terminate fails with ErrStatic.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	return fmt.Errorf("terminating %s: %w", id, ErrStatic)
}
