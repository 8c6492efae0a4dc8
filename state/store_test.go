package state

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/scheduler"
)

// childEnv makes the test binary act as a tide process that writes to the
// store and dies without closing it (see TestKilledProcessKeepsCommitted).
const childEnv = "TIDE_STATE_TEST_CHILD_DIR"

// holdEnv makes the test binary act as a tide process that holds the store
// open until its standard input closes (see TestLockedByAnotherProcess).
const holdEnv = "TIDE_STATE_TEST_HOLD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childWrites(dir))
	}
	if dir := os.Getenv(holdEnv); dir != "" {
		os.Exit(childHolds(dir))
	}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func openTest(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func override(role string, count int, until time.Time) scheduler.Override {
	return scheduler.Override{Role: role, Kind: scheduler.Pin, Count: count, Until: until, Reason: "test", CreatedAt: t0}
}

func TestOverrides(t *testing.T) {
	s := openTest(t, Options{})
	for _, o := range []scheduler.Override{
		override("web", 6, t0.Add(time.Hour)),
		override("db", 2, t0.Add(10*time.Minute)),
		override("web", 8, t0.Add(2*time.Hour)), // replaces web 6
	} {
		if err := s.PutOverride(o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Overrides(t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Role != "db" || got[1].Role != "web" || got[1].Count != 8 {
		t.Fatalf("overrides at t0: %+v, want db 2 and web 8", got)
	}
	if !got[1].Until.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("until %s did not round trip", got[1].Until)
	}
	// At t0+30m db's override has expired: not returned, and pruned.
	got, err = s.Overrides(t0.Add(30 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Role != "web" {
		t.Fatalf("overrides at t0+30m: %+v, want web only", got)
	}
	if found, err := s.DeleteOverride("db"); err != nil || found {
		t.Fatalf("expired db override was not pruned: found %v, err %v", found, err)
	}
	if found, err := s.DeleteOverride("web"); err != nil || !found {
		t.Fatalf("deleting web: found %v, err %v", found, err)
	}
	if got, _ := s.Overrides(t0); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
	bad := override("web", -1, t0.Add(time.Hour))
	if err := s.PutOverride(bad); err == nil {
		t.Fatal("negative count accepted")
	}
}

func decision(role string, at time.Time, desired int) scheduler.Record {
	load := float64(desired) * 40
	return scheduler.Record{Role: role, At: at, Previous: desired - 1, Desired: desired, Winner: "load", Load: &load,
		Inputs: []scheduler.Input{{Source: "load", Count: desired, Detail: scheduler.Text("load"), Won: true}},
		Steps:  []scheduler.Step{{Kind: "clamp-max", From: desired + 1, To: desired}}}
}

func TestDecisions(t *testing.T) {
	s := openTest(t, Options{})
	for i := range 10 {
		for _, role := range []string{"web", "db"} {
			if err := s.AppendDecision(decision(role, t0.Add(time.Duration(i)*time.Minute), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := decision("web", t0.Add(9*time.Minute), 9)
	for _, tc := range []struct {
		name   string
		role   string
		since  time.Time
		limit  int
		wantAt []int // minutes after t0, in order
	}{
		{name: "all of a role newest first", role: "web", wantAt: []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{name: "limit", role: "web", limit: 3, wantAt: []int{9, 8, 7}},
		{name: "since is inclusive", role: "db", since: t0.Add(7 * time.Minute), wantAt: []int{9, 8, 7}},
		{name: "unknown role", role: "cache"},
		{name: "every role merged", since: t0.Add(8 * time.Minute), wantAt: []int{9, 9, 8, 8}},
		{name: "every role limited", limit: 3, wantAt: []int{9, 9, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Decisions(tc.role, tc.since, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var at []int
			for _, r := range got {
				at = append(at, int(r.At.Sub(t0)/time.Minute))
			}
			if !reflect.DeepEqual(at, tc.wantAt) {
				t.Fatalf("got minutes %v, want %v", at, tc.wantAt)
			}
		})
	}
	got, _ := s.Decisions("web", time.Time{}, 1)
	if !got[0].At.Equal(want.At) {
		t.Fatalf("time did not round trip: %s", got[0].At)
	}
	got[0].At = want.At
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("record did not round trip:\n got %+v\nwant %+v", got[0], want)
	}
}

func TestDecisionRetention(t *testing.T) {
	t.Run("by age", func(t *testing.T) {
		s := openTest(t, Options{DecisionRetention: time.Hour})
		for i := range 10 {
			if err := s.AppendDecision(decision("web", t0.Add(time.Duration(i)*15*time.Minute), i)); err != nil {
				t.Fatal(err)
			}
		}
		// Newest at 135m: kept from 75m on (75, 90, 105, 120, 135).
		got, _ := s.Decisions("web", time.Time{}, 0)
		if len(got) != 5 || !got[4].At.Equal(t0.Add(75*time.Minute)) {
			t.Fatalf("kept %d decisions, oldest %v; want 5 from t0+75m", len(got), got[len(got)-1].At)
		}
	})
	t.Run("by count", func(t *testing.T) {
		s := openTest(t, Options{DecisionsPerRole: 4})
		for i := range 10 {
			if err := s.AppendDecision(decision("web", t0.Add(time.Duration(i)*time.Second), i)); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendDecision(decision("db", t0.Add(time.Duration(i)*time.Second), i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, role := range []string{"web", "db"} {
			got, _ := s.Decisions(role, time.Time{}, 0)
			if len(got) != 4 || got[0].Desired != 9 || got[3].Desired != 6 {
				t.Fatalf("%s: kept %d, want the newest 4 (9..6): %+v", role, len(got), got)
			}
		}
	})
	t.Run("equal times stay distinct", func(t *testing.T) {
		s := openTest(t, Options{})
		for i := range 3 {
			if err := s.AppendDecision(decision("web", t0, i)); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Decisions("web", time.Time{}, 0)
		if len(got) != 3 || got[0].Desired != 2 || got[2].Desired != 0 {
			t.Fatalf("got %d decisions at the same instant, want 3 newest first: %+v", len(got), got)
		}
	})
}

func TestSamples(t *testing.T) {
	s := openTest(t, Options{SampleRetention: time.Hour})
	var in []scheduler.Sample
	for i := range 6 {
		in = append(in, scheduler.Sample{At: t0.Add(time.Duration(i) * 10 * time.Minute), Value: float64(i) * 1.5})
	}
	if err := s.AppendSamples("web", in); err != nil {
		t.Fatal(err)
	}
	// An overlapping backfill replaces, not duplicates.
	if err := s.AppendSamples("web", []scheduler.Sample{{At: t0.Add(20 * time.Minute), Value: 99}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Samples("web", t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1.5, 99, 4.5, 6, 7.5}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d: %v", len(got), len(want), got)
	}
	for i, sm := range got {
		if sm.Value != want[i] || !sm.At.Equal(t0.Add(time.Duration(i+1)*10*time.Minute)) || sm.At.Location() != time.UTC {
			t.Errorf("sample %d: %v %v, want %v at t0+%dm UTC", i, sm.At, sm.Value, want[i], (i+1)*10)
		}
	}
	// Retention: appending at t0+2h drops what is older than t0+1h.
	if err := s.AppendSamples("web", []scheduler.Sample{{At: t0.Add(2 * time.Hour), Value: 1}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Samples("web", time.Time{})
	if len(got) != 1 {
		t.Fatalf("after retention: %v, want only the t0+2h sample", got)
	}
	for _, v := range []float64{nanValue(), infValue()} {
		if err := s.AppendSamples("web", []scheduler.Sample{{At: t0, Value: v}}); err == nil {
			t.Errorf("value %g accepted", v)
		}
	}
	if got, _ := s.Samples("db", time.Time{}); len(got) != 0 {
		t.Fatalf("unknown role has samples: %v", got)
	}
}

func TestSampleEncodingIs16Bytes(t *testing.T) {
	k, v := timeKey(t0), f64(3.25)
	if len(k)+len(v) != 16 {
		t.Fatalf("sample takes %d bytes, want 16", len(k)+len(v))
	}
	for _, tm := range []time.Time{time.Unix(0, -5), time.Unix(0, 0), t0} {
		if got := keyTime(timeKey(tm)); !got.Equal(tm) {
			t.Errorf("time %v round trips to %v", tm, got)
		}
	}
	if string(timeKey(time.Unix(0, -5))) >= string(timeKey(time.Unix(0, 5))) {
		t.Error("negative times do not sort first")
	}
}

func TestDurationsAndLeadTime(t *testing.T) {
	s := openTest(t, Options{DurationsPerKind: 5, LeadTimeMinSamples: 3})
	fallback := 7 * time.Minute
	if got := s.LeadTime("web", 0.9, fallback); got != fallback {
		t.Fatalf("lead time with no history: %s, want the fallback", got)
	}
	add := func(d time.Duration, at time.Time) {
		t.Helper()
		if err := s.AppendDuration("web", DurationReady, d, at); err != nil {
			t.Fatal(err)
		}
	}
	add(2*time.Minute, t0)
	add(4*time.Minute, t0.Add(time.Minute))
	if got := s.LeadTime("web", 0.9, fallback); got != fallback {
		t.Fatalf("lead time with 2 samples: %s, want the fallback", got)
	}
	add(3*time.Minute, t0.Add(2*time.Minute))
	if got := s.LeadTime("web", 0.5, fallback); got != 3*time.Minute {
		t.Fatalf("median lead time: %s, want 3m", got)
	}
	// Bounded to the newest 5: the 2m and 4m go.
	for i := range 5 {
		add(time.Duration(10+i)*time.Minute, t0.Add(time.Duration(3+i)*time.Minute))
	}
	ds, err := s.Durations("web", DurationReady, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds, []time.Duration{10 * time.Minute, 11 * time.Minute, 12 * time.Minute, 13 * time.Minute, 14 * time.Minute}) {
		t.Fatalf("kept %v, want the newest five", ds)
	}
	if got := s.LeadTime("web", 0.9, fallback); got != 13*time.Minute+36*time.Second {
		t.Fatalf("p90 lead time %s, want 13m36s", got)
	}
	// Since filters; other kinds and roles are apart.
	if ds, _ := s.Durations("web", DurationReady, t0.Add(6*time.Minute)); len(ds) != 2 {
		t.Fatalf("since: %v, want 2", ds)
	}
	if ds, _ := s.Durations("web", DurationDeploy, time.Time{}); len(ds) != 0 {
		t.Fatalf("deploy durations: %v", ds)
	}
	if got := s.LeadTime("db", 0.9, fallback); got != fallback {
		t.Fatalf("db lead time %s, want the fallback", got)
	}
	if err := s.AppendDuration("web", DurationReady, -time.Second, t0); err == nil {
		t.Fatal("negative duration accepted")
	}
}

func TestQuantile(t *testing.T) {
	ds := []time.Duration{40, 10, 30, 20}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 10}, {-1, 10}, {1, 40}, {2, 40}, {0.5, 25}, {1.0 / 3, 20}, {0.9, 37}} {
		t.Run(fmt.Sprint(tc.q), func(t *testing.T) {
			if got := quantile(ds, tc.q); got != tc.want {
				t.Fatalf("quantile(%v) = %d, want %d", tc.q, got, tc.want)
			}
		})
	}
	if ds[0] != 40 {
		t.Fatal("quantile sorted its argument")
	}
}

func TestDesired(t *testing.T) {
	s := openTest(t, Options{})
	must(t, s.PutDesired("web", 4, t0))
	must(t, s.PutDesired("web", 6, t0.Add(time.Minute)))
	must(t, s.PutDesired("db", 1, t0))
	desired, err := s.Desired()
	if err != nil {
		t.Fatal(err)
	}
	if len(desired) != 2 || desired["web"].Count != 6 || !desired["web"].At.Equal(t0.Add(time.Minute)) || desired["db"].Count != 1 {
		t.Fatalf("desired %+v", desired)
	}
	// What the service does on restart: the restored count is held by
	// stabilization as if the service had never stopped.
	r := scheduler.NewRole(scheduler.Params{Role: "web", Min: 1, Max: 10, Stabilization: 10 * time.Minute}, nil, nil)
	r.Restore(desired["web"].Count, desired["web"].At)
	if rec := r.Decide(t0.Add(5*time.Minute), nil); rec.Desired != 6 {
		t.Fatalf("restored role decided %d, want 6 held by stabilization\n%s", rec.Desired, rec)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fill writes one of everything; check asserts it is all there.
func fill(s *Store) error {
	return errors.Join(
		s.PutOverride(override("web", 6, t0.Add(time.Hour))),
		s.AppendDecision(decision("web", t0, 6)),
		s.AppendSamples("web", []scheduler.Sample{{At: t0, Value: 240}}),
		s.AppendDuration("web", DurationReady, 90*time.Second, t0),
		s.PutDesired("web", 6, t0),
	)
}

func check(s *Store) error {
	var errs []error
	if o, err := s.Overrides(t0); err != nil || len(o) != 1 || o[0].Count != 6 {
		errs = append(errs, fmt.Errorf("overrides %+v, %v", o, err))
	}
	if d, err := s.Decisions("web", time.Time{}, 0); err != nil || len(d) != 1 || d[0].Desired != 6 {
		errs = append(errs, fmt.Errorf("decisions %+v, %v", d, err))
	}
	if sm, err := s.Samples("web", time.Time{}); err != nil || len(sm) != 1 || sm[0].Value != 240 {
		errs = append(errs, fmt.Errorf("samples %+v, %v", sm, err))
	}
	if ds, err := s.Durations("web", DurationReady, time.Time{}); err != nil || len(ds) != 1 || ds[0] != 90*time.Second {
		errs = append(errs, fmt.Errorf("durations %v, %v", ds, err))
	}
	if d, err := s.Desired(); err != nil || d["web"].Count != 6 {
		errs = append(errs, fmt.Errorf("desired %+v, %v", d, err))
	}
	return errors.Join(errs...)
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, fill(s))
	must(t, s.Close())
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, check(s))
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// flock conflicts between two open file descriptions even in one
	// process, as it would between two tide processes.
	_, err = Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	must(t, s.Close())
	s2, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

// childHolds opens the store, says so, and exits without closing it when
// its standard input is closed.
func childHolds(dir string) int {
	if _, err := Open(dir, Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("open")
	io.Copy(io.Discard, os.Stdin)
	return 1
}

func TestLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "open\n" {
		t.Fatalf("child did not open the store: %q, %v", line, err)
	}
	_, err = Open(dir, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another tide") {
		t.Fatalf("open while another process holds it: %v, want ErrLocked naming the cause", err)
	}
	// The child dies without closing: the kernel releases its lock.
	stdin.Close()
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly, want exit status 1")
	}
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open after the other process died: %v", err)
	}
	s.Close()
}

func TestConcurrentUse(t *testing.T) {
	s := openTest(t, Options{NoSync: true})
	const workers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := range workers {
		role := fmt.Sprintf("r%d", w)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				at := t0.Add(time.Duration(i) * time.Second)
				if err := errors.Join(
					s.AppendDecision(decision(role, at, i)),
					s.AppendSamples(role, []scheduler.Sample{{At: at, Value: float64(i)}}),
					s.PutDesired(role, i, at),
				); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Decisions("", time.Time{}, 10); err != nil {
					errs <- err
					return
				}
				if _, err := s.Samples(role, time.Time{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		role := fmt.Sprintf("r%d", w)
		d, _ := s.Decisions(role, time.Time{}, 0)
		sm, _ := s.Samples(role, time.Time{})
		if len(d) != each || len(sm) != each || d[0].Desired != each-1 {
			t.Errorf("%s: %d decisions, %d samples, want %d each", role, len(d), len(sm), each)
		}
	}
}

// childWrites is the body of the child process: commit everything, then
// exit without closing the database, as a killed tide would.
func childWrites(dir string) int {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := fill(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	os.Exit(1) // no Close, no deferred clean-up
	return 0
}

func TestKilledProcessKeepsCommitted(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1\n%s", err, out)
	}
	s, err := Open(dir, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer s.Close()
	must(t, check(s))
}

func nanValue() float64 { var z float64; return z / z }
func infValue() float64 { var z float64; return 1 / z }
