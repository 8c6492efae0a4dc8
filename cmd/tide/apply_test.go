package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/config"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
)

// runTideEnv set to 1 makes the test binary run as tide itself, its
// arguments tide's, so that a test can start tide in a process of its own
// (to kill it with SIGKILL).
const runTideEnv = "TIDE_TEST_RUN_TIDE"

// TestMain doubles as a local-cloud host: the local cloud started by
// `tide apply` runs this test binary (os.Executable) with
// TIDE_LOCAL_HOST_DIR set, so the tests need no tide binary. With
// runTideEnv=1 it is the tide binary.
func TestMain(m *testing.M) {
	if os.Getenv(runTideEnv) == "1" && os.Getenv(local.HostDirEnv) == "" {
		main() // exits
	}
	local.RunHostIfAsked()
	// Hosts built with -race would otherwise sleep a second on exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for the display's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleetEnv runs tide commands on one state directory.
type fleetEnv struct {
	t        *testing.T
	stateDir string
	file     string
}

func (f *fleetEnv) run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	var out, errb syncBuffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string {
			if k == "TIDE_STATE_DIR" {
				return f.stateDir
			}
			return ""
		},
		Logger: slog.New(slog.NewTextHandler(&errb, nil)),
	}
	code = run(ctx, e, append(args, "-c", f.file))
	return code, out.String(), errb.String()
}

// provider opens the local cloud on the test's state directory.
func (f *fleetEnv) provider() *local.Provider {
	f.t.Helper()
	p, err := local.New(local.Options{StateDir: f.stateDir, Network: "127.0.0.0/8", StopGrace: 3 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// live returns the fleet's running or pending instances.
func (f *fleetEnv) live(name string) []fleet.Instance {
	f.t.Helper()
	insts, err := f.provider().List(context.Background(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []fleet.Instance
	for _, in := range insts {
		if in.State.Live() {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b fleet.Instance) int { return strings.Compare(a.Label, b.Label) })
	return out
}

const testSchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 300ms
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
roles:
  - name: db
    instance_type: t3.large
    min: 1
    max: 1
  - name: web
    instance_type: t3.medium
    min: 2
    max: 4
`

func newFleetEnv(t *testing.T, name, network string) *fleetEnv {
	t.Helper()
	dir := t.TempDir()
	f := &fleetEnv{t: t, stateDir: filepath.Join(dir, "state"), file: filepath.Join(dir, "fleet.yaml")}
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(testSchedule, name, network)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every host this test started goes, whatever the test did.
		p := f.provider()
		insts, err := p.List(context.Background(), "")
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, in := range insts {
			if err := p.Terminate(context.Background(), in.ID); err != nil && !fleet.IsNotFound(err) {
				t.Errorf("cleanup: terminating %s: %v", in.ID, err)
			}
		}
	})
	return f
}

type applyJSON struct {
	Desired map[string]int   `json:"desired"`
	Hosts   []map[string]any `json:"hosts"`
	Roles   map[string]any   `json:"roles"`
}

func decodeReport(t *testing.T, out string) applyJSON {
	t.Helper()
	var r applyJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return r
}

func actionsOf(r applyJSON) []string {
	var out []string
	for _, h := range r.Hosts {
		out = append(out, fmt.Sprint(h["label"], ":", h["action"]))
	}
	return out
}

func checkHosts(t *testing.T, f *fleetEnv, name string, labels ...string) {
	t.Helper()
	live := f.live(name)
	var got []string
	for _, in := range live {
		got = append(got, in.Label)
		b, err := os.ReadFile(filepath.Join(in.Tags[deployer.TagDataPath], "LABEL"))
		if err != nil || strings.TrimSpace(string(b)) != in.Label {
			t.Errorf("%s (%s): LABEL holds %q (%v), want %q", in.ID, in.Address, b, err, in.Label)
		}
	}
	if !slices.Equal(got, labels) {
		t.Fatalf("live hosts %q, want %q", got, labels)
	}
}

// TestApplyStatusDownLocalCloud drives the real local cloud over real SSH:
// apply brings the scheduled hosts up labelled, a second apply changes
// nothing, status lists them, down removes them.
func TestApplyStatusDownLocalCloud(t *testing.T) {
	f := newFleetEnv(t, "it-apply", "127.0.41.0/24")
	ctx := t.Context()

	code, out, errOut := f.run(ctx, "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("apply exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	rep := decodeReport(t, out)
	if want := []string{"db-1:launched", "web-1:launched", "web-2:launched"}; !slices.Equal(actionsOf(rep), want) {
		t.Fatalf("apply = %q, want %q", actionsOf(rep), want)
	}
	if rep.Desired["web"] != 2 || rep.Desired["db"] != 1 {
		t.Errorf("desired = %v", rep.Desired)
	}
	if _, ok := rep.Roles["web"]; !ok {
		t.Errorf("no web timings in %v", rep.Roles)
	}
	checkHosts(t, f, "it-apply", "db-1", "web-1", "web-2")
	for _, p := range []string{"ssh/id_ed25519", "ssh/known_hosts", "fleets/it-apply/labels.json"} {
		if _, err := os.Stat(filepath.Join(f.stateDir, p)); err != nil {
			t.Errorf("state file: %v", err)
		}
	}
	kh, _ := os.ReadFile(filepath.Join(f.stateDir, "ssh/known_hosts"))
	if n := strings.Count(string(kh), "\n"); n != 3 {
		t.Errorf("known_hosts has %d lines, want the 3 hosts' keys:\n%s", n, kh)
	}

	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("second apply exit %d: %s %s", code, out, errOut)
	}
	if want := []string{"db-1:kept", "web-1:kept", "web-2:kept"}; !slices.Equal(actionsOf(decodeReport(t, out)), want) {
		t.Fatalf("second apply = %q, want %q", actionsOf(decodeReport(t, out)), want)
	}
	checkHosts(t, f, "it-apply", "db-1", "web-1", "web-2")

	code, out, errOut = f.run(ctx, "status")
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	for _, want := range []string{"LABEL", "REVISION", "db-1 ", "web-2 ", "running", "127.0.41."} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = f.run(ctx, "status", "--output", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 || len(rows) != 3 || rows[0]["label"] != "db-1" || rows[0]["revision"] != "-" {
		t.Errorf("status json (exit %d, %v): %s", code, err, out)
	}

	code, out, errOut = f.run(ctx, "down")
	if code != 0 {
		t.Fatalf("down exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "0 launched, 0 kept, 3 removed, 0 failed") {
		t.Errorf("down summary:\n%s", out)
	}
	if live := f.live("it-apply"); len(live) != 0 {
		t.Errorf("%d hosts left after down", len(live))
	}
	kh, _ = os.ReadFile(filepath.Join(f.stateDir, "ssh/known_hosts"))
	if strings.TrimSpace(string(kh)) != "" {
		t.Errorf("known_hosts still holds terminated hosts:\n%s", kh)
	}
}

// TestApplyKilledMidwayThenAgain cancels an apply as soon as the first host
// is launched, then applies again: exactly the planned hosts, no
// duplicate, no orphan.
func TestApplyKilledMidwayThenAgain(t *testing.T) {
	f := newFleetEnv(t, "it-crash", "127.0.42.0/24")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if insts, err := f.provider().List(context.Background(), "it-crash"); err == nil && len(insts) > 0 {
				cancel()
				return
			}
		}
	}()
	code, out, errOut := f.run(ctx, "apply")
	if code == 0 {
		t.Fatalf("cancelled apply exited 0:\n%s\n%s", out, errOut)
	}
	if n := len(f.live("it-crash")); n == 0 || n > 3 {
		t.Fatalf("%d instances after the interrupted apply", n)
	}

	code, out, errOut = f.run(t.Context(), "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("apply after the crash exit %d\n%s\n%s", code, out, errOut)
	}
	checkHosts(t, f, "it-crash", "db-1", "web-1", "web-2")
	code, out, _ = f.run(t.Context(), "apply", "--output", "json")
	if want := []string{"db-1:kept", "web-1:kept", "web-2:kept"}; code != 0 || !slices.Equal(actionsOf(decodeReport(t, out)), want) {
		t.Fatalf("third apply (exit %d) = %q, want %q", code, actionsOf(decodeReport(t, out)), want)
	}
}

func TestApplyFailsWithSummary(t *testing.T) {
	f := newFleetEnv(t, "it-fail", "127.0.43.0/24")
	// One host, db-1, on the network's first address; known_hosts already
	// holds another key for that address, so its SSH is refused as a
	// mismatch and apply must fail with a per-host summary.
	s := strings.Replace(fmt.Sprintf(testSchedule, "it-fail", "127.0.43.0/24"), "min: 2", "min: 0", 1)
	if err := os.WriteFile(f.file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	khDir := filepath.Join(f.stateDir, "ssh")
	if err := os.MkdirAll(khDir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := "127.0.43.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" +
		"[127.0.43.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	if err := os.WriteFile(filepath.Join(khDir, "known_hosts"), []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := f.run(t.Context(), "apply")
	if code != 1 {
		t.Fatalf("apply exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"db-1", "failed", "host-key-mismatch", "1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "connecting") {
		t.Errorf("no progress lines on stderr:\n%s", errOut)
	}
}

func TestDefaultStateDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TIDE_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s"},
		{map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/tide"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/tide"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := defaultStateDir(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDesiredNow(t *testing.T) {
	s, err := config.Load("../../examples/office-dms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	brussels, _ := time.LoadLocation("Europe/Brussels")
	for _, tt := range []struct {
		at   time.Time
		want map[string]int
	}{
		{time.Date(2026, 3, 4, 10, 0, 0, 0, brussels), map[string]int{"db": 1, "web": 5}}, // Wednesday morning
		{time.Date(2026, 3, 4, 22, 0, 0, 0, brussels), map[string]int{"db": 1, "web": 1}}, // night
		{time.Date(2026, 3, 7, 10, 0, 0, 0, brussels), map[string]int{"db": 1, "web": 1}}, // Saturday
	} {
		got, err := desiredNow(s, tt.at)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("at %s: %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestDisplay(t *testing.T) {
	ev := func(label string, step deployer.Step) deployer.Event {
		return deployer.Event{Label: label, InstanceID: "i-1", Step: step, At: time.Now()}
	}
	t.Run("plain lines", func(t *testing.T) {
		var buf syncBuffer
		d := &display{w: &buf, start: time.Now(), lines: map[string]string{}}
		d.Update(ev("web-1", deployer.StepLaunching))
		d.Update(ev("web-1", deployer.StepConnecting))
		if got := strings.Count(buf.String(), "\n"); got != 2 || strings.Contains(buf.String(), "\x1b[") {
			t.Errorf("plain output:\n%q", buf.String())
		}
	})
	t.Run("terminal redraws in place", func(t *testing.T) {
		var buf syncBuffer
		d := &display{w: &buf, tty: true, start: time.Now(), lines: map[string]string{}}
		d.Update(ev("web-1", deployer.StepLaunching))
		d.Update(ev("web-2", deployer.StepLaunching))
		d.Update(ev("web-1", deployer.StepConnecting))
		out := buf.String()
		if !strings.Contains(out, "\x1b[2A") {
			t.Errorf("no cursor-up over the two drawn lines:\n%q", out)
		}
		last := out[strings.LastIndex(out, "\x1b[2A"):]
		if !strings.Contains(last, "web-1") || !strings.Contains(last, "connecting") || !strings.Contains(last, "web-2") {
			t.Errorf("last frame:\n%q", last)
		}
		d.stop()
		d.Update(ev("web-1", deployer.StepDone))
		if buf.String() != out+"\n" {
			t.Error("display drew after stop")
		}
	})
}

// TestApplyStaticHosts lists an existing machine (a local-cloud host the
// test starts itself) as a static host: apply labels it over SSH, trusting
// its key on first use, and neither launches nor terminates anything.
func TestApplyStaticHosts(t *testing.T) {
	f := newFleetEnv(t, "it-static", "127.0.44.0/24")
	keyPath := filepath.Join(t.TempDir(), "id_ed25519")
	signer, err := stateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := local.New(local.Options{StateDir: f.stateDir, Network: "127.0.44.0/24", Port: 2222,
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}, StopGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.Launch(t.Context(), fleet.LaunchSpec{ClientToken: "static-it", Fleet: "machines", Role: "web", Label: "machine-1"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for inst.Address == "" {
		if time.Now().After(deadline) {
			t.Fatal("the machine did not boot")
		}
		if inst, err = p.Instance(t.Context(), inst.ID); err != nil {
			t.Fatal(err)
		}
	}
	dataPath := t.TempDir()
	s := fmt.Sprintf(`name: it-static
cloud:
  provider: static
ssh:
  port: 2222
  identity_file: %s
data_path: %s
roles:
  - name: web
    min: 1
    max: 1
    hosts:
      - label: web-1
        address: %s
`, keyPath, dataPath, inst.Address)
	if err := os.WriteFile(f.file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"web-1:kept", "web-1:kept"} {
		code, out, errOut := f.run(t.Context(), "apply", "--output", "json")
		if code != 0 {
			t.Fatalf("apply %d exit %d\n%s\n%s", i+1, code, out, errOut)
		}
		if got := actionsOf(decodeReport(t, out)); !slices.Equal(got, []string{want}) {
			t.Fatalf("apply %d = %q, want %q", i+1, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dataPath, "LABEL")); err != nil || strings.TrimSpace(string(b)) != "web-1" {
		t.Errorf("LABEL = %q, %v", b, err)
	}
	code, out, _ := f.run(t.Context(), "down")
	if code != 0 || !strings.Contains(out, "0 removed, 0 failed") {
		t.Errorf("down on static hosts (exit %d):\n%s", code, out)
	}
	if in, err := p.Instance(t.Context(), inst.ID); err != nil || !in.State.Live() {
		t.Errorf("the static machine is gone after down: %+v %v", in, err)
	}
}
