package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/fleet"
)

// TagDataPath is the instance tag that overrides the schedule's data path
// on one host (a local-cloud host's data directory is its own).
const TagDataPath = "tide:data-path"

// DefaultDataPath is the data path when neither the schedule nor the
// instance gives one: where EC2 mounts instance storage.
const DefaultDataPath = "/mnt"

// Timeouts bound every wait of the pipeline; none waits forever.
type Timeouts struct {
	// Address is how long a launched instance may take to get an address.
	Address time.Duration
	// SSH is how long a host with an address may take to answer SSH.
	SSH time.Duration
	// SSHRemove is how long a host being removed may take to answer SSH
	// before BeforeTerminate is called with no host.
	SSHRemove time.Duration
	// Throttle is how long a throttled cloud call is retried.
	Throttle time.Duration
	// PollMin and PollMax bound the backoff between polls and dials.
	PollMin, PollMax time.Duration
	// AddressPollMax caps the backoff between polls for an address: all
	// waiting hosts share one listing, and polling coarsely would inflate
	// the launch-to-address time that becomes the predictor's lead time.
	AddressPollMax time.Duration
}

// DefaultTimeouts are sensible for EC2.
var DefaultTimeouts = Timeouts{
	Address:   5 * time.Minute,
	SSH:       5 * time.Minute,
	SSHRemove: 30 * time.Second,
	Throttle:  2 * time.Minute,
	PollMin:   250 * time.Millisecond,
	PollMax:   10 * time.Second,

	AddressPollMax: 2 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.Address, d.Address)
	set(&t.SSH, d.SSH)
	set(&t.SSHRemove, d.SSHRemove)
	set(&t.Throttle, d.Throttle)
	set(&t.PollMin, d.PollMin)
	set(&t.PollMax, d.PollMax)
	set(&t.AddressPollMax, d.AddressPollMax)
	return t
}

// Options configure a Fleet. Cloud, Dialer, CachePath, Name and Roles are
// required.
type Options struct {
	// Name is the fleet's name, as tagged on its instances.
	Name string
	// Cloud lists, launches and terminates instances.
	Cloud Cloud
	// HostKeys gives a new instance's fingerprints; nil when the cloud
	// cannot tell (known_hosts alone then decides).
	HostKeys HostKeys
	// Dialer connects to hosts.
	Dialer Dialer
	// CachePath is the label cache file; a lock file sits next to it.
	CachePath string
	// Roles are the schedule's roles.
	Roles []Role
	// DataPath is the hosts' data directory, where LABEL is written; an
	// instance's TagDataPath tag overrides it. Default DefaultDataPath.
	DataPath string
	// Concurrency is the most hosts worked on at once. Default 10.
	Concurrency int
	// Deployer converges hosts after labelling; nil stops the pipeline at
	// the label and leaves kept hosts alone.
	Deployer Deployer
	// Drainer is called before each termination; nil terminates at once.
	Drainer Drainer
	// Progress observes each host's steps; may be nil.
	Progress Progress
	Clock    clock.Clock
	Logger   *slog.Logger
	Timeouts Timeouts
}

// Fleet reconciles one fleet's hosts with desired counts per role.
type Fleet struct {
	o     Options
	t     Timeouts
	roles map[string]Role
	log   *slog.Logger
	clk   clock.Clock
}

// New checks the options and returns a Fleet.
func New(o Options) (*Fleet, error) {
	switch {
	case o.Name == "":
		return nil, errors.New("deployer: fleet name is required")
	case o.Cloud == nil:
		return nil, errors.New("deployer: cloud is required")
	case o.Dialer == nil:
		return nil, errors.New("deployer: dialer is required")
	case o.CachePath == "":
		return nil, errors.New("deployer: label cache path is required")
	}
	f := &Fleet{o: o, t: o.Timeouts.withDefaults(), roles: map[string]Role{}, log: o.Logger, clk: o.Clock}
	for _, r := range o.Roles {
		if r.Name == "" {
			return nil, errors.New("deployer: a role has no name")
		}
		if _, dup := f.roles[r.Name]; dup {
			return nil, fmt.Errorf("deployer: role %q given twice", r.Name)
		}
		f.roles[r.Name] = r
	}
	if f.o.Concurrency <= 0 {
		f.o.Concurrency = 10
	}
	if f.o.DataPath == "" {
		f.o.DataPath = DefaultDataPath
	}
	if f.clk == nil {
		f.clk = clock.Real{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("component", "deployer", "fleet", o.Name)
	return f, nil
}

// Reconcile converges the fleet to desired hosts per role, once: it
// launches the labels that have no host, finishes hosts a crashed run left
// unlabelled, and removes duplicates and hosts above the count, highest
// label first. Roles missing from desired are left alone.
//
// A stopped instance that holds a wanted label is started again when the
// cloud is a Starter, then waited for, labelled and converged as a launch
// is (ActionStarted): its disk, data and host key are kept. When the cloud
// cannot start it, its label is launched anew and it is removed, but on a
// Stateful role, where it is reported failed with ErrStoppedWithData and
// nothing is launched. A stateless role's stopped instance whose last
// start failed (the label cache remembers it) is removed too
// (ReasonStartFailed) and its label launched anew; a stateful one's is
// started again, its error counting the failed starts. Stopped hosts to
// remove are terminated; on a Stateful role with a Drainer they are
// started first, so that their data is backed up, but for a duplicate
// beside a live holder when the Drainer is a DuplicateDrainer.
//
// A failure on one host does not stop the others: it is in the report,
// whose Err says whether any host failed. The returned error is for
// failures of the whole reconcile (listing, the cache, the lock).
func (f *Fleet) Reconcile(ctx context.Context, desired map[string]int) (Report, error) {
	return f.ReconcileUntil(ctx, nil, desired)
}

// ReconcileUntil is Reconcile that starts no new host work once
// stopStarting is closed: work in flight goes on under ctx, hosts not yet
// started are reported failed with ErrStopping. A service shutting down
// closes it at once and cancels ctx only when its grace period ends.
func (f *Fleet) ReconcileUntil(ctx context.Context, stopStarting <-chan struct{}, desired map[string]int) (Report, error) {
	for role, n := range desired {
		if n < 0 {
			return Report{}, fmt.Errorf("reconciling: role %s: negative count %d", role, n)
		}
	}
	_, canStart := f.o.Cloud.(Starter)
	return f.run(ctx, stopStarting, "reconcile done", func(x *pass, hosts []Observed) ([]HostResult, error) {
		return x.execute(ctx, MakePlan(f.o.Roles, desired, hosts, PlanOptions{CanStart: canStart})), nil
	})
}

// Down removes every host of the fleet, through the Drainer, but those of
// Fixed roles; stopped instances (a local host whose process died) too,
// those of Stateful roles started first to be backed up (see Reconcile).
func (f *Fleet) Down(ctx context.Context) (Report, error) {
	return f.run(ctx, nil, "reconcile done", func(x *pass, hosts []Observed) ([]HostResult, error) {
		return x.execute(ctx, PlanDown(f.o.Roles, hosts)), nil
	})
}

// run is a reconcile: observe, then act on what was observed, then record,
// under the cache's lock. act is given the live hosts and the stopped
// (and stopping) instances, with the labels their tags give them. An error
// from act ends the run before any host was worked on; msg is the message
// of the closing log line.
func (f *Fleet) run(ctx context.Context, stopStarting <-chan struct{}, msg string, act func(*pass, []Observed) ([]HostResult, error)) (Report, error) {
	rep := Report{Started: f.clk.Now()}
	unlock, err := lockFile(f.o.CachePath + ".lock")
	if err != nil {
		return rep, err
	}
	defer unlock()
	cache, err := loadCache(f.o.CachePath, f.o.Name)
	if err != nil {
		return rep, err
	}
	x := &pass{f: f, cache: cache, lister: &lister{f: f}, stop: stopStarting}
	insts, _, err := x.lister.list(ctx, 0)
	if err != nil {
		return rep, fmt.Errorf("listing fleet %s: %w", f.o.Name, err)
	}

	hosts, ask, stale := cache.f.resolve(insts)
	gone := cache.f.settledStarts(insts)
	if len(stale) > 0 || len(gone) > 0 {
		err := cache.update(func(c *cacheFile) {
			for _, id := range stale {
				delete(c.Hosts, id)
			}
			for _, id := range gone {
				delete(c.Starts, id)
			}
		})
		if err != nil {
			return rep, err
		}
	}
	f.log.Debug("fleet observed", "instances", len(insts), "labelled", len(hosts), "unlabelled", len(ask), "cache_dropped", len(stale))

	for _, inst := range insts {
		if stopped(inst) {
			hosts = append(hosts, Observed{Instance: inst, Label: instanceLabel(inst), StartFailures: cache.f.Starts[inst.ID].Failures})
		}
	}
	asked, failed := x.askLabels(ctx, ask)
	hosts = append(hosts, asked...)
	rep.Hosts = append(rep.Hosts, failed...)

	done, err := act(x, hosts)
	if err != nil {
		return rep, err
	}
	if len(rep.Hosts) == 0 {
		rep.Hosts = done // no copy of a large fleet's results
	} else {
		rep.Hosts = append(rep.Hosts, done...)
	}
	rep.finish(f.clk.Now())
	// A pass that changed nothing (the service's every step) logs at debug.
	level := slog.LevelDebug
	if rep.Changed() {
		level = slog.LevelInfo
	}
	f.log.Log(ctx, level, msg, "launched", rep.Count(ActionLaunched), "started", rep.Count(ActionStarted), "kept", rep.Count(ActionKept),
		"removed", rep.Count(ActionRemoved), "failed", rep.Count(ActionFailed))
	return rep, nil
}

// HostStatus is one host as `tide status` shows it.
type HostStatus struct {
	Label      string         `json:"label"`
	Role       string         `json:"role"`
	InstanceID string         `json:"instance_id"`
	Address    string         `json:"address"`
	Zone       string         `json:"zone"`
	State      fleet.State    `json:"state"`
	Type       string         `json:"type,omitempty"`
	LaunchedAt time.Time      `json:"launched_at"`
	Age        time.Duration  `json:"age_ns"`
	Labelled   bool           `json:"labelled"`
	Instance   fleet.Instance `json:"-"`
}

// Status lists the fleet's instances with their labels, from tags and the
// label cache; it asks no host anything and changes nothing.
func (f *Fleet) Status(ctx context.Context) ([]HostStatus, error) {
	cache, err := loadCache(f.o.CachePath, f.o.Name)
	if err != nil {
		return nil, err
	}
	insts, _, err := (&lister{f: f}).list(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("listing fleet %s: %w", f.o.Name, err)
	}
	now := f.clk.Now()
	out := make([]HostStatus, 0, len(insts))
	for _, inst := range insts {
		hs := HostStatus{Label: instanceLabel(inst), Role: inst.Role, InstanceID: inst.ID, Address: inst.Address,
			Zone: inst.Zone, State: inst.State, Type: inst.Type, LaunchedAt: inst.LaunchedAt, Instance: inst}
		if !inst.LaunchedAt.IsZero() {
			hs.Age = now.Sub(inst.LaunchedAt)
		}
		if e, ok := cache.f.Hosts[inst.ID]; ok && e.Address == inst.Address {
			hs.Label, hs.Labelled = e.Label, true
		}
		if hs.Role == "" {
			hs.Role, _, _ = fleet.ParseLabel(hs.Label)
		}
		out = append(out, hs)
	}
	rs := make([]HostResult, len(out))
	idx := map[string]HostStatus{}
	for i, h := range out {
		rs[i] = HostResult{Label: h.Label, Role: h.Role, InstanceID: h.InstanceID}
		idx[h.InstanceID] = h
	}
	sortResults(rs)
	for i, r := range rs {
		out[i] = idx[r.InstanceID]
	}
	return out, nil
}

// lister lists the fleet for a reconcile. Polls for addresses share it:
// a poll gets the last listing when it is newer than the one the poller saw
// before, so many hosts waiting at once do not each call List.
type lister struct {
	f    *Fleet
	mu   sync.Mutex
	seq  int // number of the last listing
	last []fleet.Instance
}

// current returns the number of the last listing. A listing numbered
// higher was taken after current returned.
func (l *lister) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// list returns a listing newer than the one numbered seen, and its number.
func (l *lister) list(ctx context.Context, seen int) ([]fleet.Instance, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seq > seen {
		return l.last, l.seq, nil
	}
	var insts []fleet.Instance
	err := l.f.retryThrottled(ctx, func() error {
		var err error
		insts, err = l.f.o.Cloud.List(ctx, l.f.o.Name)
		return err
	})
	if err != nil {
		return nil, l.seq, err
	}
	l.seq++
	l.last = insts
	return insts, l.seq, nil
}

// retryThrottled calls fn again, with backoff, while the cloud throttles
// it and the throttle deadline has not passed.
func (f *Fleet) retryThrottled(ctx context.Context, fn func() error) error {
	deadline := f.clk.Now().Add(f.t.Throttle)
	backoff := f.t.PollMin
	for {
		err := fn()
		if err == nil || !fleet.IsThrottled(err) {
			return err
		}
		if !f.clk.Now().Add(backoff).Before(deadline) {
			return err
		}
		f.log.Debug("cloud throttled, backing off", "backoff", backoff)
		if err := f.sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, f.t.PollMax)
	}
}

// sleep waits d on the fleet's clock or until ctx is done.
func (f *Fleet) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.clk.After(d):
		return nil
	}
}

// stopped reports whether an instance is stopped or stopping: no host, but
// one that may be started again with its disk.
func stopped(inst fleet.Instance) bool {
	return inst.State == fleet.StateStopped || inst.State == fleet.StateStopping
}

func (f *Fleet) dataPath(inst fleet.Instance) string {
	if p := inst.Tags[TagDataPath]; p != "" {
		return p
	}
	return f.o.DataPath
}

// Connect dials one of the fleet's hosts that is already up (for tide
// deploy and status), retrying for at most the removal SSH timeout and
// verifying its host key as the pipeline does.
func (f *Fleet) Connect(ctx context.Context, inst fleet.Instance) (Host, error) {
	h, err := f.connect(ctx, inst, f.t.SSHRemove)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s at %s: %w", instanceLabel(inst), inst.Address, err)
	}
	return h, nil
}
