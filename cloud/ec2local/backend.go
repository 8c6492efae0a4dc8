package ec2local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
)

// TagInstanceID is the local-cloud tag naming the EC2 instance a host backs.
const TagInstanceID = "ec2local:instance-id"

// Backend is an ec2test.Backend whose hosts are local-cloud hosts. It is
// safe for concurrent use.
type Backend struct {
	cloud *local.Provider
	api   http.Handler // the server hosts tag their instances through
	run   string       // keeps client tokens apart from earlier runs' hosts
	// creds, region and now sign the hosts' API calls, as an instance
	// profile's credentials would on EC2.
	creds  aws.Credentials
	region string
	now    func() time.Time
	mu     sync.Mutex
	hosts  map[string]string // EC2 instance id -> local instance id
}

var (
	_ ec2test.Backend   = (*Backend)(nil)
	_ ec2test.Restarter = (*Backend)(nil)
)

// NewServer returns an EC2 test server (opts.Backend is replaced) whose
// instances are hosts of cloud, and its backend. The server accepts
// opts.Credentials and one more credential, made up here, that the hosts
// sign their own calls with.
func NewServer(opts ec2test.Options, cloud *local.Provider) (*ec2test.Server, *Backend) {
	b := &Backend{cloud: cloud, run: randomHex(), hosts: map[string]string{},
		creds: aws.Credentials{AccessKeyID: "EC2LOCAL" + strings.ToUpper(randomHex()), SecretAccessKey: randomHex() + randomHex()},
		now:   opts.Now}
	if b.now == nil {
		b.now = time.Now
	}
	opts.Backend = b
	opts.Credentials = maps.Clone(opts.Credentials)
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{}
	}
	opts.Credentials[b.creds.AccessKeyID] = b.creds.SecretAccessKey
	s := ec2test.NewServer(opts)
	b.api = s
	b.region = s.Region()
	return s, b
}

// Start launches a local host for instance id. The host tags its instance
// with its data path (local.TagDataPath: LABEL and the applications go there
// rather than in this machine's /mnt), as an instance's user data would
// with `aws ec2 create-tags`. The address comes later, through Address.
func (b *Backend) Start(ctx context.Context, id string, spec fleet.LaunchSpec) (string, error) {
	spec.ClientToken = b.run + ":" + id
	spec.Tags = maps.Clone(spec.Tags)
	if spec.Tags == nil {
		spec.Tags = map[string]string{}
	}
	spec.Tags[TagInstanceID] = id
	inst, err := b.cloud.Launch(ctx, spec)
	if err != nil {
		return "", err // *fleet.InsufficientCapacityError stays one for the server
	}
	b.mu.Lock()
	b.hosts[id] = inst.ID
	b.mu.Unlock()
	if err := b.tag(ctx, id, local.TagDataPath, inst.Tags[local.TagDataPath]); err != nil {
		_ = b.Stop(context.WithoutCancel(ctx), id)
		return "", err
	}
	return "", nil
}

// tag sets one tag on an instance through the server's CreateTags, in a
// request signed with the hosts' credential.
func (b *Backend) tag(ctx context.Context, id, key, value string) error {
	form := url.Values{"Action": {"CreateTags"}, "Version": {"2016-11-15"},
		"ResourceId.1": {id}, "Tag.1.Key": {key}, "Tag.1.Value": {value}}
	body := form.Encode()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, b.creds, req, hex.EncodeToString(sum[:]), ec2test.Service, b.region, b.now()); err != nil {
		return fmt.Errorf("tagging %s: signing: %w", id, err)
	}
	rec := httptest.NewRecorder()
	b.api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("tagging %s: %s", id, rec.Body.String())
	}
	return nil
}

// Host returns the host's address once it has booted and listens. A host
// whose process died (the local cloud shows it stopped) or that is gone is
// down; one the local cloud cannot be read for is booting, for now.
func (b *Backend) Host(ctx context.Context, id string) (string, ec2test.HostState) {
	b.mu.Lock()
	lid, ok := b.hosts[id]
	b.mu.Unlock()
	if !ok {
		return "", ec2test.HostDown
	}
	inst, err := b.cloud.Instance(ctx, lid)
	switch {
	case fleet.IsNotFound(err):
		return "", ec2test.HostDown
	case err != nil:
		return "", ec2test.HostBooting
	case inst.State == fleet.StateRunning && inst.Address != "":
		return inst.Address, ec2test.HostUp
	case inst.State.Live():
		return "", ec2test.HostBooting
	}
	return "", ec2test.HostDown
}

// consoleTail is how much of a dead host's own console (its process's
// output: a panic, the error it exited with) ConsoleOutput appends.
const consoleTail = 16 << 10

// ConsoleOutput returns the host's console: its SSH host key fingerprints
// in cloud-init's block, "" before it has booted. When the host's process
// has died, the end of its own console log follows: what the process
// printed before it stopped, which says why.
func (b *Backend) ConsoleOutput(ctx context.Context, id string) (string, error) {
	b.mu.Lock()
	lid, ok := b.hosts[id]
	b.mu.Unlock()
	if !ok {
		return "", nil
	}
	fps, err := b.cloud.HostKeyFingerprints(ctx, lid)
	if err != nil {
		return "", err
	}
	inst, err := b.cloud.Instance(ctx, lid)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	if len(fps) > 0 || !inst.State.Live() {
		out.WriteString("[    0.000000] Linux version 6.1.0 (tide local cloud " + lid + ")\n")
	}
	if len(fps) > 0 {
		host := "ip-" + id
		if inst.Address != "" {
			host = "ip-" + strings.ReplaceAll(inst.Address, ".", "-")
		}
		out.WriteString(ec2test.HostKeyConsole(host, fps))
	}
	if !inst.State.Live() {
		own, err := b.cloud.ConsoleOutput(ctx, lid)
		if err != nil {
			return "", err
		}
		if len(own) > consoleTail {
			own = "...\n" + own[len(own)-consoleTail:]
		}
		fmt.Fprintf(&out, "[ local host %s is %s: its process ended; the end of its console follows ]\n%s", lid, inst.State, own)
	}
	return out.String(), nil
}

// Restart boots the local host of a stopped instance again (the local
// cloud's Start): its filesystem, data, address and host key are kept, as
// a stopped EC2 instance keeps its volume, private address and key.
func (b *Backend) Restart(ctx context.Context, id string) error {
	b.mu.Lock()
	lid, ok := b.hosts[id]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("no local host behind %s", id)
	}
	return b.cloud.Start(ctx, lid)
}

// Stop terminates the host; an unknown or terminated one is no error.
func (b *Backend) Stop(ctx context.Context, id string) error {
	b.mu.Lock()
	lid, ok := b.hosts[id]
	b.mu.Unlock()
	if !ok {
		return nil
	}
	if err := b.cloud.Terminate(ctx, lid); err != nil && !fleet.IsNotFound(err) {
		return err
	}
	b.mu.Lock()
	delete(b.hosts, id)
	b.mu.Unlock()
	return nil
}

// StopAll terminates every local host that backs an EC2 instance, this
// backend's and those an earlier run left (the server's view of them died
// with it), and returns how many it stopped.
func (b *Backend) StopAll(ctx context.Context) (int, error) {
	insts, err := b.cloud.List(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range insts {
		if in.Tags[TagInstanceID] == "" {
			continue
		}
		if err := b.cloud.Terminate(ctx, in.ID); err != nil && !fleet.IsNotFound(err) {
			return n, err
		}
		n++
	}
	b.mu.Lock()
	clear(b.hosts)
	b.mu.Unlock()
	return n, nil
}

func randomHex() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
