package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
)

func init() {
	register(command{Name: "ec2-demo", Summary: "serve an offline EC2 endpoint whose instances are local hosts", Run: runEC2Demo})
}

const ec2DemoHelp = `Serves the EC2 API (the calls tide makes) on a loopback address, offline:
each instance it launches is a local-cloud host serving real SSH, whose
console prints its host key fingerprints as cloud-init does on EC2. Point a
schedule's cloud section at it (provider: aws, endpoint: http://ADDRESS, see
examples/aws-demo.yaml) and run tide apply, status and down through the real
AWS SDK. It checks every request's SigV4 signature as EC2 does, and accepts
only the demo credentials, for --region: run tide with
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true.

Hosts accept the key STATE-DIR/ssh/id_ed25519 (made on first use; the
schedule's ssh.identity_file) and those of --authorized-keys. The EC2 view
lives in memory: when the demo stops, it stops its hosts, and at start it
stops the hosts an earlier run left.`

// The credentials tide ec2-demo accepts: made up, printed for the user.
const (
	ec2DemoAccessKey = "demo"
	ec2DemoSecret    = "demo"
)

func runEC2Demo(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	listen := fs.String("listen", "127.0.0.1:8790", "loopback address to serve the EC2 API on")
	stateDir := fs.String("state-dir", filepath.Join(os.TempDir(), "tide-ec2-demo"), "the demo's state directory: its hosts and their ssh key")
	network := fs.String("network", "127.0.20.0/24", "addresses the hosts get, inside 127.0.0.0/8")
	port := fs.Int("port", local.DefaultPort, "port the hosts serve SSH on (the schedule's ssh.port)")
	bootDelay := fs.Duration("boot-delay", time.Second, "how long a host takes to boot")
	region := fs.String("region", "eu-west-1", "the region the endpoint stands for")
	authorized := fs.String("authorized-keys", "", "an authorized_keys file whose keys hosts accept too")
	if err := parseFlags(fs, args, ec2DemoHelp); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil || !ap.Addr().IsLoopback() {
		// Anyone who can reach the endpoint can start processes here.
		return fmt.Errorf("--listen: want a loopback address and port, got %q", *listen)
	}
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	key := filepath.Join(dir, "ssh", "id_ed25519")
	signer, err := stateKey(key)
	if err != nil {
		return err
	}
	log := e.Logger.With("component", "ec2_demo")
	cloud, err := local.New(local.Options{
		StateDir:           dir,
		Network:            *network,
		Port:               *port,
		BootDelay:          *bootDelay,
		AuthorizedKeys:     []ssh.PublicKey{signer.PublicKey()},
		AuthorizedKeysFile: *authorized,
		Logger:             log,
	})
	if err != nil {
		return err
	}
	opts := ec2test.DefaultOptions()
	opts.Region = *region
	// The demo's own credentials, never real ones: the instructions below
	// print them.
	opts.Credentials = map[string]string{ec2DemoAccessKey: ec2DemoSecret}
	srv, backend := ec2local.NewServer(opts, cloud)
	if n, err := backend.StopAll(ctx); err != nil {
		return fmt.Errorf("stopping an earlier run's hosts: %w", err)
	} else if n > 0 {
		log.Info("stopped hosts an earlier run left", "hosts", n)
	}

	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.Stdout, "EC2 endpoint: http://%s (region %s, hosts on %s port %d)\n", ln.Addr(), *region, *network, *port)
	fmt.Fprintf(e.Stdout, "schedule: cloud: {provider: aws, region: %s, endpoint: http://%s, image: ami-demo}\n", *region, ln.Addr())
	fmt.Fprintf(e.Stdout, "          ssh: {port: %d, identity_file: %s}\n", *port, key)
	fmt.Fprintf(e.Stdout, "run tide with: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_EC2_METADATA_DISABLED=true\n", ec2DemoAccessKey, ec2DemoSecret)

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	// The EC2 view dies with the demo: stop its hosts, not to leave them
	// behind unreachable through the API.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n, serr := backend.StopAll(sctx)
	log.Info("ec2 demo stopped", "hosts_stopped", n)
	return errors.Join(err, serr)
}
