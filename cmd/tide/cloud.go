package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/cloud/aws"
	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/cloud/static"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/remote"
)

var (
	_ deployer.Cloud    = (*local.Provider)(nil)
	_ deployer.Starter  = (*local.Provider)(nil)
	_ deployer.HostKeys = (*local.Provider)(nil)
	_ deployer.Cloud    = (*aws.Provider)(nil)
	_ deployer.Starter  = (*aws.Provider)(nil)
	_ deployer.HostKeys = (*aws.Provider)(nil)
	_ deployer.Cloud    = (*static.Provider)(nil)

	_ deployer.Dialer    = sshDialer{}
	_ deployer.Forgetter = sshDialer{}
	_ deployer.Host      = sshHost{}
	_ converge.Streamer  = sshHost{}
)

// stateDirFlag adds --state-dir: the directory tide keeps its state in
// (label caches, SSH key and known_hosts, the local cloud's hosts).
func stateDirFlag(fs *flag.FlagSet, e *env) *string {
	return fs.String("state-dir", defaultStateDir(e.Getenv), "state directory (env TIDE_STATE_DIR; default $XDG_STATE_HOME/tide)")
}

// defaultStateDir is TIDE_STATE_DIR, else $XDG_STATE_HOME/tide, else
// ~/.local/state/tide.
func defaultStateDir(getenv func(string) string) string {
	if d := getenv("TIDE_STATE_DIR"); d != "" {
		return d
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tide")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "tide")
}

// provider is a schedule's cloud, wired for the deployer.
type provider struct {
	Name     string
	Cloud    deployer.Cloud
	HostKeys deployer.HostKeys // nil when the cloud prints no keys
	// Fixed is set for static hosts: never launched or terminated.
	Fixed bool
}

// buildCloud builds the provider the schedule's cloud: section names.
// signer's public key is what local hosts accept. getenv is the command's
// environment: the aws cloud takes its credentials from it (see awsEnv).
func buildCloud(ctx context.Context, s *config.Schedule, stateDir string, signer ssh.Signer, getenv func(string) string, log *slog.Logger) (provider, error) {
	switch s.Cloud.Provider {
	case "", "local":
		p, err := local.New(local.Options{
			StateDir:       stateDir,
			Network:        s.Cloud.Network,
			Port:           s.SSH.Port,
			BootDelay:      s.Cloud.BootDelay.D(),
			AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
			Logger:         log,
		})
		if err != nil {
			return provider{}, err
		}
		return provider{Name: "local", Cloud: p, HostKeys: p}, nil
	case "aws":
		opts := aws.Options{
			Region:           s.Cloud.Region,
			Endpoint:         s.Cloud.Endpoint,
			Subnets:          s.Cloud.Subnets,
			KeyName:          s.Cloud.KeyName,
			SecurityGroupIDs: s.Cloud.SecurityGroups,
			Logger:           log,
		}
		if err := awsEnv(&opts, getenv); err != nil {
			return provider{}, err
		}
		p, err := aws.New(ctx, opts)
		if err != nil {
			return provider{}, err
		}
		return provider{Name: "aws", Cloud: p, HostKeys: p}, nil
	case "static":
		var hosts []static.Host
		for _, r := range s.Roles {
			for _, h := range r.Hosts {
				hosts = append(hosts, static.Host{Label: h.Label, Role: r.Name, Address: h.Address})
			}
		}
		p, err := static.New(s.Name, hosts)
		if err != nil {
			return provider{}, err
		}
		return provider{Name: "static", Cloud: p, Fixed: true}, nil
	}
	return provider{}, fmt.Errorf("unknown cloud provider %q", s.Cloud.Provider)
}

// awsEnv sets what the aws cloud takes from the command's environment
// rather than from the process's (the SDK's own loading reads the latter;
// tests give each command an environment of its own):
//
//   - AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, when
//     the first two are set, are the credentials, as the SDK would take them;
//   - AWS_RETRY_MODE (standard or adaptive) picks the retry mode, which the
//     SDK would otherwise ignore for tide's own retryer;
//   - TIDE_AWS_MAX_BACKOFF (a duration, default 20s) bounds the wait between
//     retries of a failed call (tests and the offline demo set it low).
func awsEnv(o *aws.Options, getenv func(string) string) error {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))
	}
	if m := getenv("AWS_RETRY_MODE"); m != "" {
		o.Retry.Mode = sdkaws.RetryMode(m)
	}
	if v := getenv("TIDE_AWS_MAX_BACKOFF"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("TIDE_AWS_MAX_BACKOFF: want a positive duration, got %q", v)
		}
		o.Retry.MaxBackoff = d
	}
	return nil
}

// sshSetup returns the signers tide authenticates with and the known_hosts
// file: the schedule's identity file, else (local cloud) a key tide
// generates in the state directory on first use, else ssh-agent.
func sshSetup(ctx context.Context, s *config.Schedule, stateDir string, getenv func(string) string) (signers []ssh.Signer, knownHosts string, closer io.Closer, err error) {
	knownHosts = s.SSH.KnownHosts
	if knownHosts == "" {
		knownHosts = filepath.Join(stateDir, "ssh", "known_hosts")
	}
	switch {
	case s.SSH.IdentityFile != "":
		sg, err := remote.LoadIdentity(s.SSH.IdentityFile)
		if err != nil {
			return nil, "", nil, err
		}
		return []ssh.Signer{sg}, knownHosts, nil, nil
	case s.Cloud.Provider == "" || s.Cloud.Provider == "local":
		sg, err := stateKey(filepath.Join(stateDir, "ssh", "id_ed25519"))
		if err != nil {
			return nil, "", nil, err
		}
		return []ssh.Signer{sg}, knownHosts, nil, nil
	}
	sock := getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, "", nil, errors.New("no ssh key: set ssh.identity_file in the schedule or run an ssh-agent")
	}
	sgs, c, err := remote.AgentSigners(ctx, sock)
	if err != nil {
		return nil, "", nil, err
	}
	return sgs, knownHosts, c, nil
}

// stateKey loads the ed25519 key at path, generating it on first use.
func stateKey(path string) (ssh.Signer, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating ssh key: %w", err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "tide")
		if err != nil {
			return nil, fmt.Errorf("generating ssh key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("generating ssh key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case errors.Is(err, fs.ErrExist):
			// Another tide made it meanwhile: use theirs.
		case err != nil:
			return nil, fmt.Errorf("writing ssh key: %w", err)
		default:
			err = pem.Encode(f, block)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("writing ssh key: %w", err)
			}
		}
	}
	return remote.LoadIdentity(path)
}

// newSSHDialer builds the remote dialer for a schedule. A new host's key
// must be among the fingerprints its cloud printed on its console (local
// hosts and EC2 images running cloud-init print them). Static hosts, whose
// cloud prints nothing, are trusted on first use and pinned in known_hosts
// from then on; so are aws hosts whose console stayed without fingerprints
// for half the SSH deadline (images that print none): before that, a host
// without them is dialled again, as the console may print them late.
func newSSHDialer(s *config.Schedule, p provider, signers []ssh.Signer, knownHosts string, log *slog.Logger) (sshDialer, error) {
	u := s.SSH.User
	if u == "" {
		if cu, err := user.Current(); err == nil {
			u = cu.Username
		} else {
			u = "tide"
		}
	}
	cfg := remote.Config{
		User:           u,
		Signers:        signers,
		KnownHostsFile: knownHosts,
		Port:           s.SSH.Port,
		Timeout:        s.SSH.Timeout.D(),
		Logger:         log,
	}
	d, err := remote.NewDialer(cfg)
	if err != nil {
		return sshDialer{}, err
	}
	a := sshDialer{d: d, portTag: p.Name == "local"}
	if p.Name != "local" {
		cfg.TrustOnFirstUse = true
		if a.tofu, err = remote.NewDialer(cfg); err != nil {
			return sshDialer{}, err
		}
		a.wait = &consoleWait{clock: clock.Real{}, since: map[string]time.Time{}}
		if p.HostKeys != nil {
			deadline := s.SSH.Deadline.D()
			if deadline <= 0 {
				deadline = config.DefaultSSHDeadline
			}
			a.wait.grace = deadline / 2
		}
	}
	return a, nil
}

// sshDialer adapts remote's Dialer to the deployer: one dial a call, the
// port from the instance's tide:ssh-port tag on the local cloud (elsewhere
// the schedule's ssh.port), and host key errors that retrying cannot fix
// marked with deployer.ErrHostKeyMismatch.
type sshDialer struct {
	d       *remote.Dialer // known_hosts and the console's fingerprints
	tofu    *remote.Dialer // the same, trusting on first use; nil: never
	wait    *consoleWait   // when tofu may be used
	portTag bool
}

// consoleWait tracks how long each instance has been dialled with no
// fingerprints on its console.
type consoleWait struct {
	clock clock.Clock
	grace time.Duration
	mu    sync.Mutex
	since map[string]time.Time // instance id -> first dial without fingerprints
}

// expired reports whether id has waited for fingerprints for the grace.
func (w *consoleWait) expired(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	first, ok := w.since[id]
	if !ok {
		w.since[id], first = now, now
	}
	return now.Sub(first) >= w.grace
}

func (w *consoleWait) done(id string) {
	w.mu.Lock()
	delete(w.since, id)
	w.mu.Unlock()
}

func (a sshDialer) Dial(ctx context.Context, inst fleet.Instance, expected []string) (deployer.Host, error) {
	addr := inst.Address
	if p, err := strconv.Atoi(inst.Tags[local.TagSSHPort]); a.portTag && err == nil && p > 0 {
		addr = hostPort(addr, p)
	}
	d := a.d
	if a.tofu != nil && len(expected) == 0 && a.wait.expired(inst.ID) {
		d = a.tofu
	}
	c, err := d.Dial(ctx, addr, expected)
	if err != nil {
		var unknown *remote.UnknownHostKeyError
		if remote.IsHostKeyError(err) && !(errors.As(err, &unknown) && len(unknown.Expected) == 0) {
			// A mismatch, a revoked key, or a key the console contradicts.
			// An unknown key with nothing expected yet is retried: the
			// console may print the fingerprints later.
			return nil, fmt.Errorf("%w: %w", deployer.ErrHostKeyMismatch, err)
		}
		return nil, err
	}
	if a.wait != nil {
		a.wait.done(inst.ID)
	}
	return sshHost{c}, nil
}

// Forget removes the address from known_hosts once its instance is gone.
func (a sshDialer) Forget(address string) error { return a.d.Forget(address) }

func hostPort(addr string, port int) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// sshHost adapts a remote Client to deployer.Host.
type sshHost struct{ c *remote.Client }

func (h sshHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	out, _, err := h.c.Run(ctx, cmd, stdin)
	return out, err
}

// Stream copies cmd's output to stdout as it comes: converge streams
// backups through it without holding them in memory.
func (h sshHost) Stream(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	return h.c.Stream(ctx, cmd, stdin, stdout)
}

func (h sshHost) Close() error { return h.c.Close() }
