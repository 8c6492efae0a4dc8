package deployer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tideops/tide/fleet"
)

// ReplaceOptions say how Replace treats a host whose Drainer fails.
type ReplaceOptions struct {
	// DiscardData terminates a host whose Drainer fails (a stateful host
	// that cannot be reached, or whose backup cannot be made or verified)
	// instead of keeping it, and launches its label again: what the host
	// holds that no verified backup has is lost. Its result carries
	// ReasonDataDiscarded and the Drainer's error (DrainErr). Without it
	// such a host is kept, its label is not launched again, and its
	// result is failed with the Drainer's error.
	DiscardData bool
}

// Replace gives each label a new host, under the lock Reconcile takes:
// the label's hosts, stopped ones too, are removed through the Drainer
// and terminated, then the label is launched again through the launch
// pipeline (the Deployer restores a stateful role's new host from its
// latest verified backup). Replace does not scale: it launches the labels
// it removed whatever the desired counts, and touches no other host.
//
// Roles are worked on in parallel, a role's labels one at a time, lowest
// first, until the first failure; the role's later labels are then not
// started (ErrSkipped), so that replacing several hosts of a role never
// has more than one of them away. A host kept because its Drainer failed
// is converged again when it was reached: the Drainer may have stopped
// its processes.
//
// Before any host is touched every label must be held by a host of the
// fleet (an error wrapping ErrUnknownLabel names the fleet's labels) and
// be role-N of one of the fleet's roles that is not Fixed (ErrFixedRole).
// As with Reconcile, host failures are in the report; the returned error
// is for the whole replace.
func (f *Fleet) Replace(ctx context.Context, labels []string, o ReplaceOptions) (Report, error) {
	if len(labels) == 0 {
		return Report{Started: f.clk.Now()}, errors.New("replacing: no label given")
	}
	return f.run(ctx, nil, "replace done", func(x *pass, hosts []Observed) ([]HostResult, error) {
		reps, err := f.replacements(labels, hosts)
		if err != nil {
			return nil, err
		}
		return x.replace(ctx, reps, o), nil
	})
}

// replacement is one label to replace and the hosts that hold it.
type replacement struct {
	role, label string
	n           int
	// hosts are the label's hosts, those not running first: they are
	// the likeliest to fail to drain, and a failure stops the label
	// before the others are touched.
	hosts []Observed
}

// replacements checks labels against the fleet's hosts and returns them
// by role, then number.
func (f *Fleet) replacements(labels []string, hosts []Observed) ([]replacement, error) {
	held := map[string][]Observed{}
	for _, h := range hosts {
		if h.Label != "" {
			held[h.Label] = append(held[h.Label], h)
		}
	}
	var unknown []string
	for _, l := range labels {
		if _, ok := held[l]; !ok && !slices.Contains(unknown, l) {
			unknown = append(unknown, l)
		}
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(held))
		for l := range held {
			known = append(known, l)
		}
		slices.SortFunc(known, compareLabels)
		list := strings.Join(known, ", ")
		if list == "" {
			list = "none: the fleet has no host"
		}
		return nil, fmt.Errorf("replacing %s: %w; the fleet's labels: %s", strings.Join(unknown, ", "), ErrUnknownLabel, list)
	}
	var reps []replacement
	for _, l := range labels {
		if slices.ContainsFunc(reps, func(r replacement) bool { return r.label == l }) {
			continue
		}
		role, n, ok := fleet.ParseLabel(l)
		if !ok {
			return nil, fmt.Errorf("replacing %s: not a label tide gives (role-N): it would not launch it again", l)
		}
		r, ok := f.roles[role]
		switch {
		case !ok:
			return nil, fmt.Errorf("replacing %s: role %s is not one of the fleet's roles: it would not launch it again", l, role)
		case r.Fixed:
			return nil, fmt.Errorf("replacing %s: %w", l, ErrFixedRole)
		}
		hs := slices.Clone(held[l])
		slices.SortStableFunc(hs, func(a, b Observed) int {
			if la, lb := a.Instance.State.Live(), b.Instance.State.Live(); la != lb {
				if lb {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.Instance.ID, b.Instance.ID)
		})
		reps = append(reps, replacement{role: role, label: l, n: n, hosts: hs})
	}
	slices.SortFunc(reps, func(a, b replacement) int { return compareLabels(a.label, b.label) })
	return reps, nil
}

// compareLabels orders labels by role, then number.
func compareLabels(a, b string) int {
	ra, na, _ := fleet.ParseLabel(a)
	rb, nb, _ := fleet.ParseLabel(b)
	if c := cmp.Compare(ra, rb); c != 0 {
		return c
	}
	if c := cmp.Compare(na, nb); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// replace carries replacements out: roles in parallel, each role's labels
// in turn until one fails.
func (x *pass) replace(ctx context.Context, reps []replacement, o ReplaceOptions) []HostResult {
	pl := newPool(x.f.o.Concurrency, 2*len(reps))
	for i := 0; i < len(reps); {
		j := i + 1
		for j < len(reps) && reps[j].role == reps[i].role {
			j++
		}
		role := reps[i:j]
		i = j
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			for k, rp := range role {
				if !x.replaceLabel(ctx, pl, rp, o) {
					for _, rest := range role[k+1:] {
						x.skip(pl, rest.hosts)
					}
					return
				}
			}
		}()
	}
	return pl.wait()
}

// replaceLabel removes a label's hosts, then launches it again, and
// reports whether both went well.
func (x *pass) replaceLabel(ctx context.Context, pl *pool, rp replacement, o ReplaceOptions) bool {
	for i, h := range rp.hosts {
		r := resultFor(h, ActionRemoved)
		r.Reason = ReasonReplaced
		if err := pl.acquire(ctx, x.stop); err != nil {
			pl.add(x.done(&r, err))
			x.skip(pl, rp.hosts[i+1:])
			return false
		}
		// A stopped host of a stateful role is started first, so that its
		// data (newer than its last backup) is backed up; unless the
		// operator discards it anyway.
		err := x.remove(ctx, &r, h.Instance, removeOpts{discardData: o.DiscardData, resume: true, startStopped: !o.DiscardData})
		pl.release()
		pl.add(x.done(&r, err))
		if err != nil {
			x.skip(pl, rp.hosts[i+1:])
			return false
		}
	}
	zone := x.f.roles[rp.role].ZoneFor(rp.n)
	r := HostResult{Label: rp.label, Role: rp.role, Zone: zone, Action: ActionLaunched}
	if err := pl.acquire(ctx, x.stop); err != nil {
		pl.add(x.done(&r, err))
		return false
	}
	err := x.launch(ctx, &r, Slot{Role: rp.role, Label: rp.label, N: rp.n, Zone: zone})
	pl.release()
	pl.add(x.done(&r, err))
	return err == nil
}

// skip reports hosts whose replacement was not started.
func (x *pass) skip(pl *pool, hosts []Observed) {
	for _, h := range hosts {
		r := resultFor(h, ActionRemoved)
		r.Reason = ReasonReplaced
		pl.add(x.done(&r, ErrSkipped))
	}
}
