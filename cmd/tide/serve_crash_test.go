package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
)

// crashSchedule wants five hosts at once (db-1, web-1..4) with hosts slow
// enough to boot that a signal lands while they are being launched.
const crashSchedule = `name: %s
cloud:
  provider: local
  network: %s
  boot_delay: 1500ms
ssh:
  port: 2222
  deadline: 1m
data_path: /mnt
interval: 1s
roles:
  - name: db
    instance_type: t3.large
    min: 1
    max: 1
  - name: web
    instance_type: t3.medium
    min: 4
    max: 6
`

// crashLabels are the hosts crashSchedule wants.
var crashLabels = []string{"db-1", "web-1", "web-2", "web-3", "web-4"}

// tideProcess is tide serve running in a process of its own (this test
// binary, see runTideEnv), so that it can be sent real signals.
type tideProcess struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	errs *syncBuffer
	addr string
	done chan struct{} // closed once the process has exited and been reaped
}

// startTideProcess starts `tide serve` on f's schedule and state directory
// and waits until it listens. The process is killed, if still running, in
// t.Cleanup.
func startTideProcess(t *testing.T, f *fleetEnv, extra ...string) *tideProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &tideProcess{out: &syncBuffer{}, errs: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"serve", "-c", f.file, "--listen", "127.0.0.1:0",
		"--reload-poll", "100ms", "--grace", "10s", "--concurrency", "2"}, extra...)
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), runTideEnv+"=1", "TIDE_STATE_DIR="+f.stateDir, "TIDE_TOKEN="+testAPIToken)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting tide serve: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("tide serve (pid %d) stderr:\n%s", p.cmd.Process.Pid, p.errs.String())
		}
	})
	re := regexp.MustCompile(`listening on (http://[0-9.:]+)/`)
	eventually(t, 20*time.Second, "tide serve to listen", func() bool {
		if p.exited() {
			t.Fatalf("tide serve exited: %v\n%s", p.cmd.ProcessState, p.errs.String())
		}
		m := re.FindStringSubmatch(p.out.String())
		if m != nil {
			p.addr = m[1]
		}
		return m != nil
	})
	return p
}

func (p *tideProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits at most within for the process to exit,
// returning its exit code (-1 when a signal ended it).
func (p *tideProcess) stop(t *testing.T, sig syscall.Signal, within time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("tide serve did not exit within %s of %v:\n%s", within, sig, p.errs.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// lastStep returns the time of the service's last step from /api/status,
// zero before the first.
func (p *tideProcess) lastStep(t *testing.T) time.Time {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.addr+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		LastStep time.Time `json:"last_step"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /api/status: %d %s", resp.StatusCode, b)
	}
	return st.LastStep
}

// newCrashFleet is a fleet environment for crashSchedule whose hosts are
// removed, through `tide down` and then by terminating whatever is left,
// when the test ends.
func newCrashFleet(t *testing.T, name, network string) *fleetEnv {
	t.Helper()
	f := newFleetEnv(t, name, network)
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(crashSchedule, name, network)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Runs after the processes' cleanups (registered later), so that
		// no tide serve holds the fleet any more.
		if code, _, errs := f.run(context.Background(), "down"); code != 0 {
			t.Errorf("down: exit %d: %s", code, errs)
		}
	})
	return f
}

// hostProcesses returns the instance ids of the local-cloud host
// processes running for f's state directory, found in /proc by their
// command line ("... -dir STATE/local/hosts/ID").
func hostProcesses(t *testing.T, f *fleetEnv) []string {
	t.Helper()
	hosts := filepath.Dir(f.provider().HostDir("x"))
	marker := []byte("-dir\x00" + hosts + string(filepath.Separator))
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		i := bytes.Index(cmdline, marker)
		if i < 0 {
			continue
		}
		if st := processState(e.Name()); st == 'Z' || st == 0 {
			continue
		}
		id, _, _ := bytes.Cut(cmdline[i+len(marker):], []byte{0})
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	return ids
}

// processState is the state letter of /proc/PID/stat, or 0.
func processState(pid string) byte {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// launchedEver returns the ids of every instance the local cloud has
// launched for f (terminated ones included: the cloud keeps their
// directories and records for an hour).
func launchedEver(t *testing.T, f *fleetEnv) []string {
	t.Helper()
	p := f.provider()
	ents, err := os.ReadDir(filepath.Dir(p.HostDir("x")))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		if _, err := p.Instance(context.Background(), e.Name()); err == nil {
			ids = append(ids, e.Name())
		} else if !fleet.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	return ids
}

// converged reports whether f's fleet is exactly labels: one running
// instance per label, holding its LABEL, no other instance in any state
// but terminated, and a host process for each instance and no other. It
// returns what differs for the failure message.
func converged(t *testing.T, f *fleetEnv, name string, labels []string) (bool, string) {
	t.Helper()
	insts, err := f.provider().List(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var got, ids []string
	var problems []string
	for _, in := range insts {
		got = append(got, in.Label)
		ids = append(ids, in.ID)
		if in.State != fleet.StateRunning {
			problems = append(problems, fmt.Sprintf("%s %s is %s", in.Label, in.ID, in.State))
			continue
		}
		b, err := os.ReadFile(filepath.Join(in.Tags[deployer.TagDataPath], "LABEL"))
		if err != nil || strings.TrimSpace(string(b)) != in.Label {
			problems = append(problems, fmt.Sprintf("%s %s: LABEL holds %q", in.Label, in.ID, b))
		}
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, labels) {
		problems = append(problems, fmt.Sprintf("instances labelled %q, want %q", got, labels))
	}
	if procs := hostProcesses(t, f); !slices.Equal(procs, ids) {
		problems = append(problems, fmt.Sprintf("host processes %q, instances %q", procs, ids))
	}
	return len(problems) == 0, strings.Join(problems, "; ")
}

// awaitConverged polls until converged holds.
func awaitConverged(t *testing.T, f *fleetEnv, name string, within time.Duration) {
	t.Helper()
	var why string
	deadline := time.Now().Add(within)
	for {
		ok, w := converged(t, f, name, crashLabels)
		if ok {
			return
		}
		why = w
		if time.Now().After(deadline) {
			t.Fatalf("fleet not converged after %s: %s", within, why)
		}
		time.Sleep(50 * time.Millisecond) // a polling interval
	}
}

// midScaleUp waits until the scale-up is under way and unfinished: some
// hosts are launched and booting, the others wait for a slot (tide serve
// runs with --concurrency 2). It waits until every launched instance is at
// least settle old and none has booted yet, so that the signal lands while
// hosts boot. That keeps it clear of the instant between the local cloud
// recording a launch and recording its process id: a crash there is not
// recovered yet (the instance shows pending for a minute, then stopped,
// its process left running), a gap of the local cloud, not of tide serve.
func midScaleUp(t *testing.T, f *fleetEnv, name string, p *tideProcess) {
	t.Helper()
	const settle = 300 * time.Millisecond
	eventually(t, 20*time.Second, "hosts launched and booting, others still to launch", func() bool {
		if p.exited() {
			t.Fatalf("tide serve exited: %s", p.errs.String())
		}
		insts, err := f.provider().List(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) >= len(crashLabels) {
			t.Fatalf("all %d hosts launched before the signal: the scale-up is too fast to interrupt", len(insts))
		}
		if len(insts) == 0 {
			return false
		}
		var states []string
		for _, in := range insts {
			if in.State != fleet.StatePending {
				t.Fatalf("%s is %s before the signal: the scale-up is too fast to interrupt", in.Label, in.State)
			}
			if time.Since(in.LaunchedAt) < settle {
				return false
			}
			states = append(states, in.Label+":"+string(in.State))
		}
		t.Logf("signalling with %s", strings.Join(states, " "))
		return true
	})
}

// restartConverges starts tide serve again after an interruption and
// checks that it ends with exactly the wanted hosts, that it stops
// cleanly on SIGTERM, and that a third start finds nothing to launch: the
// hosts launched across the runs are exactly the wanted ones, none twice.
func restartConverges(t *testing.T, f *fleetEnv, name string) {
	t.Helper()
	t0 := time.Now()
	second := startTideProcess(t, f)
	awaitConverged(t, f, name, 30*time.Second)
	t.Logf("converged %s after the restart", time.Since(t0).Round(time.Millisecond))
	if code := second.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("tide serve exited %d on SIGTERM:\n%s", code, second.errs.String())
	}
	before := launchedEver(t, f)
	if len(before) != len(crashLabels) {
		t.Fatalf("the cloud launched %d instances across the runs, want %d (no duplicate): %q", len(before), len(crashLabels), before)
	}

	t.Logf("%d instances launched across the runs: %q", len(before), before)

	third := startTideProcess(t, f)
	// Two steps seen: the first one's act phase has finished.
	var first time.Time
	eventually(t, 20*time.Second, "two steps of the third tide serve", func() bool {
		st := third.lastStep(t)
		if first.IsZero() {
			first = st
			return false
		}
		return st.After(first)
	})
	if ok, why := converged(t, f, name, crashLabels); !ok {
		t.Fatalf("after a third start: %s", why)
	}
	if after := launchedEver(t, f); !slices.Equal(after, before) {
		t.Fatalf("the third start launched again: instances %q, before %q", after, before)
	}
	if code := third.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("third tide serve exited %d on SIGTERM:\n%s", code, third.errs.String())
	}
}

// TestServeSIGKILLDuringScaleUp kills tide serve with SIGKILL while it
// launches hosts; started again it ends with exactly the wanted hosts, no
// duplicate and no orphan (no unlabelled instance, no host process
// without an instance).
func TestServeSIGKILLDuringScaleUp(t *testing.T) {
	const name = "crash-kill"
	f := newCrashFleet(t, name, "127.0.94.0/25")
	first := startTideProcess(t, f)
	midScaleUp(t, f, name, first)
	if code := first.stop(t, syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("tide serve survived SIGKILL: exit %d", code)
	}
	restartConverges(t, f, name)
}

// TestServeSIGTERMDuringScaleUp stops tide serve with SIGTERM while it
// launches hosts, with a grace shorter than the scale-up: the step in
// progress is cut at the end of the grace and tide exits 0 soon after;
// started again it ends with exactly the wanted hosts, none launched twice.
func TestServeSIGTERMDuringScaleUp(t *testing.T) {
	const name = "crash-term"
	const grace = 2 * time.Second
	f := newCrashFleet(t, name, "127.0.94.128/25")
	first := startTideProcess(t, f, "--grace", grace.String())
	midScaleUp(t, f, name, first)
	t0 := time.Now()
	// Beyond the grace, the HTTP server gets up to 5s to close its
	// connections; the rest is slack for a loaded machine.
	if code := first.stop(t, syscall.SIGTERM, grace+8*time.Second); code != 0 {
		t.Fatalf("tide serve exited %d on SIGTERM:\n%s", code, first.errs.String())
	}
	t.Logf("tide serve exited %s after SIGTERM (grace %s)", time.Since(t0).Round(time.Millisecond), grace)
	if !strings.Contains(first.errs.String(), "msg=stopped") {
		t.Errorf("tide serve did not log its stop:\n%s", first.errs.String())
	}
	restartConverges(t, f, name)
}
