package deployer

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

// makePlanReference is MakePlan as first written, with a map and a slice
// per label: MakePlan must plan exactly as it does.
//
// It decides, without I/O, what to do with hosts so that each role
// in desired has exactly the labels role-1..role-N, one live host each.
// Roles missing from desired, and Fixed roles, are left as they are. Among
// several hosts holding one label the oldest running one is kept.
func makePlanReference(roles []Role, desired map[string]int, hosts []Observed) Plan {
	byName := make(map[string]Role, len(roles))
	for _, r := range roles {
		byName[r.Name] = r
	}
	// Group hosts per role, then per label number, by index into hosts.
	type group struct {
		byN   map[int][]int
		stray []int // label does not parse as role-n
	}
	groups := map[string]*group{}
	get := func(role string) *group {
		g := groups[role]
		if g == nil {
			g = &group{byN: map[int][]int{}}
			groups[role] = g
		}
		return g
	}
	for i, h := range hosts {
		role, n, ok := fleet.ParseLabel(h.Label)
		if !ok {
			g := get(h.Instance.Role)
			g.stray = append(g.stray, i)
			continue
		}
		g := get(role)
		g.byN[n] = append(g.byN[n], i)
	}

	var p Plan
	names := make([]string, 0, len(groups)+len(desired))
	for name := range groups {
		names = append(names, name)
	}
	for name := range desired {
		if groups[name] == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)

	for _, name := range names {
		g := get(name)
		want, managed := desired[name]
		role := byName[name]
		ns := slices.Sorted(maps.Keys(g.byN))
		if !managed || role.Fixed {
			for _, n := range ns {
				for _, i := range g.byN[n] {
					p.Keep = append(p.Keep, hosts[i])
				}
			}
			for _, i := range g.stray {
				p.Keep = append(p.Keep, hosts[i])
			}
			continue
		}
		for n := 1; n <= want; n++ {
			idx := g.byN[n]
			if len(idx) == 0 {
				p.Launch = append(p.Launch, Slot{Role: name, Label: fleet.Label(name, n), N: n, Zone: role.ZoneFor(n)})
				continue
			}
			p.Keep = append(p.Keep, hosts[pickOldest(hosts, idx)])
		}
		// Removals, highest label first: above the count every host goes,
		// within it the duplicates, newest first.
		for k := len(ns) - 1; k >= 0; k-- {
			n := ns[k]
			idx := g.byN[n]
			keep, reason, holder := -1, ReasonAboveCount, ""
			if n <= want {
				keep, reason = pickOldest(hosts, idx), ReasonDuplicate
				holder = hosts[keep].Instance.ID // every host here is live
			}
			sortNewestFirstReference(hosts, idx)
			for _, i := range idx {
				if i != keep {
					p.Remove = append(p.Remove, Removal{Observed: hosts[i], Reason: reason, Holder: holder})
				}
			}
		}
		// Hosts of a managed role whose label is not role-n are kept: tide
		// did not name them and will not guess.
		for _, i := range g.stray {
			p.Keep = append(p.Keep, hosts[i])
		}
	}
	return p
}

// sortNewestFirstReference is sortNewestFirst as first written.
func sortNewestFirstReference(hosts []Observed, idx []int) {
	if len(idx) > 1 {
		sort.Slice(idx, func(a, b int) bool { return better(hosts[idx[b]].Instance, hosts[idx[a]].Instance) })
	}
}

// TestMakePlanAgreesWithReference plans random fleets (duplicates, gaps,
// strays, unmanaged and fixed roles, hosts in any order) both ways.
func TestMakePlanAgreesWithReference(t *testing.T) {
	roles := []Role{
		{Name: "web", Zones: []string{"a", "b", "c"}},
		{Name: "db", Zones: []string{"a"}},
		{Name: "static", Fixed: true},
	}
	names := []string{"web", "db", "static", "batch", ""}
	states := []fleet.State{fleet.StateRunning, fleet.StatePending}
	seen := map[string]int{} // what the plans held, so the test is no vacuous pass
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		desired := map[string]int{}
		for _, n := range names[:4] {
			if rng.IntN(4) > 0 {
				desired[n] = rng.IntN(8)
			}
		}
		var hosts []Observed
		for i := range rng.IntN(40) {
			role := names[rng.IntN(len(names))]
			label := fleet.Label(role, 1+rng.IntN(10))
			switch rng.IntN(10) {
			case 0:
				label = role + "-x"
			case 1:
				label = ""
			}
			hosts = append(hosts, Observed{Label: label, Confirmed: rng.IntN(2) == 0, Instance: fleet.Instance{
				ID: fmt.Sprintf("i-%d", i), Role: role, State: states[rng.IntN(2)],
				LaunchedAt: t0.Add(time.Duration(rng.IntN(5)) * time.Minute), Address: fmt.Sprint(i)}})
		}
		got := MakePlan(roles, desired, slices.Clone(hosts), PlanOptions{})
		want := makePlanReference(roles, desired, slices.Clone(hosts))
		if len(got.Keep) == 0 {
			got.Keep = nil
		}
		seen["launch"] += len(got.Launch)
		seen["keep"] += len(got.Keep)
		for _, r := range got.Remove {
			seen[r.Reason]++
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: desired %v, hosts %+v:\nplan %+v\nwant %+v", seed, desired, hosts, got, want)
		}
	}
	for _, k := range []string{"launch", "keep", ReasonDuplicate, ReasonAboveCount} {
		if seen[k] < 50 {
			t.Errorf("the random plans held %d of %s, too few to compare: %v", seen[k], k, seen)
		}
	}
}
