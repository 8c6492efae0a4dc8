package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/fleet"
)

// Tags the local cloud adds to the instances it reports, besides the ones
// they were launched with.
const (
	// TagDataPath is the host-side directory that stands for the data path
	// (/mnt) on the instance: the deployer writes LABEL and data there.
	TagDataPath = "tide:data-path"
	// TagSSHPort is the port the instance serves SSH on.
	TagSSHPort = "tide:ssh-port"
)

// Defaults for Options.
const (
	DefaultNetwork = "127.0.10.0/24"
	DefaultPort    = 2222
)

// Options configures a Provider.
type Options struct {
	// StateDir is tide's state directory; the local cloud keeps its state
	// in StateDir/local. Required.
	StateDir string
	// Network is the prefix inside 127.0.0.0/8 whose addresses instances
	// get, one each (never 127.0.0.1); default DefaultNetwork.
	Network string
	// Port is the port every instance serves SSH on; default DefaultPort.
	Port int
	// BootDelay is how long a new or restarted host takes to boot.
	BootDelay time.Duration
	// Executable is the command line that runs a host; the provider
	// appends "-dir DIR" and sets TIDE_LOCAL_HOST_DIR=DIR. Default: this
	// executable with the "local-host" subcommand.
	Executable []string
	// AuthorizedKeys are the keys hosts accept for SSH, added to those in
	// AuthorizedKeysFile (an authorized_keys file). Hosts launched without
	// any key cannot be reached, so Launch refuses to.
	AuthorizedKeys     []ssh.PublicKey
	AuthorizedKeysFile string
	// StopGrace is how long Terminate waits after SIGTERM before SIGKILL;
	// default 5s.
	StopGrace time.Duration
	// Retention is how long terminated instances are remembered (so that a
	// launch retried with the same client token still finds its instance);
	// default 1h.
	Retention time.Duration
	// Clock tells the time; default the wall clock.
	Clock clock.Clock
	// Logger receives the provider's events; default discards.
	Logger *slog.Logger
}

// Provider is the local cloud. Several Providers, in this process or
// others, may share a state directory. It is safe for concurrent use.
type Provider struct {
	st        store
	network   netip.Prefix
	port      int
	bootDelay time.Duration
	exe       []string
	keys      []string
	grace     time.Duration
	retention time.Duration
	clock     clock.Clock
	logger    *slog.Logger
}

// New checks opts and returns a Provider. It starts nothing.
func New(opts Options) (*Provider, error) {
	if opts.StateDir == "" {
		return nil, errors.New("local cloud: no state directory")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local cloud: state directory: %w", err)
	}
	if opts.Network == "" {
		opts.Network = DefaultNetwork
	}
	network, err := netip.ParsePrefix(opts.Network)
	if err != nil {
		return nil, fmt.Errorf("local cloud: network: %w", err)
	}
	network = network.Masked()
	if !network.Addr().Is4() || network.Bits() < 8 || network.Bits() > 30 ||
		!netip.MustParsePrefix("127.0.0.0/8").Contains(network.Addr()) {
		return nil, fmt.Errorf("local cloud: network %s is not a /8 to /30 inside 127.0.0.0/8", network)
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Port < 1 || opts.Port > 65535 {
		return nil, fmt.Errorf("local cloud: bad port %d", opts.Port)
	}
	if opts.BootDelay < 0 {
		return nil, errors.New("local cloud: negative boot delay")
	}
	if len(opts.Executable) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local cloud: finding tide's executable: %w", err)
		}
		opts.Executable = []string{self, "local-host"}
	}
	var keys []string
	for _, k := range opts.AuthorizedKeys {
		keys = append(keys, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	}
	if opts.AuthorizedKeysFile != "" {
		fileKeys, err := readAuthorizedKeys(opts.AuthorizedKeysFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, fileKeys...)
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		st:        store{dir: filepath.Join(stateDir, "local")},
		network:   network,
		port:      opts.Port,
		bootDelay: opts.BootDelay,
		exe:       opts.Executable,
		keys:      keys,
		grace:     opts.StopGrace,
		retention: opts.Retention,
		clock:     opts.Clock,
		logger:    opts.Logger.With("component", "local_cloud"),
	}, nil
}

// Port returns the port instances serve SSH on.
func (p *Provider) Port() int { return p.port }

// List returns the fleet's instances in every state but terminated (all
// fleets' when fleetName is empty). A host is pending until it has booted
// and listens, and only then has an address; a host whose process died is
// stopped.
func (p *Provider) List(ctx context.Context, fleetName string) ([]fleet.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := p.readCompleted()
	if err != nil {
		return nil, err
	}
	var out []fleet.Instance
	for _, r := range s.Instances {
		if r.State == fleet.StateTerminated || (fleetName != "" && r.Fleet != fleetName) {
			continue
		}
		out = append(out, p.view(r))
	}
	return out, nil
}

// Instance returns one instance, terminated ones included while they are
// remembered, or a *fleet.NotFoundError.
func (p *Provider) Instance(ctx context.Context, id string) (fleet.Instance, error) {
	if err := ctx.Err(); err != nil {
		return fleet.Instance{}, err
	}
	s, err := p.readCompleted()
	if err != nil {
		return fleet.Instance{}, err
	}
	r := s.find(id)
	if r == nil {
		return fleet.Instance{}, &fleet.NotFoundError{ID: id}
	}
	return p.view(r), nil
}

// readCompleted reads the state, first completing the launches whose
// launcher died (see completeLaunches) if it holds any.
func (p *Provider) readCompleted() (*state, error) {
	s, err := p.st.read()
	if err != nil || !hasUnstarted(s) {
		return s, err
	}
	err = p.st.update(func(s *state) error {
		if !p.completeLaunches(s) {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.st.read()
}

// hasUnstarted reports whether a live record has no process id.
func hasUnstarted(s *state) bool {
	for _, r := range s.Instances {
		if r.PID == 0 && (r.State == fleet.StatePending || r.State == fleet.StateRunning) {
			return true
		}
	}
	return false
}

// completeLaunches finishes, under the state lock, the launches whose
// launcher died between recording the instance and recording its process:
// Launch does both under the lock, so a live record without a pid seen
// under it has no launcher left. The host's process is adopted when it
// started, and started otherwise, as a cloud completes a launch it has
// accepted. It reports whether it changed s.
func (p *Provider) completeLaunches(s *state) bool {
	changed := false
	for _, r := range s.Instances {
		if r.PID != 0 || (r.State != fleet.StatePending && r.State != fleet.StateRunning) {
			continue
		}
		dir := p.st.hostDir(r.ID)
		pid := findHost(dir)
		if pid == 0 {
			var err error
			if pid, err = startHost(p.exe, dir, r.ID); err != nil {
				p.logger.Warn("completing an interrupted launch failed", "instance_id", r.ID, "label", r.Label, "err", err)
				continue
			}
		}
		r.PID = pid
		changed = true
		p.logger.Info("interrupted launch completed", "instance_id", r.ID, "label", r.Label, "pid", pid)
	}
	return changed
}

// view is what a record looks like from outside, with the host's liveness
// worked out from its process and ready marker.
func (p *Provider) view(r *record) fleet.Instance {
	inst := fleet.Instance{
		ID:         r.ID,
		Label:      r.Label,
		Role:       r.Role,
		Fleet:      r.Fleet,
		Type:       r.Type,
		Zone:       r.Zone,
		State:      r.State,
		Tags:       maps.Clone(r.Tags),
		LaunchedAt: r.LaunchedAt,
	}
	if inst.Tags == nil {
		inst.Tags = map[string]string{}
	}
	dir := p.st.hostDir(r.ID)
	inst.Tags[TagDataPath] = filepath.Join(dir, rootDir, dataDir)
	inst.Tags[TagSSHPort] = strconv.Itoa(p.port)
	if r.State != fleet.StatePending && r.State != fleet.StateRunning {
		return inst
	}
	switch {
	case r.PID == 0 && p.clock.Now().Sub(r.LaunchedAt) < time.Minute:
		inst.State = fleet.StatePending // its launch is under way
	case !hostAlive(r.PID, dir):
		inst.State = fleet.StateStopped
	case p.ready(r):
		inst.State = fleet.StateRunning
		inst.Address = r.Address
	default:
		inst.State = fleet.StatePending
	}
	return inst
}

// ready reports whether the host has booted on the address it was given.
func (p *Provider) ready(r *record) bool {
	data, err := os.ReadFile(filepath.Join(p.st.hostDir(r.ID), readyFile))
	return err == nil && strings.TrimSpace(string(data)) == net.JoinHostPort(r.Address, strconv.Itoa(p.port))
}

// Launch starts one host, idempotently on spec.ClientToken: a launch with a
// token already used returns that instance (whatever its state) and starts
// nothing. The instance carries spec.AllTags() from the start. When the
// network has no free address, it returns *fleet.InsufficientCapacityError.
func (p *Provider) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	if err := ctx.Err(); err != nil {
		return fleet.Instance{}, err
	}
	if len(p.keys) == 0 {
		return fleet.Instance{}, errors.New("local cloud: no authorized keys to give the host")
	}
	var launched *record
	err := p.st.update(func(s *state) error {
		p.prune(s)
		p.completeLaunches(s)
		if spec.ClientToken != "" {
			for _, r := range s.Instances {
				if r.ClientToken == spec.ClientToken {
					launched = r
					return errUnchanged
				}
			}
		}
		addr, err := p.allocate(s)
		if err != nil {
			return &fleet.InsufficientCapacityError{Type: spec.Type, Zone: spec.Zone, Err: err}
		}
		id, err := newID()
		if err != nil {
			return err
		}
		r := &record{
			ID:          id,
			ClientToken: spec.ClientToken,
			Fleet:       spec.Fleet,
			Role:        spec.Role,
			Label:       spec.Label,
			Type:        orDefault(spec.Type, "local"),
			Zone:        orDefault(spec.Zone, "local"),
			Image:       spec.Image,
			Tags:        spec.AllTags(),
			Address:     addr,
			State:       fleet.StatePending,
			LaunchedAt:  p.clock.Now().UTC(),
		}
		if err := p.prepare(r); err != nil {
			return err
		}
		// Record the instance before its process exists: should tide die
		// in between, the record (shown stopped) lets Terminate find and
		// kill the process by the id in its environment; no orphan.
		s.Instances = append(s.Instances, r)
		if err := p.st.write(s); err != nil {
			_ = os.RemoveAll(p.st.hostDir(id))
			return err
		}
		pid, err := startHost(p.exe, p.st.hostDir(id), id)
		if err != nil {
			s.Instances = s.Instances[:len(s.Instances)-1]
			_ = os.RemoveAll(p.st.hostDir(id))
			if werr := p.st.write(s); werr != nil {
				return errors.Join(err, werr)
			}
			return err
		}
		r.PID = pid
		launched = r
		p.logger.Info("local host launched", "instance_id", id, "label", r.Label, "addr", addr, "pid", pid)
		return nil
	})
	if err != nil {
		return fleet.Instance{}, fmt.Errorf("launching %s: %w", spec.Label, err)
	}
	return p.view(launched), nil
}

// prepare creates the host's directory and its config.
func (p *Provider) prepare(r *record) error {
	dir := p.st.hostDir(r.ID)
	if err := os.MkdirAll(filepath.Join(dir, rootDir, dataDir), 0o755); err != nil {
		return fmt.Errorf("creating host directory: %w", err)
	}
	return p.writeHostConfig(r)
}

func (p *Provider) writeHostConfig(r *record) error {
	data, err := json.MarshalIndent(hostConfig{
		ID:             r.ID,
		Address:        r.Address,
		Port:           p.port,
		BootDelay:      p.bootDelay,
		AuthorizedKeys: p.keys,
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(p.st.hostDir(r.ID), hostConfigFile), data, 0o644)
}

// allocate hands out the next free address of the network, round-robin,
// skipping addresses held by instances not terminated and addresses where
// something else already listens on the port.
func (p *Provider) allocate(s *state) (string, error) {
	used := map[string]bool{}
	for _, r := range s.Instances {
		if r.State != fleet.StateTerminated {
			used[r.Address] = true
		}
	}
	size := 1 << (32 - p.network.Bits())
	base := p.network.Addr().As4()
	baseN := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := range size {
		off := (s.Next + i) % size
		if off == 0 || off == size-1 { // network and broadcast addresses
			continue
		}
		n := baseN + uint32(off)
		a := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		if a == netip.MustParseAddr("127.0.0.1") || used[a.String()] || !p.free(a) {
			continue
		}
		s.Next = (off + 1) % size
		return a.String(), nil
	}
	return "", fmt.Errorf("no free address in %s", p.network)
}

// free reports whether nothing listens on a:port.
func (p *Provider) free(a netip.Addr) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(p.port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// prune forgets terminated instances older than the retention, and their
// directories.
func (p *Provider) prune(s *state) {
	cutoff := p.clock.Now().Add(-p.retention)
	kept := s.Instances[:0]
	for _, r := range s.Instances {
		if r.State == fleet.StateTerminated && r.TerminatedAt.Before(cutoff) {
			_ = os.RemoveAll(p.st.hostDir(r.ID))
			continue
		}
		kept = append(kept, r)
	}
	s.Instances = kept
}

// Terminate stops the host's processes, frees its address and removes its
// filesystem. It returns *fleet.NotFoundError for an id it does not know;
// terminating a terminated instance does nothing.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	var r record
	err := p.st.update(func(s *state) error {
		rec := s.find(id)
		if rec == nil {
			return &fleet.NotFoundError{ID: id}
		}
		r = *rec
		if rec.State == fleet.StateTerminated {
			return errUnchanged
		}
		rec.State = fleet.StateShuttingDown
		return nil
	})
	if err != nil {
		return fmt.Errorf("terminating %s: %w", id, err)
	}
	if r.State == fleet.StateTerminated {
		return nil
	}
	dir := p.st.hostDir(id)
	if err := stopHost(ctx, p.clock, r.PID, dir, id, p.grace); err != nil {
		return fmt.Errorf("terminating %s: %w", id, err)
	}
	err = p.st.update(func(s *state) error {
		rec := s.find(id)
		if rec == nil {
			return &fleet.NotFoundError{ID: id}
		}
		rec.State = fleet.StateTerminated
		rec.TerminatedAt = p.clock.Now().UTC()
		rec.PID = 0
		_ = os.RemoveAll(filepath.Join(dir, rootDir))
		_ = os.Remove(filepath.Join(dir, readyFile))
		return nil
	})
	if err != nil {
		return fmt.Errorf("terminating %s: %w", id, err)
	}
	p.logger.Info("local host terminated", "instance_id", id, "label", r.Label, "addr", r.Address)
	return nil
}

// Start boots a stopped host again, as a cloud starts a stopped
// instance: the host whose process died (this machine rebooted, or it was
// killed) gets a new process with its filesystem, its data and its host
// key, on the address it had. It returns once the process is started; the
// instance shows pending until the host has booted. A host that runs or
// boots is left alone. It returns *fleet.NotFoundError for an id it does
// not know, an error for a host that is terminated or shutting down, and
// an error naming the address when something else now holds it (another
// instance, or a process listening on it).
func (p *Provider) Start(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// A process killed a moment ago may hold its socket while the kernel
	// tears it down: give its address that long, outside the state lock.
	if s, err := p.st.read(); err == nil {
		if r := s.find(id); r != nil && !hostAlive(r.PID, p.st.hostDir(id)) {
			if a, err := netip.ParseAddr(r.Address); err == nil {
				p.waitFree(ctx, a, p.grace)
			}
		}
	}
	var started *record
	err := p.st.update(func(s *state) error {
		completed := p.completeLaunches(s)
		r := s.find(id)
		if r == nil {
			return &fleet.NotFoundError{ID: id}
		}
		if r.State != fleet.StatePending && r.State != fleet.StateRunning {
			return fmt.Errorf("instance is %s: it cannot be started", r.State)
		}
		dir := p.st.hostDir(id)
		if hostAlive(r.PID, dir) { // booting or running
			if completed {
				return nil
			}
			return errUnchanged
		}
		if pid := findHost(dir); pid != 0 {
			r.PID = pid // its process runs under another pid: adopt it
			return nil
		}
		for _, o := range s.Instances {
			if o.ID != id && o.State != fleet.StateTerminated && o.Address == r.Address {
				return fmt.Errorf("its address %s is held by instance %s", r.Address, o.ID)
			}
		}
		addr, err := netip.ParseAddr(r.Address)
		if err != nil {
			return fmt.Errorf("its address %q: %w", r.Address, err)
		}
		if !p.free(addr) {
			return fmt.Errorf("its address %s: something else listens on port %d", r.Address, p.port)
		}
		// Written afresh: the host reads its address, port, boot delay and
		// keys from it, and the provider may have new ones.
		if err := p.writeHostConfig(r); err != nil {
			return err
		}
		_ = os.Remove(filepath.Join(dir, readyFile)) // the last boot's
		pid, err := startHost(p.exe, dir, id)
		if err != nil {
			return err
		}
		r.PID = pid
		started = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("starting %s: %w", id, err)
	}
	if started != nil {
		p.logger.Info("local host started", "instance_id", id, "label", started.Label, "addr", started.Address, "pid", started.PID)
	}
	return nil
}

// waitFree polls until nothing listens on a:port, for at most d.
func (p *Provider) waitFree(ctx context.Context, a netip.Addr, d time.Duration) {
	deadline := p.clock.Now().Add(d)
	for !p.free(a) && p.clock.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(20 * time.Millisecond):
		}
	}
}

// HostKeyFingerprints returns the SHA256 host key fingerprints the host
// printed on its console log at its last boot; none before it has booted.
func (p *Provider) HostKeyFingerprints(ctx context.Context, id string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := p.st.read()
	if err != nil {
		return nil, err
	}
	if s.find(id) == nil {
		return nil, &fleet.NotFoundError{ID: id}
	}
	data, err := os.ReadFile(filepath.Join(p.st.hostDir(id), consoleFile))
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading console of %s: %w", id, err)
	}
	fps := parseFingerprints(string(data))
	if fps == nil {
		fps = []string{}
	}
	return fps, nil
}

// ConsoleOutput returns the host's console log, as EC2's GetConsoleOutput
// would (empty before the host has written anything).
func (p *Provider) ConsoleOutput(ctx context.Context, id string) (string, error) {
	if _, err := p.Instance(ctx, id); err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(p.st.hostDir(id), consoleFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading console of %s: %w", id, err)
	}
	return string(data), nil
}

// HostDir returns the directory that stands for instance id's machine
// (its root filesystem is HostDir/root).
func (p *Provider) HostDir(id string) string { return p.st.hostDir(id) }

func readAuthorizedKeys(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local cloud: reading authorized keys: %w", err)
	}
	var keys []string
	for len(data) > 0 {
		k, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			break // no more keys (ParseAuthorizedKey skips comments and blanks)
		}
		keys = append(keys, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
		data = rest
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("local cloud: no keys in %s", path)
	}
	return keys, nil
}

// newID returns an EC2-like instance id.
func newID() (string, error) {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making instance id: %w", err)
	}
	return "i-" + hex.EncodeToString(b)[:17], nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
