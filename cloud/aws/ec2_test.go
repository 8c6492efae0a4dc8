package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tideops/tide/cloud/aws"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/fleet"
)

// noBackoff retries at once, so that injected throttles cost no time.
var noBackoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })

// isolateSDK keeps the SDK away from the machine's AWS configuration and
// from instance metadata.
func isolateSDK(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_EC2", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
}

// The credentials test servers accept and providers sign with.
const (
	testAccessKey = "AKIDTEST"
	testSecret    = "secret"
)

// newProvider starts an EC2 test server and returns a Provider talking to
// it through the real SDK client.
func newProvider(t testing.TB, so ec2test.Options, mod func(*aws.Options)) (*aws.Provider, *ec2test.TestServer) {
	t.Helper()
	isolateSDK(t)
	if so.Credentials == nil {
		so.Credentials = map[string]string{testAccessKey: testSecret}
	}
	srv := ec2test.NewTestServer(t, so)
	opts := aws.Options{
		Region:       "us-east-1",
		Endpoint:     srv.URL,
		HTTPClient:   &http.Client{Transport: aws.BufferedBodies{Next: http.DefaultTransport.(*http.Transport).Clone()}},
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""),
		WaitMinDelay: time.Millisecond,
		WaitMaxDelay: 5 * time.Millisecond,
		Retry:        aws.RetryOptions{Mode: sdkaws.RetryModeStandard, Backoff: noBackoff},
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := aws.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("aws.New: %v", err)
	}
	return p, srv
}

func spec(label string) fleet.LaunchSpec {
	role, _, _ := fleet.ParseLabel(label)
	return fleet.LaunchSpec{
		ClientToken: "tok-" + label,
		Fleet:       "office",
		Role:        role,
		Label:       label,
		Type:        "t3.micro",
		Zone:        "us-east-1b",
		Image:       "ami-0123456789abcdef0",
		Tags:        map[string]string{"team": "ops"},
	}
}

func find(list []fleet.Instance, id string) (fleet.Instance, bool) {
	for _, in := range list {
		if in.ID == id {
			return in, true
		}
	}
	return fleet.Instance{}, false
}

func TestLaunchPendingThenRunningWithLateAddress(t *testing.T) {
	ctx := context.Background()
	p, srv := newProvider(t, ec2test.Options{PendingPolls: 2, NotFoundPolls: 1, TerminatedPolls: 2}, nil)

	in, err := p.Launch(ctx, spec("web-3"))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if in.State != fleet.StatePending || in.Address != "" {
		t.Fatalf("launched instance: state %q address %q, want pending without address", in.State, in.Address)
	}
	wantTags := map[string]string{fleet.TagFleet: "office", fleet.TagRole: "web", fleet.TagLabel: "web-3", "team": "ops"}
	if fmt.Sprint(in.Tags) != fmt.Sprint(wantTags) {
		t.Errorf("tags from launch = %v, want %v", in.Tags, wantTags)
	}
	if in.Label != "web-3" || in.Role != "web" || in.Fleet != "office" || in.Zone != "us-east-1b" || in.Type != "t3.micro" {
		t.Errorf("launched instance = %+v", in)
	}
	if in.LaunchedAt.IsZero() {
		t.Errorf("launch time missing")
	}

	// Listed right after the launch (by filter, so no NotFound), pending
	// and without an address for PendingPolls lists, then running with one.
	wantStates := []fleet.State{fleet.StatePending, fleet.StatePending, fleet.StateRunning}
	for i, want := range wantStates {
		list, err := p.List(ctx, "office")
		if err != nil {
			t.Fatalf("List %d: %v", i, err)
		}
		got, ok := find(list, in.ID)
		if !ok || len(list) != 1 {
			t.Fatalf("List %d = %+v, want just %s", i, list, in.ID)
		}
		if got.State != want {
			t.Fatalf("List %d: state %q, want %q", i, got.State, want)
		}
		if (got.Address != "") != (want == fleet.StateRunning) {
			t.Fatalf("List %d: address %q in state %q", i, got.Address, got.State)
		}
		if want == fleet.StateRunning && !strings.HasPrefix(got.Address, "10.0.") {
			t.Errorf("address %q, want a 10.0.x.y address", got.Address)
		}
		if got.Label != "web-3" || got.Tags["team"] != "ops" {
			t.Errorf("listed instance lost its tags: %+v", got)
		}
	}
	if n := len(srv.Instances()); n != 1 {
		t.Errorf("server has %d instances, want 1", n)
	}
}

func TestListOtherFleetsAndTerminatedExcluded(t *testing.T) {
	ctx := context.Background()
	p, srv := newProvider(t, ec2test.Options{TerminatedPolls: 3}, nil)
	a, err := p.Launch(ctx, spec("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Launch(ctx, spec("web-2"))
	if err != nil {
		t.Fatal(err)
	}
	other := spec("web-1")
	other.Fleet, other.ClientToken = "elsewhere", "tok-other"
	if _, err := p.Launch(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(ctx, b.ID); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	// The first list still shows b shutting down; after that it is
	// terminated and filtered out, though EC2 still shows it.
	var list []fleet.Instance
	for i := range 2 {
		if list, err = p.List(ctx, "office"); err != nil {
			t.Fatalf("List %d: %v", i, err)
		}
	}
	if len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("List = %+v, want only %s", list, a.ID)
	}
	var sawTerminated bool
	for _, in := range srv.Instances() {
		sawTerminated = sawTerminated || (in.ID == b.ID && in.State == fleet.StateTerminated)
	}
	if !sawTerminated {
		t.Errorf("server no longer shows %s as terminated", b.ID)
	}
	// Terminating it again is not an error.
	if err := p.Terminate(ctx, b.ID); err != nil {
		t.Errorf("second Terminate: %v", err)
	}
}

func TestListPagination(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int32 // provider's MaxResults
		serverCap int   // server's MaxPageSize
		wantCalls int
	}{
		{name: "max results 100", pageSize: 100, wantCalls: 3},
		{name: "server caps pages at 100", serverCap: 100, wantCalls: 3},
		{name: "one page of 1000", wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p, srv := newProvider(t, ec2test.Options{MaxPageSize: tt.serverCap},
				func(o *aws.Options) { o.PageSize = tt.pageSize })
			for i := 1; i <= 250; i++ {
				s := spec(fleet.Label("worker", i))
				if i%50 == 0 {
					s.Fleet = "other" // interleaved instances of another fleet
				}
				if _, err := srv.Add(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			list, err := p.List(ctx, "office")
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			seen := map[string]bool{}
			for _, in := range list {
				if seen[in.ID] {
					t.Errorf("%s listed twice", in.ID)
				}
				seen[in.ID] = true
				if in.Fleet != "office" {
					t.Errorf("%s of fleet %q listed", in.ID, in.Fleet)
				}
			}
			if len(list) != 245 {
				t.Errorf("List returned %d instances, want 245", len(list))
			}
			if got := srv.Calls("DescribeInstances"); got != tt.wantCalls {
				t.Errorf("DescribeInstances calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestLaunchIdempotent(t *testing.T) {
	ctx := context.Background()
	p, srv := newProvider(t, ec2test.Options{}, nil)
	first, err := p.Launch(ctx, spec("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	// A retry after a crash: same token, same parameters, the tags built
	// from a fresh map (so in another iteration order).
	s := spec("db-1")
	s.Tags = map[string]string{"team": "ops"}
	second, err := p.Launch(ctx, s)
	if err != nil {
		t.Fatalf("second Launch: %v", err)
	}
	if second.ID != first.ID {
		t.Errorf("retry launched %s, want %s again", second.ID, first.ID)
	}
	if n := len(srv.Instances()); n != 1 {
		t.Errorf("server has %d instances after a retried launch, want 1", n)
	}
	if got := srv.Calls("RunInstances"); got != 2 {
		t.Errorf("RunInstances calls = %d, want 2", got)
	}
}

func TestLaunchClientTokenReused(t *testing.T) {
	ctx := context.Background()
	p, srv := newProvider(t, ec2test.Options{}, nil)
	if _, err := p.Launch(ctx, spec("db-1")); err != nil {
		t.Fatal(err)
	}
	s := spec("db-1")
	s.Type = "m5.large"
	_, err := p.Launch(ctx, s)
	if !errors.Is(err, aws.ErrClientTokenReused) {
		t.Fatalf("Launch with a reused token = %v, want ErrClientTokenReused", err)
	}
	if fleet.IsThrottled(err) || fleet.IsInsufficientCapacity(err) {
		t.Errorf("reused token reported as %v", err)
	}
	if !strings.Contains(err.Error(), "IdempotentParameterMismatch") {
		t.Errorf("error %q does not name EC2's code", err)
	}
	if got := srv.Calls("RunInstances"); got != 2 {
		t.Errorf("RunInstances calls = %d, want 2 (a mismatch is not retried)", got)
	}
}

func TestLaunchRefusesMissingToken(t *testing.T) {
	p, srv := newProvider(t, ec2test.Options{}, nil)
	s := spec("db-1")
	s.ClientToken = ""
	if _, err := p.Launch(context.Background(), s); err == nil {
		t.Fatal("Launch without a client token succeeded")
	}
	if got := srv.Calls("RunInstances"); got != 0 {
		t.Errorf("RunInstances calls = %d, want 0", got)
	}
}

func TestLaunchErrors(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		n         int
		wantErr   func(error) bool // nil: success
		wantCalls int
	}{
		{name: "throttled once, retried", code: "RequestLimitExceeded", n: 1, wantCalls: 2},
		{name: "throttled beyond MaxAttempts but within ThrottleAttempts", code: "RequestLimitExceeded", n: 7, wantCalls: 8},
		{name: "throttled beyond retries", code: "RequestLimitExceeded", n: 100, wantErr: fleet.IsThrottled, wantCalls: 10},
		{name: "Throttling code", code: "Throttling", n: 100, wantErr: fleet.IsThrottled, wantCalls: 10},
		{name: "insufficient capacity, not retried", code: "InsufficientInstanceCapacity", n: 1, wantErr: fleet.IsInsufficientCapacity, wantCalls: 1},
		{name: "internal error retried", code: "InternalError", n: 2, wantCalls: 3},
		{name: "internal error beyond retries", code: "InternalError", n: 100, wantCalls: 3,
			wantErr: func(err error) bool { return !fleet.IsThrottled(err) && strings.Contains(err.Error(), "InternalError") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p, srv := newProvider(t, ec2test.Options{}, nil)
			srv.FailNext("RunInstances", tt.code, tt.n)
			in, err := p.Launch(ctx, spec("web-1"))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Launch: %v", err)
			case tt.wantErr == nil && in.ID == "":
				t.Fatalf("Launch returned no instance")
			case tt.wantErr != nil && (err == nil || !tt.wantErr(err)):
				t.Fatalf("Launch error = %v, not the wanted kind", err)
			}
			if got := srv.Calls("RunInstances"); got != tt.wantCalls {
				t.Errorf("RunInstances calls = %d, want %d", got, tt.wantCalls)
			}
			wantInstances := 1
			if tt.wantErr != nil {
				wantInstances = 0
			}
			if got := len(srv.Instances()); got != wantInstances {
				t.Errorf("server has %d instances, want %d", got, wantInstances)
			}
		})
	}
}

func TestInsufficientCapacityCarriesTypeAndZone(t *testing.T) {
	p, srv := newProvider(t, ec2test.Options{}, nil)
	srv.FailNext("RunInstances", "InsufficientInstanceCapacity", 1)
	_, err := p.Launch(context.Background(), spec("web-1"))
	var ice *fleet.InsufficientCapacityError
	if !errors.As(err, &ice) {
		t.Fatalf("Launch error = %v, want *fleet.InsufficientCapacityError", err)
	}
	if ice.Type != "t3.micro" || ice.Zone != "us-east-1b" {
		t.Errorf("capacity error for %s in %s, want t3.micro in us-east-1b", ice.Type, ice.Zone)
	}
}

// TestAuthFailures: calls EC2 refuses to authenticate fail at once (one
// request, no retries) with an error wrapping aws.ErrAuthFailed that names
// EC2's code and what to check, never as a throttle.
func TestAuthFailures(t *testing.T) {
	creds := func(key, secret string) func(*aws.Options) {
		return func(o *aws.Options) { o.Credentials = credentials.NewStaticCredentialsProvider(key, secret, "") }
	}
	tests := []struct {
		name     string
		mod      func(*aws.Options)
		inject   string // an error code the server answers every call with
		wantCode string
		wantHint string
	}{
		{name: "wrong secret", mod: creds(testAccessKey, "not-the-secret"),
			wantCode: "SignatureDoesNotMatch", wantHint: "check the secret access key"},
		{name: "unknown access key", mod: creds("AKIDUNKNOWN", testSecret),
			wantCode: "AuthFailure", wantHint: "check the access key"},
		{name: "another region", mod: func(o *aws.Options) { o.Region = "us-west-2" },
			wantCode: "AuthFailure", wantHint: "the region"},
		// The adaptive retryer (the default) must not retry either.
		{name: "injected AuthFailure, adaptive retries", mod: func(o *aws.Options) { o.Retry.Mode = "" },
			inject: "AuthFailure", wantCode: "AuthFailure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := newProvider(t, ec2test.Options{}, tt.mod)
			if tt.inject != "" {
				srv.FailNext("DescribeInstances", tt.inject, 100)
				srv.FailNext("RunInstances", tt.inject, 100)
			}
			_, err := p.List(context.Background(), "office")
			if !errors.Is(err, aws.ErrAuthFailed) || fleet.IsThrottled(err) {
				t.Fatalf("List error = %v, want aws.ErrAuthFailed", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "ec2 DescribeInstances: ec2 authentication failed (") ||
				!strings.Contains(msg, tt.wantCode) || !strings.Contains(msg, tt.wantHint) {
				t.Errorf("List error %q: want the code %s and the hint %q", msg, tt.wantCode, tt.wantHint)
			}
			if n := srv.Calls("DescribeInstances"); n != 1 {
				t.Errorf("DescribeInstances sent %d times, want 1 (no retries)", n)
			}
			_, err = p.Launch(context.Background(), spec("web-1"))
			if !errors.Is(err, aws.ErrAuthFailed) || !strings.HasPrefix(err.Error(), "launching web-1: ec2 authentication failed") {
				t.Errorf("Launch error = %v, want aws.ErrAuthFailed", err)
			}
			if n := srv.Calls("RunInstances"); n != 1 {
				t.Errorf("RunInstances sent %d times, want 1 (no retries)", n)
			}
			if n := len(srv.Instances()); n != 0 {
				t.Errorf("%d instances launched by refused calls", n)
			}
		})
	}
}

// TestClockSkew: with the server's clock ten minutes ahead of this
// machine's, a call fails with RequestExpired and a hint to check the
// clock; the SDK takes the server's time from the response's Date header,
// so the next call is signed on a corrected clock and passes.
func TestClockSkew(t *testing.T) {
	p, srv := newProvider(t, ec2test.Options{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}, nil)
	_, err := p.List(context.Background(), "office")
	if !errors.Is(err, aws.ErrAuthFailed) || !strings.Contains(err.Error(), "RequestExpired") ||
		!strings.Contains(err.Error(), "clock") {
		t.Fatalf("List error = %v, want RequestExpired wrapped in aws.ErrAuthFailed", err)
	}
	if _, err := p.List(context.Background(), "office"); err != nil {
		t.Fatalf("List after the SDK saw the server's clock: %v", err)
	}
	if n := srv.Calls("DescribeInstances"); n != 2 {
		t.Errorf("DescribeInstances sent %d times, want 2", n)
	}
}

func TestListThrottled(t *testing.T) {
	p, srv := newProvider(t, ec2test.Options{}, func(o *aws.Options) { o.Retry.ThrottleAttempts = 4 })
	srv.FailNext("DescribeInstances", "RequestLimitExceeded", 4)
	_, err := p.List(context.Background(), "office")
	if !fleet.IsThrottled(err) {
		t.Fatalf("List error = %v, want throttled", err)
	}
	// The next call gets through.
	if _, err := p.List(context.Background(), "office"); err != nil {
		t.Fatalf("List after the throttling: %v", err)
	}
}

func TestTerminate(t *testing.T) {
	ctx := context.Background()
	p, _ := newProvider(t, ec2test.Options{}, nil)
	in, err := p.Launch(ctx, spec("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      string
		wantErr func(error) bool
	}{
		{name: "known instance", id: in.ID},
		{name: "already terminated", id: in.ID},
		{name: "unknown instance", id: "i-0fffffffffffffff0", wantErr: fleet.IsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Terminate(ctx, tt.id)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Terminate: %v", err)
			case tt.wantErr != nil && (err == nil || !tt.wantErr(err)):
				t.Fatalf("Terminate error = %v, not the wanted kind", err)
			}
		})
	}
}

func TestWaitRunning(t *testing.T) {
	ctx := context.Background()
	// Describes by id fail with NotFound twice after a launch, and
	// instances stay pending for three polls.
	p, srv := newProvider(t, ec2test.Options{PendingPolls: 3, NotFoundPolls: 2}, nil)
	var ids []string
	for i := 1; i <= 3; i++ {
		in, err := p.Launch(ctx, spec(fleet.Label("web", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	if err := p.WaitRunning(ctx, ids, 10*time.Second); err != nil {
		t.Fatalf("WaitRunning: %v", err)
	}
	if got := srv.Calls("DescribeInstances"); got < 2+3 {
		t.Errorf("waiter made %d describes, want at least 5 (2 NotFound, 3 pending)", got)
	}
	list, err := p.List(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.State != fleet.StateRunning || in.Address == "" {
			t.Errorf("after the wait %s is %q at %q", in.ID, in.State, in.Address)
		}
	}

	// An instance that terminates while waited for ends the wait.
	if err := p.Terminate(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitRunning(ctx, ids[:1], 10*time.Second); err == nil {
		t.Errorf("WaitRunning on a terminated instance succeeded")
	}
}

func TestHostKeyFingerprints(t *testing.T) {
	ctx := context.Background()
	p, _ := newProvider(t, ec2test.Options{PendingPolls: 1}, nil)
	in, err := p.Launch(ctx, spec("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	fps, err := p.HostKeyFingerprints(ctx, in.ID)
	if err != nil {
		t.Fatalf("HostKeyFingerprints while pending: %v", err)
	}
	if fps == nil || len(fps) != 0 {
		t.Fatalf("fingerprints while pending = %#v, want an empty list", fps)
	}
	if err := p.WaitRunning(ctx, []string{in.ID}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	fps, err = p.HostKeyFingerprints(ctx, in.ID)
	if err != nil {
		t.Fatalf("HostKeyFingerprints: %v", err)
	}
	if want := []string{ec2test.FakeFingerprint(in.ID)}; fmt.Sprint(fps) != fmt.Sprint(want) {
		t.Errorf("fingerprints = %v, want %v", fps, want)
	}
	if _, err := p.HostKeyFingerprints(ctx, "i-0fffffffffffffff0"); !fleet.IsNotFound(err) {
		t.Errorf("fingerprints of an unknown instance: %v, want not found", err)
	}
}

func TestTag(t *testing.T) {
	ctx := context.Background()
	p, _ := newProvider(t, ec2test.Options{}, nil)
	in, err := p.Launch(ctx, spec("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Tag(ctx, in.ID, map[string]string{"tide:revision": "r42"}); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	list, err := p.List(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Tags["tide:revision"] != "r42" || list[0].Label != "web-1" {
		t.Errorf("after tagging, List = %+v", list)
	}
	if err := p.Tag(ctx, "i-0fffffffffffffff0", map[string]string{"a": "b"}); !fleet.IsNotFound(err) {
		t.Errorf("tagging an unknown instance: %v, want not found", err)
	}
}

func TestLaunchSubnets(t *testing.T) {
	ctx := context.Background()
	p, _ := newProvider(t, ec2test.Options{}, func(o *aws.Options) {
		o.Subnets = map[string]string{"us-east-1b": "subnet-0b"}
		o.KeyName = "ops"
		o.SecurityGroupIDs = []string{"sg-1", "sg-2"}
	})
	if _, err := p.Launch(ctx, spec("web-1")); err != nil {
		t.Fatalf("Launch into a mapped zone: %v", err)
	}
	s := spec("web-2")
	s.Zone = "us-east-1c"
	if _, err := p.Launch(ctx, s); err == nil || !strings.Contains(err.Error(), "no subnet") {
		t.Errorf("Launch into an unmapped zone = %v, want a missing subnet error", err)
	}
}

func TestNewNeedsRegion(t *testing.T) {
	isolateSDK(t)
	_, err := aws.New(context.Background(), aws.Options{
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("New without a region = %v, want a region error", err)
	}
}

// seedBenchFleet puts 10,000 running instances of fleet "office" on srv:
// 1,000 labels of ten roles, spread over three zones.
func seedBenchFleet(b *testing.B, p *aws.Provider, srv *ec2test.TestServer) {
	ctx := context.Background()
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := range 10000 {
		s := spec(fleet.Label(fmt.Sprintf("role%d", i%10), i/10+1))
		s.ClientToken = ""
		s.Zone = zones[i%3]
		if _, err := srv.Add(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	list, err := p.List(ctx, "office") // the first list makes them run
	if err != nil || len(list) != 10000 {
		b.Fatalf("List: %d instances, %v", len(list), err)
	}
}

// recorder keeps the DescribeInstances response bodies a server sent, by
// the request's NextToken, and replays them.
type recorder struct {
	next  http.RoundTripper // nil: replay
	mu    sync.Mutex
	pages map[string][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	token := form.Get("NextToken")
	if r.next == nil {
		r.mu.Lock()
		page, ok := r.pages[token]
		r.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("no recorded page for token %q", token)
		}
		return &http.Response{
			StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"text/xml;charset=UTF-8"}},
			Body:          io.NopCloser(bytes.NewReader(page)),
			ContentLength: int64(len(page)),
			Request:       req,
		}, nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := r.next.RoundTrip(req)
	if err != nil || form.Get("Action") != "DescribeInstances" {
		return resp, err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.pages[token] = page
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(page))
	return resp, nil
}

// BenchmarkListParse10000 measures the client side of listing 10,000
// instances (1,000 labels of ten roles) in pages of 1,000: the SDK's request
// building, signing, XML decoding and the mapping to fleet.Instance. The
// pages were recorded from the EC2 test server and are replayed from
// memory, so no server work is counted.
func BenchmarkListParse10000(b *testing.B) {
	ctx := context.Background()
	rec := &recorder{next: aws.BufferedBodies{Next: http.DefaultTransport.(*http.Transport).Clone()}, pages: map[string][]byte{}}
	p, srv := newProvider(b, ec2test.Options{}, func(o *aws.Options) {
		o.HTTPClient = &http.Client{Transport: rec}
	})
	seedBenchFleet(b, p, srv)
	if _, err := p.List(ctx, "office"); err != nil { // record the running fleet
		b.Fatal(err)
	}
	rec.next = nil
	var size int
	for _, page := range rec.pages {
		size += len(page)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		list, err := p.List(ctx, "office")
		if err != nil || len(list) != 10000 {
			b.Fatalf("List: %d instances, %v", len(list), err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "xml-bytes/op")
}

// processCPU returns the CPU time (user and system) the process has used:
// on a shared machine it measures the work better than wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListServer10000 lists the same 10,000 instances through the SDK
// from the EC2 test server over loopback HTTP; the figure includes the
// server's XML encoding, which runs in the same process.
func BenchmarkListServer10000(b *testing.B) {
	ctx := context.Background()
	p, srv := newProvider(b, ec2test.Options{}, nil)
	seedBenchFleet(b, p, srv)
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		list, err := p.List(ctx, "office")
		if err != nil || len(list) != 10000 {
			b.Fatalf("List: %d instances, %v", len(list), err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}
