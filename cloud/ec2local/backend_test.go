package ec2local_test

import (
	"context"
	"crypto/ed25519"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
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
		BootDelay:      100 * time.Millisecond,
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
		if a, ok := b.Address(t.Context(), id); ok {
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
	if _, ok := b.Address(ctx, inst.ID); ok {
		t.Error("a stopped instance still has an address")
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
