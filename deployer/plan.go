package deployer

import (
	"cmp"
	"maps"
	"slices"
	"sort"

	"github.com/tideops/tide/fleet"
)

// Role is what the pipeline needs to know of a role.
type Role struct {
	Name  string
	Type  string
	Image string
	// Zones are given to labels round-robin: label n is in
	// Zones[(n-1) % len(Zones)], whichever host holds it.
	Zones []string
	// Fixed roles' hosts are never launched or terminated (static hosts):
	// planning keeps every host it finds.
	Fixed bool
	// Stateful roles' hosts hold data: a stopped one is never replaced by
	// a new host while the cloud cannot start it (the new host would get
	// the latest backup, older than what the stopped one holds), and one
	// to remove is started first so that the Drainer can back it up.
	Stateful bool
}

// ZoneFor returns the zone of the role's n-th label ("" without zones).
func (r Role) ZoneFor(n int) string {
	if len(r.Zones) == 0 || n <= 0 {
		return ""
	}
	return r.Zones[(n-1)%len(r.Zones)]
}

// Observed is one instance, live or stopped, and the label tide knows it
// by.
type Observed struct {
	Instance fleet.Instance
	Label    string
	// Confirmed is set when the label cache holds the instance at its
	// current address: its LABEL file was written or read.
	Confirmed bool
	// StartFailures counts the failed starts in a row of a stopped
	// instance (the label cache remembers them): a start that failed, or
	// whose host stopped or died again before it was labelled and
	// converged. A stateless role's stopped instance with any is not
	// started again but removed (ReasonStartFailed), its label launched
	// anew; a stateful role's is started again.
	StartFailures int
}

// Slot is a label without a host: one launch.
type Slot struct {
	Role  string
	Label string
	N     int
	Zone  string
}

// Removal is a host to remove and why.
type Removal struct {
	Observed
	// Reason is ReasonAboveCount, ReasonDuplicate, ReasonStartFailed or
	// ReasonDown.
	Reason string
	// Holder is, for a duplicate, the id of the live host that keeps the
	// label: that host holds the label's data, so the duplicate's must not
	// be backed up as the role's latest (DuplicateDrainer).
	Holder string
}

// Reasons for a removal.
const (
	ReasonAboveCount = "above-count"
	ReasonDuplicate  = "duplicate"
	ReasonDown       = "down"
	// ReasonStartFailed marks a stopped host of a stateless role whose
	// last start failed: it is terminated and its label launched anew.
	ReasonStartFailed = "start-failed"
	// ReasonAdopted marks a kept or launched host that an earlier run left
	// unlabelled (or whose address changed) and this one finished.
	ReasonAdopted = "adopted"
	// ReasonReplaced marks a failed host that was terminated because its
	// Deployer asked for it (ErrReplaceHost): the next reconcile launches
	// its label again. Replace's removals carry it too.
	ReasonReplaced = "replaced"
	// ReasonDataDiscarded marks a host Replace terminated although its
	// Drainer failed (DiscardData): its data was not backed up.
	ReasonDataDiscarded = "replaced-data-discarded"
)

// Plan is what a reconcile will do.
type Plan struct {
	// Launch holds the labels without a host to keep or start, by role
	// and number.
	Launch []Slot
	// Keep holds one live host per label within the count, and the live
	// hosts of roles the reconcile does not manage, by role and number.
	Keep []Observed
	// Start holds the stopped hosts to start again, one per label within
	// the count that has no live host (PlanOptions.CanStart).
	Start []Observed
	// Stuck holds the stopped hosts of stateful roles that hold a label
	// within the count that has no live host, when the cloud cannot start
	// them: they are reported failed (ErrStoppedWithData), and the label
	// is not launched anew, which would restore an older backup than the
	// data the stopped host holds.
	Stuck []Observed
	// Remove holds extra hosts, stopped ones too: per role, highest label
	// first, a label's duplicates after its kept host's removal.
	Remove []Removal
}

// PlanOptions say what the cloud can do, for MakePlan.
type PlanOptions struct {
	// CanStart says the cloud starts stopped instances (it is a Starter).
	CanStart bool
}

// MakePlan decides, without I/O, what to do with hosts so that each role
// in desired has exactly the labels role-1..role-N, one host each. Roles
// missing from desired, and Fixed roles, are left as they are. Among
// several hosts holding one label the oldest running one is kept, else the
// oldest pending one, else the oldest stopped one.
//
// hosts may hold stopped (and stopping) instances: one that holds a label
// within the count that has no live host is started (o.CanStart); if the
// cloud cannot start it, or a stateless role's host failed its last start
// (StartFailures), the label is launched anew and the stopped host
// removed, but for a Stateful role, whose stopped host is Stuck or started
// again. A duplicate removed beside a live holder names it (Holder). Other
// stopped hosts of managed roles are removed; those of unmanaged or Fixed
// roles, and those without a role-n label, are left alone.
func MakePlan(roles []Role, desired map[string]int, hosts []Observed, o PlanOptions) Plan {
	byName := make(map[string]Role, len(roles))
	for _, r := range roles {
		byName[r.Name] = r
	}
	// Place every host by role and label number (0 for a label that does
	// not parse as role-n), then sort each role's hosts by number and
	// position in hosts: a label's hosts are then one run, and one backing
	// array serves every role (a fleet of 10,000 hosts makes no map and no
	// slice per label).
	places := make([]place, len(hosts))
	count := make(map[string]int, len(desired)+len(roles))
	for i, h := range hosts {
		role, n, ok := fleet.ParseLabel(h.Label)
		if !ok {
			role, n = h.Instance.Role, 0
		}
		places[i] = place{role: role, n: n, i: i}
		count[role]++
	}
	names := make([]string, 0, len(count)+len(desired))
	for name := range count {
		names = append(names, name)
	}
	for name := range desired {
		if _, ok := count[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	start := make(map[string]int, len(count))
	off := 0
	for _, name := range names {
		start[name] = off
		off += count[name]
	}
	sorted := make([]place, len(places))
	next := maps.Clone(start)
	for _, pl := range places {
		sorted[next[pl.role]] = pl
		next[pl.role]++
	}
	// idx holds the hosts' indexes in sorted's order (once sorted): a
	// label's run of it is the group sortNewestFirst and pickOldest work on.
	idx := make([]int, len(sorted))
	// First each role's labels and what they will come to, so that the
	// plan's slices are made at their size.
	type run struct{ n, from, to int } // a label's hosts: [from, to) of idx
	type span struct {
		name       string
		lo, hi     int // the role's hosts in idx: the strays, then runs
		strays     int
		runs       []run
		want       int
		managed    bool
		role       Role
		launchFrom int
	}
	spans := make([]span, len(names))
	var nKeep, nRemove, nLaunch int
	for si, name := range names {
		lo, hi := start[name], start[name]+count[name]
		seg := sorted[lo:hi]
		slices.SortFunc(seg, func(a, b place) int {
			if a.n != b.n {
				return cmp.Compare(a.n, b.n)
			}
			return cmp.Compare(a.i, b.i)
		})
		sp := span{name: name, lo: lo, hi: hi, role: byName[name]}
		for k, pl := range seg {
			idx[lo+k] = pl.i
			if pl.n == 0 {
				sp.strays++
			}
		}
		for k := sp.strays; k < len(seg); {
			e := k + 1
			for e < len(seg) && seg[e].n == seg[k].n {
				e++
			}
			sp.runs = append(sp.runs, run{seg[k].n, lo + k, lo + e})
			k = e
		}
		sp.want, sp.managed = desired[name]
		if !sp.managed || sp.role.Fixed {
			sp.managed = false
			nKeep += len(seg)
		} else {
			nKeep += sp.strays
			within := 0
			for _, r := range sp.runs {
				if r.n <= sp.want {
					within++
					nRemove += r.to - r.from - 1
				} else {
					nRemove += r.to - r.from
				}
			}
			nKeep += within
			nLaunch += sp.want - within
		}
		spans[si] = sp
	}

	p := Plan{Keep: make([]Observed, 0, nKeep)}
	if nLaunch > 0 {
		p.Launch = make([]Slot, 0, nLaunch)
	}
	if nRemove > 0 {
		p.Remove = make([]Removal, 0, nRemove)
	}
	for _, sp := range spans {
		group := func(r run) []int { return idx[r.from:r.to] }
		strays, labelled := idx[sp.lo:sp.lo+sp.strays], idx[sp.lo+sp.strays:sp.hi]
		// Stopped hosts that are not role-n of a managed role are none of
		// the reconcile's business: they are left alone.
		if !sp.managed {
			p.Keep = appendLive(p.Keep, hosts, labelled)
			p.Keep = appendLive(p.Keep, hosts, strays)
			continue
		}
		name, want, runs := sp.name, sp.want, sp.runs
		replaceable := func(h Observed) bool {
			return !sp.role.Stateful && (!o.CanStart || h.StartFailures > 0)
		}
		r := 0
		for n := 1; n <= want; n++ {
			for r < len(runs) && runs[r].n < n {
				r++
			}
			i := -1
			if r < len(runs) && runs[r].n == n {
				i = holder(hosts, group(runs[r]), replaceable)
			}
			switch {
			case i < 0:
				p.Launch = append(p.Launch, Slot{Role: name, Label: fleet.Label(name, n), N: n, Zone: sp.role.ZoneFor(n)})
			case hosts[i].Instance.State.Live():
				p.Keep = append(p.Keep, hosts[i])
			case o.CanStart:
				p.Start = append(p.Start, hosts[i])
			default:
				p.Stuck = append(p.Stuck, hosts[i])
			}
		}
		// Removals, highest label first: above the count every host goes,
		// within it the duplicates, newest first.
		for k := len(runs) - 1; k >= 0; k-- {
			n, g := runs[k].n, group(runs[k])
			keep, reason := -1, ReasonAboveCount
			if n <= want {
				keep, reason = holder(hosts, g, replaceable), ReasonDuplicate
				if len(g) == 1 && keep >= 0 {
					continue // the label's only host, kept
				}
			}
			holderID := ""
			if keep >= 0 && hosts[keep].Instance.State.Live() {
				holderID = hosts[keep].Instance.ID
			}
			sortNewestFirst(hosts, g)
			for _, i := range g {
				if i == keep {
					continue
				}
				rm := Removal{Observed: hosts[i], Reason: reason, Holder: holderID}
				if n <= want && keep < 0 && hosts[i].StartFailures > 0 && !hosts[i].Instance.State.Live() {
					rm.Reason = ReasonStartFailed
				}
				p.Remove = append(p.Remove, rm)
			}
		}
		// Hosts of a managed role whose label is not role-n are kept: tide
		// did not name them and will not guess.
		p.Keep = appendLive(p.Keep, hosts, strays)
	}
	return p
}

// holder returns, among idx (one label's hosts, within the count), the
// host that holds the label: kept, started or stuck; -1 when none is live
// and replaceable says the stopped one is replaced (the label launched
// anew).
func holder(hosts []Observed, idx []int, replaceable func(Observed) bool) int {
	i := pickOldest(hosts, idx)
	if !hosts[i].Instance.State.Live() && replaceable(hosts[i]) {
		return -1
	}
	return i
}

// appendLive appends to keep the live hosts among idx.
func appendLive(keep, hosts []Observed, idx []int) []Observed {
	for _, i := range idx {
		if hosts[i].Instance.State.Live() {
			keep = append(keep, hosts[i])
		}
	}
	return keep
}

// place is a host's role and label number (0: not role-n), and its index.
type place struct {
	role string
	n, i int
}

// PlanDown removes every host of the fleet but those of Fixed roles,
// highest label first within each role.
func PlanDown(roles []Role, hosts []Observed) Plan {
	desired := map[string]int{}
	for _, h := range hosts {
		role, _, ok := fleet.ParseLabel(h.Label)
		if !ok {
			role = h.Instance.Role
		}
		desired[role] = 0
	}
	p := MakePlan(roles, desired, hosts, PlanOptions{})
	for i := range p.Remove {
		p.Remove[i].Reason = ReasonDown
	}
	return p
}

// better reports whether a should be kept over b: running before pending
// before any other state (stopped), then oldest, then lowest id.
func better(a, b fleet.Instance) bool {
	if ra, rb := stateRank(a.State), stateRank(b.State); ra != rb {
		return ra > rb
	}
	if !a.LaunchedAt.Equal(b.LaunchedAt) {
		return a.LaunchedAt.Before(b.LaunchedAt)
	}
	return a.ID < b.ID
}

// stateRank orders states for better: running, pending, then the rest.
func stateRank(s fleet.State) int {
	switch s {
	case fleet.StateRunning:
		return 2
	case fleet.StatePending:
		return 1
	}
	return 0
}

// pickOldest returns the index, among idx, of the host to keep.
func pickOldest(hosts []Observed, idx []int) int {
	best := idx[0]
	for _, i := range idx[1:] {
		if better(hosts[i].Instance, hosts[best].Instance) {
			best = i
		}
	}
	return best
}

// sortNewestFirst orders idx so that the host to keep comes last; hosts
// neither is better than the other (one instance listed twice) keep their
// order.
func sortNewestFirst(hosts []Observed, idx []int) {
	if len(idx) > 1 {
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case better(hosts[b].Instance, hosts[a].Instance):
				return -1
			case better(hosts[a].Instance, hosts[b].Instance):
				return 1
			}
			return 0
		})
	}
}
