package converge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
)

// Connector connects to a host that is up (deployer.Fleet.Connect).
type Connector interface {
	Connect(ctx context.Context, inst fleet.Instance) (deployer.Host, error)
}

// Outcomes of a host in a rollout.
const (
	RolloutDeployed  = "deployed"
	RolloutFailed    = "failed"
	RolloutUntouched = "untouched"
)

// RolloutResult is what a rollout did to one host.
type RolloutResult struct {
	Label      string `json:"label"`
	Role       string `json:"role"`
	InstanceID string `json:"instance_id"`
	Status     string `json:"status"`
	Err        error  `json:"-"`
	Error      string `json:"error,omitempty"`
}

// ErrRolloutStopped says a rollout stopped at a failed host; the hosts
// after it were left untouched.
var ErrRolloutStopped = errors.New("rollout stopped at the first failure")

// Rollout converges hosts role by role, in the schedule's order of roles
// and by label number within a role, at most batch hosts of a role at a
// time. It stops at the first batch with a failure: the hosts not yet
// reached are left untouched and reported so. Hosts of roles running none
// of apps are skipped. Before it changes any host it checks that each
// release can be made where it is missing (the artifact exists and holds
// the revision): when not, every host is untouched and the error wraps
// ErrRolloutRefused.
func (c *Converger) Rollout(ctx context.Context, conn Connector, hosts []fleet.Instance, apps []string, batch int) ([]RolloutResult, error) {
	batch = max(batch, 1)
	byRole := map[string][]fleet.Instance{}
	for _, in := range hosts {
		role := roleOfInstance(in)
		if slices.ContainsFunc(c.appsOf(role), func(a *app) bool { return len(apps) == 0 || slices.Contains(apps, a.Name) }) {
			byRole[role] = append(byRole[role], in)
		}
	}
	var order [][]fleet.Instance
	for _, r := range c.s.Roles {
		hs := byRole[r.Name]
		sort.Slice(hs, func(i, j int) bool {
			_, a, _ := fleet.ParseLabel(labelOf(hs[i]))
			_, b, _ := fleet.ParseLabel(labelOf(hs[j]))
			return a < b
		})
		for i := 0; i < len(hs); i += batch {
			order = append(order, hs[i:min(i+batch, len(hs))])
		}
	}
	var out []RolloutResult
	if err := c.preflight(ctx, conn, order, apps); err != nil {
		for _, group := range order {
			for _, in := range group {
				out = append(out, RolloutResult{Label: labelOf(in), Role: roleOfInstance(in), InstanceID: in.ID, Status: RolloutUntouched})
			}
		}
		return out, err
	}
	var failed error
	for _, group := range order {
		if failed != nil {
			for _, in := range group {
				out = append(out, RolloutResult{Label: labelOf(in), Role: roleOfInstance(in), InstanceID: in.ID, Status: RolloutUntouched})
			}
			continue
		}
		res := make([]RolloutResult, len(group))
		var wg sync.WaitGroup
		for i, in := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := RolloutResult{Label: labelOf(in), Role: roleOfInstance(in), InstanceID: in.ID, Status: RolloutDeployed}
				if err := c.rolloutOne(ctx, conn, in, r.Role); err != nil {
					r.Status, r.Err, r.Error = RolloutFailed, err, err.Error()
				}
				res[i] = r
			}()
		}
		wg.Wait()
		for _, r := range res {
			if r.Err != nil && failed == nil {
				failed = fmt.Errorf("%w: %s: %w", ErrRolloutStopped, r.Label, r.Err)
			}
		}
		out = append(out, res...)
	}
	return out, failed
}

func (c *Converger) rolloutOne(ctx context.Context, conn Connector, in fleet.Instance, role string) error {
	h, err := conn.Connect(ctx, in)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer h.Close()
	t := c.target(ctx, h, in, role)
	_, err = c.converge(ctx, t)
	return err
}

func labelOf(in fleet.Instance) string {
	if in.Label != "" {
		return in.Label
	}
	return in.Tags[fleet.TagLabel]
}

func roleOfInstance(in fleet.Instance) string {
	if in.Role != "" {
		return in.Role
	}
	role, _, _ := fleet.ParseLabel(labelOf(in))
	return role
}
