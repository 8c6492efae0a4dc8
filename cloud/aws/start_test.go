package aws_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tideops/tide/cloud/aws"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/fleet"
)

// TestStart starts instances through the real SDK client against the EC2
// test server: a stopped instance runs again on its address; a running one
// is left alone; throttles are retried, and once the retries are spent are
// *fleet.ThrottledError; capacity, a terminated instance and an unknown id
// are typed errors, none retried.
func TestStart(t *testing.T) {
	tests := []struct {
		name      string
		running   bool   // leave the instance running
		terminate bool   // terminate it first
		unknown   bool   // start an id EC2 does not know
		fault     string // injected StartInstances failures
		faults    int
		wantErr   func(error) bool
		calls     int // StartInstances requests
		wantState fleet.State
	}{
		{name: "stopped", calls: 1, wantState: fleet.StateRunning},
		{name: "running", running: true, calls: 1, wantState: fleet.StateRunning},
		{name: "throttled, then through", fault: "RequestLimitExceeded", faults: 2, calls: 3, wantState: fleet.StateRunning},
		{name: "throttled throughout", fault: "RequestLimitExceeded", faults: 4, calls: 4, wantErr: fleet.IsThrottled,
			wantState: fleet.StateStopped},
		{name: "no capacity", fault: "InsufficientInstanceCapacity", faults: 1, calls: 1, wantErr: fleet.IsInsufficientCapacity,
			wantState: fleet.StateStopped},
		{name: "terminated", terminate: true, calls: 1,
			wantErr: func(err error) bool { return errors.Is(err, aws.ErrIncorrectState) }},
		{name: "unknown", unknown: true, calls: 1, wantErr: fleet.IsNotFound, wantState: fleet.StateStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := ec2test.NewMemoryBackend()
			p, srv := newProvider(t, ec2test.Options{Backend: b, PendingPolls: 1, TerminatedPolls: 5},
				func(o *aws.Options) { o.Retry.ThrottleAttempts = 4 })
			in, err := p.Launch(ctx, spec("db-1"))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.WaitRunning(ctx, []string{in.ID}, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			state := func() fleet.Instance {
				t.Helper()
				list, err := p.List(ctx, "office")
				if err != nil {
					t.Fatal(err)
				}
				got, _ := find(list, in.ID)
				return got
			}
			addr := state().Address
			if !tt.running {
				b.Crash(in.ID, "kernel panic\n")
				if got := state(); got.State != fleet.StateStopped || got.Address != "" {
					t.Fatalf("after the crash: %s at %q, want stopped without an address", got.State, got.Address)
				}
			}
			if tt.terminate {
				if err := p.Terminate(ctx, in.ID); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fault != "" {
				srv.FailNext("StartInstances", tt.fault, tt.faults)
			}
			id := in.ID
			if tt.unknown {
				id = "i-0fffffffffffffff0"
			}
			err = p.Start(ctx, id)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Start: %v", err)
			case tt.wantErr != nil && (err == nil || !tt.wantErr(err)):
				t.Fatalf("Start error = %v, not the wanted kind", err)
			}
			if got := srv.Calls("StartInstances"); got != tt.calls {
				t.Errorf("%d StartInstances calls, want %d", got, tt.calls)
			}
			switch tt.wantState {
			case fleet.StateRunning:
				if err := p.WaitRunning(ctx, []string{in.ID}, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				if got := state(); got.State != fleet.StateRunning || got.Address != addr {
					t.Errorf("after the start: %s at %q, want running at %s", got.State, got.Address, addr)
				}
			case fleet.StateStopped:
				if got := state(); got.State != fleet.StateStopped {
					t.Errorf("after the failed start: %s, want still stopped", got.State)
				}
			}
		})
	}
}
