package ec2test_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/fleet"
)

// backendOnly hides the MemoryBackend's Restart: a backend that cannot
// boot hosts again.
type backendOnly struct{ ec2test.Backend }

// TestSDKStartInstances drives StartInstances with the real SDK client: a
// stopped instance (its host died while it ran) goes pending, then runs on
// its address again; a host that dies again while it boots stops it again
// (not terminated: its disk is kept) and it starts once more; pending and
// running instances are left as they are; a terminated instance is
// refused with IncorrectInstanceState, an unknown one with
// InvalidInstanceID.NotFound, and a backend that cannot restart hosts with
// UnsupportedOperation.
func TestSDKStartInstances(t *testing.T) {
	ctx := t.Context()
	b := ec2test.NewMemoryBackend()
	opts := ec2test.Options{Backend: b, Region: region, Credentials: map[string]string{accessKey: secret},
		PendingPolls: 1, TerminatedPolls: 3}
	srv := ec2test.NewTestServer(t, opts)
	client := func(url string) *ec2.Client {
		return ec2.New(ec2.Options{
			Region:       region,
			BaseEndpoint: aws.String(url),
			Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
			Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{}; o.MaxAttempts = 1 }),
		})
	}
	c := client(srv.URL)
	in, err := srv.Add(ctx, fleet.LaunchSpec{Fleet: "office", Role: "db", Label: "db-1", Image: "ami-1"})
	if err != nil {
		t.Fatal(err)
	}
	describe := func() types.Instance {
		t.Helper()
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{in.ID}})
		if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
			t.Fatalf("describe: %+v, %v", out, err)
		}
		return out.Reservations[0].Instances[0]
	}
	await := func(want types.InstanceStateName) types.Instance {
		t.Helper()
		for range 5 {
			if got := describe(); got.State.Name == want {
				return got
			}
		}
		t.Fatalf("%s never %s: %+v", in.ID, want, describe().State)
		return types.Instance{}
	}
	start := func() (*ec2.StartInstancesOutput, error) {
		return c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{in.ID}})
	}
	addr := aws.ToString(await(types.InstanceStateNameRunning).PrivateIpAddress)

	b.Crash(in.ID, "kernel panic\n")
	if got := await(types.InstanceStateNameStopped); got.StateReason == nil || aws.ToString(got.StateReason.Code) != "Client.InstanceInitiatedShutdown" {
		t.Fatalf("stopped: %+v", got.StateReason)
	}
	out, err := start()
	if err != nil {
		t.Fatalf("StartInstances: %v", err)
	}
	if sc := out.StartingInstances; len(sc) != 1 || aws.ToString(sc[0].InstanceId) != in.ID ||
		sc[0].PreviousState.Name != types.InstanceStateNameStopped || aws.ToInt32(sc[0].PreviousState.Code) != 80 ||
		sc[0].CurrentState.Name != types.InstanceStateNamePending || aws.ToInt32(sc[0].CurrentState.Code) != 0 {
		t.Fatalf("StartInstances answered %+v", out.StartingInstances)
	}
	if got := describe(); got.State.Name != types.InstanceStateNamePending || got.PrivateIpAddress != nil || got.StateReason != nil {
		t.Errorf("just started: %+v, address %v, reason %+v", got.State, got.PrivateIpAddress, got.StateReason)
	}
	// Its host dies again while it boots: stopped, its host kept.
	b.Crash(in.ID, "kernel panic again\n")
	await(types.InstanceStateNameStopped)
	if _, err := start(); err != nil {
		t.Fatalf("StartInstances again: %v", err)
	}
	if got := await(types.InstanceStateNameRunning); aws.ToString(got.PrivateIpAddress) != addr {
		t.Errorf("running again on %v, was %s", got.PrivateIpAddress, addr)
	}
	// Running: nothing to do, and no error.
	out, err = start()
	if err != nil || out.StartingInstances[0].CurrentState.Name != types.InstanceStateNameRunning ||
		out.StartingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("starting a running instance: %+v, %v", out, err)
	}
	if got := srv.Instances(); len(got) != 1 {
		t.Fatalf("instances %+v, want one", got)
	}

	apiErr := func(err error, code string, status int) {
		t.Helper()
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != code || !errors.As(err, &re) || re.HTTPStatusCode() != status {
			t.Errorf("error %v, want %s (%d)", err, code, status)
		}
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{in.ID}}); err != nil {
		t.Fatal(err)
	}
	_, err = start()
	apiErr(err, "IncorrectInstanceState", 400)
	_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{"i-0ffffffffffffffff"}})
	apiErr(err, "InvalidInstanceID.NotFound", 400)

	mb := ec2test.NewMemoryBackend()
	noRestart := ec2test.NewTestServer(t, ec2test.Options{Backend: backendOnly{mb}, Region: region,
		Credentials: map[string]string{accessKey: secret}})
	if in, err = noRestart.Add(ctx, fleet.LaunchSpec{Image: "ami-1"}); err != nil {
		t.Fatal(err)
	}
	c = client(noRestart.URL)
	await(types.InstanceStateNameRunning)
	mb.Crash(in.ID, "gone\n")
	await(types.InstanceStateNameStopped)
	_, err = start()
	apiErr(err, "UnsupportedOperation", 400)
}
