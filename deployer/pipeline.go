package deployer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tideops/tide/fleet"
)

// pass is one reconcile's acting part.
type pass struct {
	f      *Fleet
	cache  *labelCache
	lister *lister
	// stop, when closed, lets no new host work start (nil: never).
	stop <-chan struct{}
}

// ClientToken is the launch token of a label's generation: the same fleet,
// label and generation always give the same token, so launching again
// after a crash returns the instance the first launch made.
func ClientToken(fleetName, label string, generation int) string {
	sum := sha256.Sum256([]byte(fleetName + "\x00" + label + "\x00" + strconv.Itoa(generation)))
	return "tide-" + hex.EncodeToString(sum[:16])
}

func (x *pass) emit(e Event) {
	if x.f.o.Progress == nil {
		return
	}
	e.At = x.f.clk.Now()
	x.f.o.Progress.Update(e)
}

func (x *pass) step(r *HostResult, s Step) {
	x.emit(Event{Label: r.Label, Role: r.Role, InstanceID: r.InstanceID, Address: r.Address, Step: s})
}

// done records a host's outcome: err nil means r.Action happened.
func (x *pass) done(r *HostResult, err error) HostResult {
	if err != nil {
		r.Intended, r.Action, r.Err, r.Kind = r.Action, ActionFailed, err, Kind(err)
		x.f.log.Warn("host failed", "label", r.Label, "role", r.Role, "instance_id", r.InstanceID,
			"intended", string(r.Intended), "error_kind", r.Kind, "err", err)
		x.emit(Event{Label: r.Label, Role: r.Role, InstanceID: r.InstanceID, Address: r.Address, Step: StepFailed, Action: ActionFailed, Err: err})
		return *r
	}
	level := slog.LevelInfo
	if r.Action == ActionKept {
		level = slog.LevelDebug
	}
	// Asked first: the attributes cost allocations, per host of every
	// reconcile, even when the handler then drops the record.
	if ctx := context.Background(); x.f.log.Enabled(ctx, level) {
		x.f.log.Log(ctx, level, "host done", "label", r.Label, "role", r.Role, "instance_id", r.InstanceID, "address", r.Address, "action", string(r.Action))
	}
	if x.f.o.Progress != nil {
		x.emit(Event{Label: r.Label, Role: r.Role, InstanceID: r.InstanceID, Address: r.Address, Step: StepDone, Action: r.Action, Durations: r.Durations})
	}
	return *r
}

// pool runs tasks with at most n at once; a task not started before ctx
// is done gets ctx's error through start's false result.
type pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
	mu  sync.Mutex
	out []HostResult
}

// newPool returns a pool of n slots for about size results.
func newPool(n, size int) *pool {
	return &pool{sem: make(chan struct{}, n), out: make([]HostResult, 0, size)}
}

// acquire takes a slot; it fails with ErrStopping once stop is closed (a
// nil stop never is) and with ctx's error when ctx ends first.
func (p *pool) acquire(ctx context.Context, stop <-chan struct{}) error {
	select {
	case <-stop:
		return ErrStopping
	default:
	}
	select {
	case p.sem <- struct{}{}:
		select {
		case <-stop: // both were ready: stopping wins
			<-p.sem
			return ErrStopping
		default:
			return nil
		}
	case <-stop:
		return ErrStopping
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) release() { <-p.sem }

func (p *pool) add(r HostResult) {
	p.mu.Lock()
	p.out = append(p.out, r)
	p.mu.Unlock()
}

func (p *pool) wait() []HostResult {
	p.wg.Wait()
	return p.out
}

// execute carries a plan out: launches, starts, unfinished and kept hosts
// in parallel; removals in parallel across roles and one at a time,
// highest label first, within a role.
func (x *pass) execute(ctx context.Context, p Plan) []HostResult {
	x.f.log.Debug("plan made", "launch", len(p.Launch), "start", len(p.Start), "keep", len(p.Keep), "stuck", len(p.Stuck), "remove", len(p.Remove))
	pl := newPool(x.f.o.Concurrency, len(p.Launch)+len(p.Start)+len(p.Keep)+len(p.Stuck)+len(p.Remove))
	run := func(r HostResult, task func(*HostResult) error) {
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			if err := pl.acquire(ctx, x.stop); err != nil {
				pl.add(x.done(&r, err))
				return
			}
			defer pl.release()
			pl.add(x.done(&r, task(&r)))
		}()
	}
	for _, s := range p.Launch {
		r := HostResult{Label: s.Label, Role: s.Role, Zone: s.Zone, Action: ActionLaunched}
		run(r, func(r *HostResult) error { return x.launch(ctx, r, s) })
	}
	for _, h := range p.Start {
		r := resultFor(h, ActionStarted)
		run(r, func(r *HostResult) error { return x.startHost(ctx, r, h) })
	}
	for _, h := range p.Stuck {
		r := resultFor(h, ActionKept)
		pl.add(x.done(&r, fmt.Errorf("%s (%s) is %w: start it, or `tide replace %[1]s --discard-data --reason …`",
			r.Label, h.Instance.ID, ErrStoppedWithData)))
	}
	for _, h := range p.Keep {
		r := resultFor(h, ActionKept)
		switch {
		case !h.Confirmed:
			run(r, func(r *HostResult) error { return x.adopt(ctx, r, h) })
		case x.f.o.Deployer != nil:
			run(r, func(r *HostResult) error { return x.converge(ctx, r, h.Instance) })
		default:
			pl.add(x.done(&r, nil))
		}
	}
	byRole := map[string][]Removal{}
	var order []string
	for _, rm := range p.Remove {
		role := roleOf(rm.Observed)
		if _, ok := byRole[role]; !ok {
			order = append(order, role)
		}
		byRole[role] = append(byRole[role], rm)
	}
	for _, role := range order {
		rms := byRole[role]
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			for _, rm := range rms {
				r := resultFor(rm.Observed, ActionRemoved)
				r.Reason = rm.Reason
				if err := pl.acquire(ctx, x.stop); err != nil {
					pl.add(x.done(&r, err))
					continue
				}
				pl.add(x.done(&r, x.remove(ctx, &r, rm.Instance, removeOpts{startStopped: true, holder: rm.Holder})))
				pl.release()
			}
		}()
	}
	return pl.wait()
}

func roleOf(h Observed) string {
	if role, _, ok := fleet.ParseLabel(h.Label); ok {
		return role
	}
	return h.Instance.Role
}

func resultFor(h Observed, a Action) HostResult {
	return HostResult{Label: h.Label, Role: roleOf(h), InstanceID: h.Instance.ID, Address: h.Instance.Address,
		Zone: h.Instance.Zone, Action: a}
}

// launch runs the whole pipeline for a label without a host.
func (x *pass) launch(ctx context.Context, r *HostResult, s Slot) error {
	t0 := x.f.clk.Now()
	x.step(r, StepLaunching)
	inst, err := x.launchInstance(ctx, s)
	if err != nil {
		return &StepError{Step: StepLaunching, Err: fmt.Errorf("launching %s: %w", s.Label, err)}
	}
	r.InstanceID = inst.ID
	x.step(r, StepWaitingAddress)
	inst, err = x.waitAddress(ctx, inst, 0)
	if err != nil {
		return &StepError{Step: StepWaitingAddress, Err: fmt.Errorf("waiting for %s's address: %w", s.Label, err)}
	}
	r.Address, r.Durations.LaunchToAddress = inst.Address, x.f.clk.Now().Sub(t0)
	return x.finish(ctx, r, inst, true)
}

// start runs the launch pipeline from the start of a stopped host that
// holds a wanted label: the host is started, then waited for, connected to
// (its host key checked), labelled and converged as a new one is. Its
// durations are measured as a launch's, though no role's lead time counts
// them.
func (x *pass) start(ctx context.Context, r *HostResult, inst fleet.Instance) error {
	t0 := x.f.clk.Now()
	inst, err := x.startInstance(ctx, r, inst)
	if err != nil {
		return err
	}
	r.Durations.LaunchToAddress = x.f.clk.Now().Sub(t0)
	return x.finish(ctx, r, inst, true)
}

// startHost starts a stopped host that holds a wanted label (start) and
// records the outcome in the label cache: a failure (one that is not the
// reconcile's cancellation) counts one more failed start in a row, a
// success forgets them. A stateless role's host whose start failed is
// replaced by the next reconcile; a stateful one's error says how many
// starts failed and how to give its data up.
func (x *pass) startHost(ctx context.Context, r *HostResult, h Observed) error {
	id := h.Instance.ID
	if x.f.roles[r.Role].Stateful && h.StartFailures > 0 {
		// A host that keeps failing to boot is not tried at every step of
		// tide serve's loop: each try holds the fleet for the start's
		// deadline.
		if rec, ok := x.cache.startRecord(id); ok {
			if next := rec.At.Add(startBackoff(h.StartFailures)); x.f.clk.Now().Before(next) {
				return &StepError{Step: StepStarting, Err: fmt.Errorf("starting %s (%s): %d failed starts in a row, the next try at %s (%s holds the role's data; to give its data up, `tide replace %s --discard-data --reason …`)",
					r.Label, id, h.StartFailures, next.UTC().Format(time.RFC3339), id, r.Label)}
			}
		}
	}
	err := x.start(ctx, r, h.Instance)
	if err == nil {
		if h.StartFailures == 0 {
			return nil
		}
		return x.cache.update(func(c *cacheFile) { delete(c.Starts, id) })
	}
	if ctx.Err() != nil || errors.Is(err, ErrStopping) {
		return err
	}
	n := h.StartFailures + 1
	rec := startRecord{Failures: n, At: x.f.clk.Now()}
	if cerr := x.cache.update(func(c *cacheFile) { c.Starts[id] = rec }); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if x.f.roles[r.Role].Stateful {
		return fmt.Errorf("%w (%d failed starts in a row: %s holds the role's data and is started again at each reconcile; to give its data up, `tide replace %s --discard-data --reason …`)",
			err, n, id, r.Label)
	}
	return fmt.Errorf("%w (the next reconcile terminates %s and launches %s anew)", err, id, r.Label)
}

// startBackoff is how long a stateful role's stopped host whose start
// failed n times in a row waits for the next try: 30 s, doubling, at most
// 10 minutes.
func startBackoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// startLag is how many listings after a start may still show the instance
// stopped before that counts as its start having failed: a listing may lag
// behind the start, as one may miss an instance just launched.
const startLag = 2

// startInstance starts a stopped instance and waits for its address.
func (x *pass) startInstance(ctx context.Context, r *HostResult, inst fleet.Instance) (fleet.Instance, error) {
	st, ok := x.f.o.Cloud.(Starter)
	if !ok {
		return inst, &StepError{Step: StepStarting, Err: fmt.Errorf("starting %s (%s): the cloud cannot start instances", r.Label, inst.ID)}
	}
	x.step(r, StepStarting)
	if err := x.f.retryThrottled(ctx, func() error { return st.Start(ctx, inst.ID) }); err != nil {
		return inst, &StepError{Step: StepStarting, Err: fmt.Errorf("starting %s (%s): %w", r.Label, inst.ID, err)}
	}
	x.f.log.Info("stopped host started", "label", r.Label, "role", r.Role, "instance_id", inst.ID)
	// Whatever address a listing gave it stopped is not one it serves on.
	inst.State, inst.Address = fleet.StatePending, ""
	x.step(r, StepWaitingAddress)
	inst, err := x.waitAddress(ctx, inst, startLag)
	if err != nil {
		return inst, &StepError{Step: StepWaitingAddress, Err: fmt.Errorf("waiting for %s's address: %w", r.Label, err)}
	}
	r.Address = inst.Address
	return inst, nil
}

// launchInstance launches a label with its generation's token. When the
// cloud answers with an instance that is gone (the token was spent on a
// host since terminated), the label moves to the next generation.
func (x *pass) launchInstance(ctx context.Context, s Slot) (fleet.Instance, error) {
	role := x.f.roles[s.Role]
	rec := x.cache.launchRecord(s.Label)
	if rec.Generation == 0 {
		rec.Generation = 1
		if err := x.cache.update(func(c *cacheFile) { c.Launches[s.Label] = rec }); err != nil {
			return fleet.Instance{}, err
		}
	}
	for range 3 {
		spec := fleet.LaunchSpec{
			ClientToken: ClientToken(x.f.o.Name, s.Label, rec.Generation),
			Fleet:       x.f.o.Name, Role: s.Role, Label: s.Label,
			Type: role.Type, Zone: s.Zone, Image: role.Image,
		}
		var inst fleet.Instance
		err := x.f.retryThrottled(ctx, func() error {
			var err error
			inst, err = x.f.o.Cloud.Launch(ctx, spec)
			return err
		})
		if err != nil && !fleet.IsNotFound(err) {
			return fleet.Instance{}, err
		}
		if err == nil && inst.State.Live() {
			rec.InstanceID = inst.ID
			if err := x.cache.update(func(c *cacheFile) { c.Launches[s.Label] = rec }); err != nil {
				return inst, err
			}
			return inst, nil
		}
		x.f.log.Info("client token spent on a gone instance, next generation", "label", s.Label,
			"generation", rec.Generation, "instance_id", inst.ID)
		rec = launchRecord{Generation: rec.Generation + 1}
		if err := x.cache.update(func(c *cacheFile) { c.Launches[s.Label] = rec }); err != nil {
			return fleet.Instance{}, err
		}
	}
	return fleet.Instance{}, fmt.Errorf("%w: every launch returned an instance that is gone", ErrInstanceGone)
}

// waitAddress polls the cloud's list until the instance has an address.
// It gives up early, with ErrInstanceGone, when the instance leaves the live
// states, or when, once listed, it is missing from two listings in a row:
// List leaves out terminated instances, and an instance that fails to
// launch goes from pending to terminated (a single miss may be a listing
// that lags, as an instance just launched may be missing from the first).
// lag is how many listings may still show it stopped or stopping (one just
// started) before that counts as gone; 0 for any other wait.
func (x *pass) waitAddress(ctx context.Context, inst fleet.Instance, lag int) (fleet.Instance, error) {
	deadline := x.f.clk.Now().Add(x.f.t.Address)
	backoff := x.f.t.PollMin
	seen := x.lister.current()
	listed, misses := false, 0
	for {
		if inst.Address != "" {
			return inst, nil
		}
		if !x.f.clk.Now().Add(backoff).Before(deadline) {
			return inst, fmt.Errorf("%w (%s)", ErrAddressTimeout, x.f.t.Address)
		}
		if err := x.f.sleep(ctx, backoff); err != nil {
			return inst, err
		}
		backoff = min(backoff*2, x.f.t.PollMax)
		insts, seq, err := x.lister.list(ctx, seen)
		if err != nil {
			return inst, err
		}
		seen = seq
		backoff = min(backoff, x.f.t.AddressPollMax)
		found := false
		for _, in := range insts {
			if in.ID != inst.ID {
				continue
			}
			if !in.State.Live() {
				if lag > 0 && stopped(in) {
					lag--
					found = true // listed, by a listing behind the start
					continue
				}
				return in, fmt.Errorf("%w: %s is %s", ErrInstanceGone, in.ID, in.State)
			}
			inst, found = in, true
		}
		switch {
		case found:
			listed, misses = true, 0
		case listed:
			if misses++; misses == 2 {
				return inst, fmt.Errorf("%w: %s is no longer listed (terminated)", ErrInstanceGone, inst.ID)
			}
		}
	}
}

// adopt finishes a host that has a label tag but no cache entry: launched
// by a run that stopped before labelling it, or moved to a new address.
func (x *pass) adopt(ctx context.Context, r *HostResult, h Observed) error {
	rec := x.cache.launchRecord(h.Label)
	launched := !rec.Done && (rec.InstanceID == h.Instance.ID || (rec.InstanceID == "" && rec.Generation > 0))
	if launched {
		r.Action = ActionLaunched
	}
	r.Reason = ReasonAdopted
	inst := h.Instance
	if inst.Address == "" {
		x.step(r, StepWaitingAddress)
		var err error
		if inst, err = x.waitAddress(ctx, inst, 0); err != nil {
			return &StepError{Step: StepWaitingAddress, Err: fmt.Errorf("waiting for %s's address: %w", h.Label, err)}
		}
		r.Address = inst.Address
	}
	if launched && rec.InstanceID == "" {
		rec.InstanceID = inst.ID
		if err := x.cache.update(func(c *cacheFile) { c.Launches[h.Label] = rec }); err != nil {
			return err
		}
	}
	return x.finish(ctx, r, inst, false)
}

// finish connects to a host with an address, writes its label, records it
// in the cache and converges it.
func (x *pass) finish(ctx context.Context, r *HostResult, inst fleet.Instance, timed bool) error {
	t := x.f.clk.Now()
	x.step(r, StepConnecting)
	h, err := x.f.connect(ctx, inst, x.f.t.SSH)
	if err != nil {
		return &StepError{Step: StepConnecting, Err: fmt.Errorf("connecting to %s at %s: %w", r.Label, inst.Address, err)}
	}
	defer h.Close()
	if timed {
		r.Durations.AddressToSSH = x.f.clk.Now().Sub(t)
	}
	x.step(r, StepLabelling)
	old, err := writeLabel(ctx, h, x.f.dataPath(inst), r.Label)
	if err != nil {
		return &StepError{Step: StepLabelling, Err: fmt.Errorf("writing %s's label: %w", r.Label, err)}
	}
	if old != "" && old != r.Label {
		x.f.log.Warn("label file disagreed with the label tag, rewritten", "label", r.Label, "instance_id", inst.ID, "file_label", old)
	}
	entry := cacheEntry{ID: inst.ID, Address: inst.Address, Label: r.Label, Role: r.Role, At: x.f.clk.Now()}
	err = x.cache.update(func(c *cacheFile) {
		c.Hosts[inst.ID] = entry
		if rec := c.Launches[r.Label]; rec.InstanceID == inst.ID {
			rec.Done = true
			c.Launches[r.Label] = rec
		}
	})
	if err != nil {
		return err
	}
	if x.f.o.Deployer == nil {
		return nil
	}
	return x.deploy(ctx, r, h, inst, timed)
}

// converge dials a kept host and hands it to the Deployer.
func (x *pass) converge(ctx context.Context, r *HostResult, inst fleet.Instance) error {
	x.step(r, StepConnecting)
	h, err := x.f.connect(ctx, inst, x.f.t.SSH)
	if err != nil {
		return &StepError{Step: StepConnecting, Err: fmt.Errorf("connecting to %s at %s: %w", r.Label, inst.Address, err)}
	}
	defer h.Close()
	return x.deploy(ctx, r, h, inst, false)
}

func (x *pass) deploy(ctx context.Context, r *HostResult, h Host, inst fleet.Instance, timed bool) error {
	t := x.f.clk.Now()
	x.step(r, StepDeploying)
	if err := x.f.o.Deployer.Converge(ctx, h, inst, r.Role); err != nil {
		err = &StepError{Step: StepDeploying, Err: fmt.Errorf("deploying to %s: %w", r.Label, err)}
		if errors.Is(err, ErrReplaceHost) {
			if rerr := x.remove(ctx, r, inst, removeOpts{}); rerr != nil {
				return errors.Join(err, fmt.Errorf("replacing %s: %w", r.Label, rerr))
			}
			r.Reason = ReasonReplaced
		}
		return err
	}
	if timed {
		r.Durations.Deploy = x.f.clk.Now().Sub(t)
	}
	return nil
}

// removeOpts say what remove does when the Drainer fails; the zero value
// keeps the host as it is.
type removeOpts struct {
	// discardData terminates the host all the same.
	discardData bool
	// resume has the Deployer converge a kept host again, over the
	// connection the Drainer had: the Drainer may have stopped its
	// processes before it failed.
	resume bool
	// startStopped starts a stopped host of a stateful role before the
	// Drainer is called, so that it can back its data up; a cloud that
	// cannot start it keeps the host (ErrStoppedWithData). Without it the
	// Drainer is called with no host.
	startStopped bool
	// holder is, for a duplicate, the live host that keeps the label: a
	// DuplicateDrainer drains the duplicate without backing it up, and a
	// stopped one is not started for it.
	holder string
}

// remove calls the Drainer, then terminates the instance and forgets it.
// A Drainer's error prevents the termination unless o.discardData: the
// host is then terminated all the same, r records the error (DrainErr)
// and ReasonDataDiscarded, and a warning says so before the termination.
func (x *pass) remove(ctx context.Context, r *HostResult, inst fleet.Instance, o removeOpts) error {
	if d := x.f.o.Drainer; d != nil {
		within := x.f.t.SSHRemove
		drain := d.BeforeTerminate
		dd, dup := d.(DuplicateDrainer)
		if dup = dup && o.holder != ""; dup {
			drain = dd.BeforeTerminateDuplicate
			x.f.log.Info("removing a duplicate without backing it up: the live host holds the label's data", "label", r.Label,
				"role", r.Role, "instance_id", inst.ID, "holder_id", o.holder)
		}
		if o.startStopped && !dup && stopped(inst) && x.f.roles[r.Role].Stateful {
			if _, ok := x.f.o.Cloud.(Starter); !ok {
				return &StepError{Step: StepDraining, Err: fmt.Errorf(
					"%s (%s) is %w: the cloud cannot start it to back it up; start it, and the next reconcile backs it up and removes it",
					r.Label, inst.ID, ErrStoppedWithData)}
			}
			started, err := x.startInstance(ctx, r, inst)
			if err != nil {
				return err
			}
			// Just booted: it gets the launch's SSH deadline.
			inst, within = started, x.f.t.SSH
		}
		x.step(r, StepDraining)
		var h Host
		if inst.Address != "" && inst.State.Live() {
			c, err := x.f.connect(ctx, inst, within)
			if err != nil {
				x.f.log.Warn("host to remove unreachable, draining without it", "label", r.Label, "instance_id", inst.ID, "err", err)
			} else {
				h = c
				defer c.Close()
			}
		}
		if err := drain(ctx, h, inst); err != nil {
			err = fmt.Errorf("before terminating %s: %w", r.Label, err)
			// A cancelled removal never goes on: the operator stopped it.
			if !o.discardData || ctx.Err() != nil {
				return x.keep(ctx, r, h, inst, o, &StepError{Step: StepDraining, Err: err})
			}
			r.Reason, r.DrainErr = ReasonDataDiscarded, err
			x.f.log.Warn("drain failed, terminating anyway: the host's data is discarded", "label", r.Label, "role", r.Role,
				"instance_id", inst.ID, "address", inst.Address, "err", err)
		}
	}
	x.step(r, StepTerminating)
	err := x.f.retryThrottled(ctx, func() error { return x.f.o.Cloud.Terminate(ctx, inst.ID) })
	if err != nil && !fleet.IsNotFound(err) {
		return &StepError{Step: StepTerminating, Err: fmt.Errorf("terminating %s (%s): %w", r.Label, inst.ID, err)}
	}
	if err := x.cache.update(func(c *cacheFile) { delete(c.Hosts, inst.ID); delete(c.Starts, inst.ID) }); err != nil {
		return err
	}
	if fg, ok := x.f.o.Dialer.(Forgetter); ok && inst.Address != "" {
		if err := fg.Forget(inst.Address); err != nil {
			x.f.log.Warn("forgetting host key failed", "address", inst.Address, "err", err)
		}
	}
	return nil
}

// keep returns a failed drain's error, after converging the host again
// when o.resume asks for it and the host was reached.
func (x *pass) keep(ctx context.Context, r *HostResult, h Host, inst fleet.Instance, o removeOpts, err error) error {
	if !o.resume || h == nil || x.f.o.Deployer == nil || ctx.Err() != nil {
		return err
	}
	x.step(r, StepDeploying)
	if cerr := x.f.o.Deployer.Converge(ctx, h, inst, r.Role); cerr != nil {
		return errors.Join(err, &StepError{Step: StepDeploying, Err: fmt.Errorf("converging %s again after the failed drain: %w", r.Label, cerr)})
	}
	x.f.log.Info("host kept and converged again after its drain failed", "label", r.Label, "instance_id", inst.ID)
	return err
}

// askLabels reads the LABEL file of instances that have neither a label
// tag nor a cache entry.
func (x *pass) askLabels(ctx context.Context, ask []fleet.Instance) ([]Observed, []HostResult) {
	var mu sync.Mutex
	var hosts []Observed
	pl := newPool(x.f.o.Concurrency, 0)
	for _, inst := range ask {
		r := HostResult{Label: "?", Role: inst.Role, InstanceID: inst.ID, Address: inst.Address, Zone: inst.Zone, Action: ActionKept}
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			if err := pl.acquire(ctx, x.stop); err != nil {
				pl.add(x.done(&r, err))
				return
			}
			defer pl.release()
			label, inst, err := x.askLabel(ctx, &r, inst)
			if err != nil {
				pl.add(x.done(&r, err))
				return
			}
			mu.Lock()
			hosts = append(hosts, Observed{Instance: inst, Label: label, Confirmed: true})
			mu.Unlock()
		}()
	}
	return hosts, pl.wait()
}

func (x *pass) askLabel(ctx context.Context, r *HostResult, inst fleet.Instance) (string, fleet.Instance, error) {
	x.step(r, StepAsking)
	inst, err := x.waitAddress(ctx, inst, 0)
	if err != nil {
		return "", inst, &StepError{Step: StepWaitingAddress, Err: fmt.Errorf("waiting for %s's address: %w", inst.ID, err)}
	}
	r.Address = inst.Address
	h, err := x.f.connect(ctx, inst, x.f.t.SSH)
	if err != nil {
		return "", inst, &StepError{Step: StepConnecting, Err: fmt.Errorf("connecting to %s at %s: %w", inst.ID, inst.Address, err)}
	}
	defer h.Close()
	label, err := readLabel(ctx, h, x.f.dataPath(inst))
	if err != nil {
		return "", inst, &StepError{Step: StepAsking, Err: fmt.Errorf("reading %s's label: %w", inst.ID, err)}
	}
	if label == "" {
		return "", inst, &StepError{Step: StepAsking, Err: fmt.Errorf("%s at %s: %w", inst.ID, inst.Address, ErrUnlabelled)}
	}
	r.Label = label
	entry := cacheEntry{ID: inst.ID, Address: inst.Address, Label: label, Role: roleOf(Observed{Instance: inst, Label: label}), At: x.f.clk.Now()}
	if err := x.cache.update(func(c *cacheFile) { c.Hosts[inst.ID] = entry }); err != nil {
		return "", inst, err
	}
	return label, inst, nil
}

// connect dials a host until it answers, with exponential backoff, for at
// most within. A host key mismatch ends it at once.
func (f *Fleet) connect(ctx context.Context, inst fleet.Instance, within time.Duration) (Host, error) {
	deadline := f.clk.Now().Add(within)
	backoff := f.t.PollMin
	var last error
	for attempt := 1; ; attempt++ {
		var expected []string
		if f.o.HostKeys != nil {
			fps, err := f.o.HostKeys.HostKeyFingerprints(ctx, inst.ID)
			if err != nil {
				f.log.Debug("host key fingerprints unavailable", "instance_id", inst.ID, "err", err)
			}
			expected = fps
		}
		h, err := f.o.Dialer.Dial(ctx, inst, expected)
		if err == nil {
			return h, nil
		}
		if errors.Is(err, ErrHostKeyMismatch) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		if !f.clk.Now().Add(backoff).Before(deadline) {
			return nil, fmt.Errorf("%w (%d attempts in %s): %w", ErrSSHTimeout, attempt, within, last)
		}
		f.log.Debug("ssh not answering yet", "instance_id", inst.ID, "address", inst.Address, "attempt", attempt, "err", err)
		if err := f.sleep(ctx, backoff); err != nil {
			return nil, err
		}
		backoff = min(backoff*2, f.t.PollMax)
	}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeLabel writes label to dir/LABEL atomically and returns the label
// the file held before ("" when there was none).
func writeLabel(ctx context.Context, h Host, dir, label string) (string, error) {
	file, tmp := shellQuote(dir+"/LABEL"), shellQuote(dir+"/.LABEL.tmp")
	cmd := fmt.Sprintf("old=$(cat %[1]s 2>/dev/null || true); mkdir -p %[3]s && cat > %[2]s && mv -f %[2]s %[1]s && printf '%%s\\n' \"$old\"",
		file, tmp, shellQuote(dir))
	out, err := h.Run(ctx, cmd, strings.NewReader(label+"\n"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// readLabel returns what dir/LABEL holds, "" when there is no such file.
func readLabel(ctx context.Context, h Host, dir string) (string, error) {
	file := shellQuote(dir + "/LABEL")
	out, err := h.Run(ctx, fmt.Sprintf("if [ -e %[1]s ]; then cat %[1]s; fi", file), nil)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
