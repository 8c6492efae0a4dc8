package deployer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/fleet"
)

// stepClock is a clock whose timers fire at once, moving time forward:
// backoff loops run instantly and still see time pass.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(max(d, 0))
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeCloud is a stateful in-memory cloud. It records calls, takes
// one-shot injected errors per operation ("list", "launch", "launch web-2",
// "terminate", "start"), starts stopped instances (a started one runs,
// with its address, at the next List), is idempotent on client tokens
// (a spent token returns its instance, terminated or not, as EC2 does) and
// gives new instances their address at the first List after the launch.
// Each instance's data path is a directory of its own (TagDataPath).
type fakeCloud struct {
	t   *testing.T
	clk *stepClock
	dir string

	mu     sync.Mutex
	n      int
	insts  map[string]*fleet.Instance
	tokens map[string]string
	calls  []string
	errs   map[string][]error
	hidden map[string]int // id -> Lists that do not show it yet
	// dies makes the instances launched for a label die while they boot:
	// they stay pending for dying.lists Lists, then go to dying.as.
	dies map[string]dying
	// afterLaunch runs after an instance was created, before Launch
	// returns; a non-nil error is returned instead of the instance.
	afterLaunch func(fleet.Instance) error
	// noTags launches instances without tide's tags (not the pipeline's
	// ones; used to make hosts tide must ask).
	immediateAddress bool
}

var (
	_ Cloud   = (*fakeCloud)(nil)
	_ Starter = (*fakeCloud)(nil)
)

// cannotStart is a cloud that is no Starter.
type cannotStart struct{ Cloud }

// dying is how an instance dies while it boots (fakeCloud.dies).
type dying struct {
	lists int
	as    fleet.State
}

func newFakeCloud(t *testing.T, clk *stepClock) *fakeCloud {
	return &fakeCloud{t: t, clk: clk, dir: t.TempDir(), insts: map[string]*fleet.Instance{}, tokens: map[string]string{},
		errs: map[string][]error{}, hidden: map[string]int{}, dies: map[string]dying{}}
}

func (c *fakeCloud) inject(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs[op] = append(c.errs[op], err)
}

func (c *fakeCloud) popErr(op string) error {
	if q := c.errs[op]; len(q) > 0 {
		c.errs[op] = q[1:]
		return q[0]
	}
	return nil
}

func (c *fakeCloud) List(ctx context.Context, fleetName string) ([]fleet.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "list")
	if err := c.popErr("list"); err != nil {
		return nil, err
	}
	var out []fleet.Instance
	for _, in := range c.insts {
		if in.State == fleet.StateTerminated || in.Fleet != fleetName {
			continue
		}
		if c.hidden[in.ID] > 0 {
			c.hidden[in.ID]--
			continue
		}
		if d, ok := c.dies[in.Label]; ok && in.State == fleet.StatePending {
			if d.lists > 0 {
				d.lists--
				c.dies[in.Label] = d
				out = append(out, copyInst(*in))
				continue
			}
			in.State = d.as
			delete(c.dies, in.Label)
			if in.State != fleet.StateTerminated {
				out = append(out, copyInst(*in))
			}
			continue
		}
		if in.State == fleet.StatePending {
			in.Address = c.addressFor(in.ID)
			in.State = fleet.StateRunning
		}
		out = append(out, copyInst(*in))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *fakeCloud) addressFor(id string) string {
	var n int
	fmt.Sscanf(id, "i-%d", &n)
	return fmt.Sprintf("10.0.%d.%d", n/250, n%250+1)
}

func (c *fakeCloud) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	c.mu.Lock()
	c.calls = append(c.calls, "launch "+spec.Label+" "+spec.ClientToken)
	err := c.popErr("launch " + spec.Label)
	if err == nil {
		err = c.popErr("launch")
	}
	if err != nil {
		c.mu.Unlock()
		return fleet.Instance{}, err
	}
	if id, ok := c.tokens[spec.ClientToken]; ok {
		in := copyInst(*c.insts[id])
		c.mu.Unlock()
		return in, nil
	}
	c.n++
	id := fmt.Sprintf("i-%04d", c.n)
	tags := spec.AllTags()
	tags[TagDataPath] = filepath.Join(c.dir, id)
	in := &fleet.Instance{ID: id, Label: spec.Label, Role: spec.Role, Fleet: spec.Fleet, Type: spec.Type, Zone: spec.Zone,
		State: fleet.StatePending, Tags: tags, LaunchedAt: c.clk.Now()}
	if c.immediateAddress {
		in.Address, in.State = c.addressFor(id), fleet.StateRunning
	}
	c.insts[id] = in
	c.tokens[spec.ClientToken] = id
	out := copyInst(*in)
	hook := c.afterLaunch
	c.mu.Unlock()
	if hook != nil {
		if err := hook(out); err != nil {
			return fleet.Instance{}, err
		}
	}
	return out, nil
}

func (c *fakeCloud) Terminate(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "terminate "+id)
	if err := c.popErr("terminate"); err != nil {
		return err
	}
	in, ok := c.insts[id]
	if !ok {
		return &fleet.NotFoundError{ID: id}
	}
	in.State = fleet.StateTerminated
	return nil
}

// Start starts a stopped instance: pending, then running with its address
// at the next List. A pending or running one is left as it is; a
// terminated or shutting-down one is an error, as on EC2.
func (c *fakeCloud) Start(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "start "+id)
	if err := c.popErr("start"); err != nil {
		return err
	}
	in, ok := c.insts[id]
	switch {
	case !ok:
		return &fleet.NotFoundError{ID: id}
	case in.State == fleet.StateStopped:
		in.State, in.Address = fleet.StatePending, ""
	case in.State == fleet.StateTerminated || in.State == fleet.StateShuttingDown || in.State == fleet.StateStopping:
		return fmt.Errorf("IncorrectInstanceState: %s is %s", id, in.State)
	}
	return nil
}

// stop stops a live instance, as a host that dies does.
func (c *fakeCloud) stop(id string) {
	c.set(id, func(in *fleet.Instance) { in.State, in.Address = fleet.StateStopped, "" })
}

// add puts an instance there as if someone else had launched it.
func (c *fakeCloud) add(in fleet.Instance) fleet.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if in.ID == "" {
		in.ID = fmt.Sprintf("i-%04d", c.n)
	}
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	if in.Tags[TagDataPath] == "" {
		in.Tags[TagDataPath] = filepath.Join(c.dir, in.ID)
	}
	if in.State == "" {
		in.State = fleet.StateRunning
	}
	if in.Address == "" && in.State == fleet.StateRunning {
		in.Address = c.addressFor(in.ID)
	}
	if in.LaunchedAt.IsZero() {
		in.LaunchedAt = c.clk.Now()
	}
	c.insts[in.ID] = &in
	return copyInst(in)
}

func (c *fakeCloud) set(id string, change func(*fleet.Instance)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(c.insts[id])
}

// live returns the live instances, by label then id.
func (c *fakeCloud) live() []fleet.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []fleet.Instance
	for _, in := range c.insts {
		if in.State.Live() {
			out = append(out, copyInst(*in))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (c *fakeCloud) liveLabels() []string {
	var out []string
	for _, in := range c.live() {
		out = append(out, in.Label)
	}
	return out
}

// callsLike returns the recorded calls starting with prefix.
func (c *fakeCloud) callsLike(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.calls {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func copyInst(in fleet.Instance) fleet.Instance {
	tags := make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		tags[k] = v
	}
	in.Tags = tags
	return in
}

// fakeDialer connects to "hosts" that run commands with the real /bin/sh
// on this machine (the data path tag points into a temporary directory).
// It counts connections open at once and can fail dials per address.
type fakeDialer struct {
	mu        sync.Mutex
	cond      *sync.Cond
	dials     map[string]int // by address
	failFirst map[string]int // address -> dials that fail before one succeeds
	mismatch  map[string]bool
	expected  map[string][]string // address -> expected fingerprints of the last dial
	open, max int
	forgotten []string
	// gate, when set, holds each Dial until it returns true (under mu).
	gate func(d *fakeDialer) bool
}

var (
	_ Dialer    = (*fakeDialer)(nil)
	_ Forgetter = (*fakeDialer)(nil)
)

func newFakeDialer() *fakeDialer {
	d := &fakeDialer{dials: map[string]int{}, failFirst: map[string]int{}, mismatch: map[string]bool{}, expected: map[string][]string{}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

var errConnRefused = errors.New("connection refused")

func (d *fakeDialer) Dial(ctx context.Context, inst fleet.Instance, expected []string) (Host, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials[inst.Address]++
	d.expected[inst.Address] = expected
	if inst.Address == "" {
		return nil, errors.New("dialing an instance without an address")
	}
	if d.mismatch[inst.Address] || d.mismatch[instanceLabel(inst)] {
		return nil, fmt.Errorf("dialing %s: %w", inst.Address, ErrHostKeyMismatch)
	}
	if d.failFirst[inst.Address] > 0 {
		d.failFirst[inst.Address]--
		return nil, fmt.Errorf("dialing %s: %w", inst.Address, errConnRefused)
	}
	d.open++
	d.max = max(d.max, d.open)
	d.cond.Broadcast()
	for d.gate != nil && !d.gate(d) {
		d.cond.Wait()
	}
	return &fakeHost{d: d, inst: inst}, nil
}

func (d *fakeDialer) Forget(address string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgotten = append(d.forgotten, address)
	return nil
}

func (d *fakeDialer) totalDials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, v := range d.dials {
		n += v
	}
	return n
}

type fakeHost struct {
	d      *fakeDialer
	inst   fleet.Instance
	closed bool
}

func (h *fakeHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Stdin = stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("running %q: %w: %s", cmd, err, errb.String())
	}
	return out.Bytes(), nil
}

func (h *fakeHost) Close() error {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.d.open--
		h.d.cond.Broadcast()
	}
	return nil
}

// fakeHostKeys returns one fingerprint per instance.
type fakeHostKeys struct{}

func (fakeHostKeys) HostKeyFingerprints(ctx context.Context, id string) ([]string, error) {
	return []string{"SHA256:" + id}, nil
}

// labelOn reads the LABEL file of an instance from the fake cloud.
func labelOn(t *testing.T, in fleet.Instance) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.Tags[TagDataPath], "LABEL"))
	if err != nil {
		t.Fatalf("reading %s's LABEL: %v", in.ID, err)
	}
	return strings.TrimSpace(string(b))
}

// recordingDeployer records converged and drained hosts. Its drain of a
// stateful role's host fails without the host, as converge's does.
type recordingDeployer struct {
	mu        sync.Mutex
	converged []string
	drained   []string
	nilHost   []string
	drainErr  map[string]error // by label
	stateful  map[string]bool  // by role
}

var errUnreachable = errors.New("host unreachable")

func (r *recordingDeployer) Converge(ctx context.Context, h Host, inst fleet.Instance, role string) error {
	if _, err := h.Run(ctx, "true", nil); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.converged = append(r.converged, instanceLabel(inst))
	return nil
}

func (r *recordingDeployer) BeforeTerminate(ctx context.Context, h Host, inst fleet.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	label := instanceLabel(inst)
	if h == nil {
		r.nilHost = append(r.nilHost, label)
	}
	if err := r.drainErr[label]; err != nil {
		return err
	}
	if h == nil && r.stateful[inst.Role] {
		return fmt.Errorf("role %s is stateful: %w", inst.Role, errUnreachable)
	}
	r.drained = append(r.drained, label)
	return nil
}
