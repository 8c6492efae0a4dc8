package ec2local_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
)

// TestMain doubles as a local-cloud host: the local cloud starts this test
// binary with TIDE_LOCAL_HOST_DIR set.
func TestMain(m *testing.M) {
	local.RunHostIfAsked()
	os.Setenv("GORACE", "atexit_sleep_ms=0") // hosts built with -race exit at once
	os.Exit(m.Run())
}

// newCloud returns a local cloud on its own state directory and network
// whose every host is terminated when the test ends, and a key its hosts
// accept.
func newCloud(t *testing.T, network string) (*local.Provider, ssh.Signer) {
	t.Helper()
	return newCloudBooting(t, network, 100*time.Millisecond)
}

// newCloudBooting is newCloud with hosts that take bootDelay to boot.
func newCloudBooting(t *testing.T, network string, bootDelay time.Duration) (*local.Provider, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := local.New(local.Options{
		StateDir:       t.TempDir(),
		Network:        network,
		Port:           2222,
		BootDelay:      bootDelay,
		Executable:     []string{os.Args[0]},
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		StopGrace:      3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		insts, err := p.List(context.Background(), "")
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, in := range insts {
			if err := p.Terminate(context.Background(), in.ID); err != nil {
				t.Errorf("cleanup: terminating %s: %v", in.ID, err)
			}
		}
	})
	return p, signer
}

func spec(label string) fleet.LaunchSpec {
	role, _, _ := fleet.ParseLabel(label)
	return fleet.LaunchSpec{ClientToken: "tok-" + label, Fleet: "office", Role: role, Label: label,
		Type: "t3.micro", Zone: "eu-west-1a", Image: "ami-demo"}
}

// waitAddress polls the backend until the instance's host has booted.
func waitAddress(t *testing.T, b *ec2local.Backend, id string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if a, st := b.Host(t.Context(), id); st == ec2test.HostUp {
			return a
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no address within 30s", id)
	return ""
}

func TestInstancesAreLocalHosts(t *testing.T) {
	cloud, signer := newCloud(t, "127.0.95.0/29")
	opts := ec2test.DefaultOptions()
	opts.Region = "eu-west-1"
	opts.Credentials = map[string]string{"AKIDUSER": "user-secret"}
	// The host tags its instance below in a request signed with the
	// hosts' own credential, for the server's region.
	srv, b := ec2local.NewServer(opts, cloud)
	if len(opts.Credentials) != 1 {
		t.Errorf("NewServer added to the caller's credentials: %v", opts.Credentials)
	}
	ctx := t.Context()

	inst, err := srv.Add(ctx, spec("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := b.ConsoleOutput(ctx, inst.ID); err != nil {
		t.Fatal(err)
	} else if strings.Contains(out, "SHA256:") {
		t.Errorf("console before boot already has keys:\n%s", out)
	}
	addr := waitAddress(t, b, inst.ID)
	if !strings.HasPrefix(addr, "127.0.95.") {
		t.Errorf("address %q outside the local cloud's network", addr)
	}

	// The host tagged its instance with its own data path.
	var dataPath string
	for _, in := range srv.Instances() {
		if in.ID == inst.ID {
			dataPath = in.Tags[local.TagDataPath]
			if in.Tags[local.TagSSHPort] != "" {
				t.Errorf("instance carries the local cloud's port tag: %v", in.Tags)
			}
		}
	}
	if st, err := os.Stat(dataPath); err != nil || !st.IsDir() {
		t.Errorf("data path tag %q: %v", dataPath, err)
	}

	// The console's fingerprint block names the key the host presents.
	console, err := b.ConsoleOutput(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got ssh.PublicKey
	c, err := ssh.Dial("tcp", net.JoinHostPort(addr, "2222"), &ssh.ClientConfig{
		User: "tide",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return nil
		},
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := ec2test.HostKeyConsole("ip-"+strings.ReplaceAll(addr, ".", "-"), []string{ssh.FingerprintSHA256(got)})
	if !strings.Contains(console, want) {
		t.Errorf("console lacks the host's key block\n%s\nwant:\n%s", console, want)
	}

	if err := b.Stop(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(ctx, inst.ID); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	left, err := cloud.List(ctx, "")
	if err != nil || len(left) != 0 {
		t.Errorf("after Stop the local cloud still has %d hosts (%v)", len(left), err)
	}
	if a, st := b.Host(ctx, inst.ID); st != ec2test.HostDown || a != "" {
		t.Errorf("a stopped instance's host is %s at %q, want down", st, a)
	}
}

// TestCapacity: a full local network is EC2's InsufficientInstanceCapacity,
// and the failed launch leaves nothing behind.
func TestCapacity(t *testing.T) {
	cloud, _ := newCloud(t, "127.0.95.8/30") // two addresses
	srv, _ := ec2local.NewServer(ec2test.Options{}, cloud)
	ctx := t.Context()
	for _, l := range []string{"web-1", "web-2"} {
		if _, err := srv.Add(ctx, spec(l)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := srv.Add(ctx, spec("web-3"))
	if err == nil || !strings.Contains(err.Error(), "InsufficientInstanceCapacity") {
		t.Fatalf("third launch = %v, want InsufficientInstanceCapacity", err)
	}
	if n := len(srv.Instances()); n != 2 {
		t.Errorf("server shows %d instances, want 2", n)
	}
}

// TestStopAllSweepsEarlierRuns: hosts a previous server left behind (its
// EC2 view died with it) are stopped; other local hosts are not.
func TestStopAllSweepsEarlierRuns(t *testing.T) {
	cloud, _ := newCloud(t, "127.0.95.16/29")
	ctx := t.Context()
	old, _ := ec2local.NewServer(ec2test.Options{}, cloud)
	for _, l := range []string{"web-1", "web-2"} {
		if _, err := old.Add(ctx, spec(l)); err != nil {
			t.Fatal(err)
		}
	}
	mine, err := cloud.Launch(ctx, fleet.LaunchSpec{ClientToken: "not-ec2", Fleet: "other", Role: "db", Label: "db-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, b := ec2local.NewServer(ec2test.Options{}, cloud)
	n, err := b.StopAll(ctx)
	if err != nil || n != 2 {
		t.Fatalf("StopAll = %d, %v; want 2", n, err)
	}
	left, err := cloud.List(ctx, "")
	if err != nil || len(left) != 1 || left[0].ID != mine.ID {
		t.Errorf("left %+v (%v), want only %s", left, err, mine.ID)
	}
}

// crash makes the process of local host lid dump its goroutines and exit,
// as a crashing host process would (SIGQUIT: the Go runtime prints every
// goroutine's stack to stderr, the host's console log, and exits 2). It
// waits until the host has made its key, so that the runtime is up to
// print, and until its processes are gone.
func crash(t *testing.T, cloud *local.Provider, lid string) {
	t.Helper()
	key := filepath.Join(cloud.HostDir(lid), "ssh_host_ed25519_key")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(key); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s made no key within 20s", lid)
		}
		<-time.After(10 * time.Millisecond)
	}
	marker := "TIDE_HOST_ID=" + lid
	pids := localtest.ProcessesWith(marker)
	if len(pids) == 0 {
		t.Fatalf("no process of host %s", lid)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
	}
	localtest.WaitGone(t, marker, 10*time.Second)
}

// localHost returns the id of the local host behind EC2 instance id.
func localHost(t *testing.T, cloud *local.Provider, id string) string {
	t.Helper()
	hosts, err := cloud.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Tags[ec2local.TagInstanceID] == id {
			return h.ID
		}
	}
	t.Fatalf("no local host behind %s", id)
	return ""
}

// sdkClient returns the real SDK's EC2 client for the server.
func sdkClient(t *testing.T, srv *ec2test.Server, id, secret string) *ec2.Client {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return ec2.New(ec2.Options{
		Region:       srv.Region(),
		BaseEndpoint: aws.String(hs.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		// The standard retryer, without waits: the SDK retries a response
		// whose connection the transport closed while it was read
		// (aws/aws-sdk-go-v2#2737), which a loaded machine sees.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} }),
	})
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// TestHostDies: the host of an instance dies. While booting, the instance
// terminates (EC2's "Server.InternalError: Internal error on launch") and
// its host is freed; while running, the instance stops (as when its system
// shuts down). Either way, describing shows the state reason within a few
// polls, and the console ends with what the host's process printed.
func TestHostDies(t *testing.T) {
	cloud, _ := newCloudBooting(t, "127.0.99.0/29", time.Minute)
	runCloud, _ := newCloud(t, "127.0.99.8/29")
	tests := []struct {
		name       string
		cloud      *local.Provider
		running    bool
		wantStates []types.InstanceStateName // the first describes after the crash, in order
		wantReason string
		hostLeft   bool // the local host stays (stopped), to be terminated later
	}{
		{"while booting", cloud, false, []types.InstanceStateName{"shutting-down", "terminated"}, "Server.InternalError", false},
		{"while running", runCloud, true, []types.InstanceStateName{"stopped", "stopped"}, "Client.InstanceInitiatedShutdown", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			opts := ec2test.DefaultOptions()
			opts.Region = "eu-west-1"
			opts.Credentials = map[string]string{"AKIDUSER": "user-secret"}
			srv, b := ec2local.NewServer(opts, tt.cloud)
			client := sdkClient(t, srv, "AKIDUSER", "user-secret")
			inst, err := srv.Add(ctx, spec("web-1"))
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
			if tt.running {
				waitAddress(t, b, inst.ID)
				for i := 0; describe().State.Name != types.InstanceStateNameRunning; i++ {
					if i == 5 {
						t.Fatal("the instance did not run")
					}
				}
			} else if st := describe().State.Name; st != types.InstanceStateNamePending {
				t.Fatalf("instance %s before the crash, want pending", st)
			}
			lid := localHost(t, tt.cloud, inst.ID)
			crash(t, tt.cloud, lid)

			for i, want := range tt.wantStates {
				in := describe()
				if in.State.Name != want {
					t.Fatalf("describe %d after the crash: %s, want %s", i, in.State.Name, want)
				}
				if in.StateReason == nil || aws.ToString(in.StateReason.Code) != tt.wantReason {
					t.Errorf("describe %d: state reason %+v, want %s", i, in.StateReason, tt.wantReason)
				}
			}
			co, err := client.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(inst.ID)})
			if err != nil {
				t.Fatal(err)
			}
			console, err := base64.StdEncoding.DecodeString(aws.ToString(co.Output))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"its process ended", "SIGQUIT: quit", "goroutine "} {
				if !strings.Contains(string(console), want) {
					t.Errorf("console lacks %q:\n%s", want, console)
				}
			}
			if tt.running && !strings.Contains(string(console), "BEGIN SSH HOST KEY FINGERPRINTS") {
				t.Errorf("console of a host that ran lacks its keys:\n%s", console)
			}
			hosts, err := tt.cloud.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if left := len(hosts) == 1 && hosts[0].ID == lid && hosts[0].State == fleet.StateStopped; left != tt.hostLeft || len(hosts) > 1 {
				t.Errorf("local hosts after the crash: %+v; want the stopped one left: %v", hosts, tt.hostLeft)
			}
			if _, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
				t.Fatal(err)
			}
			if hosts, err := tt.cloud.List(ctx, ""); err != nil || len(hosts) != 0 {
				t.Errorf("local hosts after terminating: %+v (%v)", hosts, err)
			}
		})
	}
}
