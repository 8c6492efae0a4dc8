package ec2local_test

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
)

// TestStartStoppedInstance: an instance whose local host died while it ran
// is stopped; StartInstances, through the real SDK, boots the same local
// host again: the instance goes pending, then runs on the same private
// address, with the same host key on its console and in its SSH
// handshake, and the data its disk held.
func TestStartStoppedInstance(t *testing.T) {
	cloud, signer := newCloud(t, "127.0.89.0/29")
	ctx := t.Context()
	opts := ec2test.DefaultOptions()
	opts.Region = "eu-west-1"
	opts.Credentials = map[string]string{"AKIDUSER": "user-secret"}
	srv, _ := ec2local.NewServer(opts, cloud)
	client := sdkClient(t, srv, "AKIDUSER", "user-secret")
	inst, err := srv.Add(ctx, spec("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	describe := func() types.Instance {
		t.Helper()
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("instance-id"), Values: []string{inst.ID}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
			t.Fatalf("describe: %+v", out.Reservations)
		}
		return out.Reservations[0].Instances[0]
	}
	running := func() types.Instance {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			in := describe()
			if in.State.Name == types.InstanceStateNameRunning {
				return in
			}
			if in.State.Name != types.InstanceStateNamePending || time.Now().After(deadline) {
				t.Fatalf("waiting for %s to run: %s", inst.ID, in.State.Name)
			}
			<-time.After(20 * time.Millisecond)
		}
	}
	fingerprints := func() string {
		t.Helper()
		co, err := client.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(inst.ID)})
		if err != nil {
			t.Fatal(err)
		}
		console, err := base64.StdEncoding.DecodeString(aws.ToString(co.Output))
		if err != nil {
			t.Fatal(err)
		}
		begin := strings.Index(string(console), "BEGIN SSH HOST KEY FINGERPRINTS")
		end := strings.Index(string(console), "END SSH HOST KEY FINGERPRINTS")
		if begin < 0 || end < begin {
			t.Fatalf("no fingerprints on the console:\n%s", console)
		}
		return string(console[begin:end])
	}
	presented := func(addr string) string {
		t.Helper()
		var got ssh.PublicKey
		c, err := ssh.Dial("tcp", net.JoinHostPort(addr, "2222"), &ssh.ClientConfig{
			User: "tide", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, Timeout: 10 * time.Second,
			HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error { got = key; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return ssh.FingerprintSHA256(got)
	}

	first := running()
	addr := aws.ToString(first.PrivateIpAddress)
	keys, key := fingerprints(), presented(addr)
	lid := localHost(t, cloud, inst.ID)
	data := ""
	for _, in := range srv.Instances() {
		if in.ID == inst.ID {
			data = filepath.Join(in.Tags[local.TagDataPath], "value")
		}
	}
	if err := os.WriteFile(data, []byte("newer than any backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	crash(t, cloud, lid)
	for i := 0; describe().State.Name != types.InstanceStateNameStopped; i++ {
		if i == 5 {
			t.Fatalf("%s not stopped after its host died", inst.ID)
		}
	}
	out, err := client.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatalf("StartInstances: %v", err)
	}
	if sc := out.StartingInstances; len(sc) != 1 || sc[0].PreviousState.Name != types.InstanceStateNameStopped ||
		sc[0].CurrentState.Name != types.InstanceStateNamePending {
		t.Fatalf("StartInstances answered %+v", out.StartingInstances)
	}
	again := running()
	if got := aws.ToString(again.PrivateIpAddress); got != addr {
		t.Errorf("running again on %s, was %s", got, addr)
	}
	if got := fingerprints(); got != keys {
		t.Errorf("console fingerprints changed over the start:\n%s\nthen\n%s", keys, got)
	}
	if got := presented(addr); got != key || !strings.Contains(keys, key) {
		t.Errorf("the host presents %s, presented %s (console: %s)", got, key, keys)
	}
	if got, err := os.ReadFile(data); err != nil || string(got) != "newer than any backup\n" {
		t.Errorf("data after the start: %q, %v", got, err)
	}
	hosts, err := cloud.List(ctx, "")
	if err != nil || len(hosts) != 1 || hosts[0].ID != lid {
		t.Errorf("local hosts after the start: %+v (%v), want %s alone", hosts, err, lid)
	}
}
