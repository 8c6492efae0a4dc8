package deployer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

// benchFleet builds 10,000 instances across 1,000 labels (10 roles of 100
// labels, 10 instances a label: one kept, the rest duplicates), 90% of
// them in the label cache, 5% of those at a changed address, 5% untagged.
func benchFleet() ([]Role, map[string]int, []fleet.Instance, *cacheFile) {
	var roles []Role
	desired := map[string]int{}
	var insts []fleet.Instance
	c := newCacheFile("bench")
	id := 0
	for r := range 10 {
		name := fmt.Sprintf("role%d", r)
		roles = append(roles, Role{Name: name, Type: "m5.large", Zones: []string{"a", "b", "c"}})
		desired[name] = 80 // labels 81..100 are above the count
		for n := 1; n <= 100; n++ {
			label := fleet.Label(name, n)
			for range 10 {
				id++
				in := fleet.Instance{
					ID: fmt.Sprintf("i-%08x", id), Label: label, Role: name, Fleet: "bench", State: fleet.StateRunning,
					Address: fmt.Sprintf("10.%d.%d.%d", id>>16, (id>>8)&255, id&255), Zone: "a",
					LaunchedAt: t0.Add(time.Duration(id) * time.Second),
					Tags:       map[string]string{fleet.TagFleet: "bench", fleet.TagRole: name, fleet.TagLabel: label},
				}
				switch {
				case id%20 == 0:
					in.Label = ""
					delete(in.Tags, fleet.TagLabel)
				case id%10 != 0:
					addr := in.Address
					if id%20 == 1 {
						addr = "10.255.255.255"
					}
					c.Hosts[in.ID] = cacheEntry{ID: in.ID, Address: addr, Label: label, Role: name}
				}
				insts = append(insts, in)
			}
		}
	}
	// Entries of 1,000 instances that are gone.
	for i := range 1000 {
		gone := fmt.Sprintf("i-gone%04d", i)
		c.Hosts[gone] = cacheEntry{ID: gone, Address: "10.254.0.1", Label: "role0-1"}
	}
	return roles, desired, insts, c
}

// BenchmarkReconcilePlan10000 is the pure part of a reconcile over a big
// fleet: cross-referencing the cloud's list with the label cache, then
// planning launches, keeps and removals.
func BenchmarkReconcilePlan10000(b *testing.B) {
	roles, desired, insts, c := benchFleet()
	b.ReportAllocs()
	var p Plan
	cpu0 := cpuTime(b)
	for b.Loop() {
		hosts, _, _ := c.resolve(insts)
		p = MakePlan(roles, desired, hosts, PlanOptions{})
	}
	// CPU of the whole process (GC included) per reconcile: on a shared
	// machine ns/op is wall time and overstates it.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	if len(p.Keep) != 800 || len(p.Launch) != 0 {
		b.Fatalf("plan keeps %d and launches %d, want 800 and 0", len(p.Keep), len(p.Launch))
	}
	b.ReportMetric(float64(len(p.Remove)), "removals")
}

// cpuTime is the user and system CPU this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoadCache10000 reads the label cache of a 10,000-host fleet, as
// every reconcile does first: as this package writes it, and as
// encoding/json wrote it before.
func BenchmarkLoadCache10000(b *testing.B) {
	c := newCacheFile("bench")
	for i := range 10000 {
		id := fmt.Sprintf("i-%017x", i)
		c.Hosts[id] = cacheEntry{ID: id, Address: fmt.Sprintf("10.0.%d.%d", i>>8, i&255),
			Label: fleet.Label(fmt.Sprintf("role%d", i%10), i/10+1), Role: fmt.Sprintf("role%d", i%10),
			At: t0.Add(time.Duration(i) * time.Second)}
	}
	written, err := encodeCacheFile(c, nil)
	if err != nil {
		b.Fatal(err)
	}
	compact, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{{"written", written}, {"encoding-json", compact}} {
		b.Run(tt.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "labels.json")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				lc, err := loadCache(path, "bench")
				if err != nil || len(lc.f.Hosts) != 10000 {
					b.Fatalf("loadCache: %d hosts, %v", len(lc.f.Hosts), err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
