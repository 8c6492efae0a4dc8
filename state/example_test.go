package state_test

import (
	"fmt"
	"os"
	"time"

	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/state"
)

// Example shows what the service does with the store when it starts again
// after a crash: restore each role's count and feed the predictor its
// history.
func Example() {
	dir, _ := os.MkdirTemp("", "tide-state")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	// Before the crash.
	s, _ := state.Open(dir, state.Options{})
	s.PutDesired("web", 4, now)
	s.AppendSamples("web", []scheduler.Sample{{At: now, Value: 150}})
	s.Close()

	// After the restart.
	s, err := state.Open(dir, state.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	role := scheduler.NewRole(scheduler.Params{Role: "web", Min: 1, Max: 10}, nil, nil)
	desired, _ := s.Desired()
	role.Restore(desired["web"].Count, desired["web"].At)
	history, _ := s.Samples("web", now.Add(-10*7*24*time.Hour))
	for _, smp := range history {
		role.Observe(smp)
	}
	fmt.Println("web restored at", role.Desired(), "hosts")
	// Output:
	// web restored at 4 hosts
}
