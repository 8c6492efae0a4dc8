package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/aws"
	"github.com/tideops/tide/cloud/ec2local"
	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/deployer"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/internal/localtest"
)

// ec2Env runs tide commands against the aws cloud, through the real SDK,
// with an EC2 test server whose instances are local-cloud hosts.
type ec2Env struct {
	t        *testing.T
	stateDir string // tide's
	file     string
	keyFile  string
	cloud    *local.Provider // the hosts behind the EC2 instances
	srv      *ec2test.Server
	backend  *ec2local.Backend
	url      string
}

const ec2Schedule = `name: %s
cloud:
  provider: aws
  region: eu-west-1
  endpoint: %s
  image: ami-demo
ssh:
  port: 2222
  identity_file: %s
  deadline: 1m
data_path: /mnt
roles:
  - name: db
    instance_type: t3.large
    min: %d
    max: 1
  - name: web
    instance_type: t3.medium
    min: %d
    max: 8
`

func newEC2Env(t *testing.T, name, network string, wrap func(http.Handler) http.Handler) *ec2Env {
	t.Helper()
	return newEC2EnvBooting(t, name, network, wrap, 200*time.Millisecond)
}

// newEC2EnvBooting is newEC2Env with hosts that take bootDelay to boot.
func newEC2EnvBooting(t *testing.T, name, network string, wrap func(http.Handler) http.Handler, bootDelay time.Duration) *ec2Env {
	t.Helper()
	dir := t.TempDir()
	f := &ec2Env{t: t, stateDir: filepath.Join(dir, "state"), file: filepath.Join(dir, "fleet.yaml"),
		keyFile: filepath.Join(dir, "id_ed25519")}
	signer, err := stateKey(f.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	f.cloud, err = local.New(local.Options{
		StateDir:       filepath.Join(dir, "ec2"),
		Network:        network,
		Port:           2222,
		BootDelay:      bootDelay,
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		StopGrace:      3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := ec2test.DefaultOptions()
	opts.Region = "eu-west-1"
	opts.Credentials = map[string]string{"demo": "demo"} // what run gives the SDK
	f.srv, f.backend = ec2local.NewServer(opts, f.cloud)
	var h http.Handler = f.srv
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	f.url = hs.URL
	t.Cleanup(func() {
		hs.Close()
		// Every host this test started goes, whatever the test did.
		insts, err := f.cloud.List(context.Background(), "")
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, in := range insts {
			if err := f.cloud.Terminate(context.Background(), in.ID); err != nil && !fleet.IsNotFound(err) {
				t.Errorf("cleanup: terminating %s: %v", in.ID, err)
			}
		}
	})
	f.schedule(name, 1, 2)
	return f
}

// schedule writes the schedule file with db and web counts.
func (f *ec2Env) schedule(name string, db, web int) {
	f.t.Helper()
	s := fmt.Sprintf(ec2Schedule, name, f.url, f.keyFile, db, web)
	if err := os.WriteFile(f.file, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// run runs a tide command with an environment of its own: credentials
// for the SDK, standard retries without long waits, nothing from the
// process environment.
func (f *ec2Env) run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	vars := map[string]string{
		"TIDE_STATE_DIR":        f.stateDir,
		"AWS_ACCESS_KEY_ID":     "demo",
		"AWS_SECRET_ACCESS_KEY": "demo",
		"AWS_RETRY_MODE":        "standard",
		"TIDE_AWS_MAX_BACKOFF":  "1ms",
	}
	var out, errb syncBuffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string { return vars[k] },
		Logger: slog.New(slog.NewTextHandler(&errb, nil)),
	}
	code = run(ctx, e, append(args, "-c", f.file))
	return code, out.String(), errb.String()
}

// live returns the instances the EC2 server shows pending or running, by
// label, once each is backed by exactly one live local host and no local
// host backs anything else (no orphan): a launch the server is still
// starting may take a moment to get there.
func (f *ec2Env) live() []fleet.Instance {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, problem := f.observe()
		if problem == "" {
			return out
		}
		if time.Now().After(deadline) {
			f.t.Fatal(problem)
		}
		select {
		case <-f.t.Context().Done():
			f.t.Fatal(f.t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *ec2Env) observe() ([]fleet.Instance, string) {
	var out []fleet.Instance
	backing := map[string]bool{}
	for _, in := range f.srv.Instances() {
		if in.State.Live() {
			out = append(out, in)
			backing[in.ID] = true
		}
	}
	hosts, err := f.cloud.List(context.Background(), "")
	if err != nil {
		return nil, err.Error()
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		id := h.Tags[ec2local.TagInstanceID]
		if !h.State.Live() || !backing[id] || seen[id] {
			// Its console holds the host process's own output: why it
			// stopped, if it did.
			console, _ := f.cloud.ConsoleOutput(context.Background(), h.ID)
			if len(console) > 2000 {
				console = console[len(console)-2000:]
			}
			return nil, fmt.Sprintf("local host %s (%s) backs no live instance of its own (instance %q); its console ends:\n%s", h.ID, h.State, id, console)
		}
		seen[id] = true
	}
	if len(seen) != len(backing) {
		return nil, fmt.Sprintf("%d live instances, %d local hosts behind them", len(backing), len(seen))
	}
	slices.SortFunc(out, func(a, b fleet.Instance) int { return strings.Compare(a.Label, b.Label) })
	return out, ""
}

// checkHosts checks that the live instances are exactly labels, each with
// its LABEL file written on its host.
func (f *ec2Env) checkHosts(labels ...string) []fleet.Instance {
	f.t.Helper()
	live := f.live()
	var got []string
	for _, in := range live {
		got = append(got, in.Label)
		b, err := os.ReadFile(filepath.Join(in.Tags[local.TagDataPath], "LABEL"))
		if err != nil || strings.TrimSpace(string(b)) != in.Label {
			f.t.Errorf("%s (%s): LABEL holds %q (%v), want %q", in.ID, in.Address, b, err, in.Label)
		}
	}
	if !slices.Equal(got, labels) {
		f.t.Fatalf("live instances %q, want %q", got, labels)
	}
	return live
}

// TestApplyThroughEC2 is issue 4's "done when" through the aws cloud: the
// real aws-sdk-go-v2 client against the EC2 test server whose instances are
// local hosts serving real SSH, with injected throttling and capacity
// errors and a tide killed in the middle of an apply.
func TestApplyThroughEC2(t *testing.T) {
	f := newEC2Env(t, "it-ec2", "127.0.93.0/25", nil)
	ctx := t.Context()

	// apply: the hosts come up, labelled, their keys verified against the
	// fingerprints on their consoles.
	code, out, errOut := f.run(ctx, "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("apply exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if want := []string{"db-1:launched", "web-1:launched", "web-2:launched"}; !slices.Equal(actionsOf(decodeReport(t, out)), want) {
		t.Fatalf("apply = %q, want %q", actionsOf(decodeReport(t, out)), want)
	}
	if strings.Contains(errOut, "trusting host key on first use") {
		t.Errorf("a host key was trusted on first use although the consoles print them:\n%s", errOut)
	}
	live := f.checkHosts("db-1", "web-1", "web-2")
	kh, err := os.ReadFile(filepath.Join(f.stateDir, "ssh", "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range live {
		if in.Zone != "eu-west-1a" || in.Type == "" || !strings.HasPrefix(in.Address, "127.0.93.") {
			t.Errorf("instance %+v", in)
		}
		console, err := f.backend.ConsoleOutput(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		fp := pinnedFingerprint(t, kh, "["+in.Address+"]:2222")
		if fp == "" || !strings.Contains(console, fp) {
			t.Errorf("%s: known_hosts pins %q, not a key its console prints:\n%s", in.Label, fp, console)
		}
	}

	code, out, errOut = f.run(ctx, "status")
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	for _, want := range []string{"db-1 ", "web-1 ", "web-2 ", "running", "127.0.93.", "eu-west-1a", "3 hosts"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if want := []string{"db-1:kept", "web-1:kept", "web-2:kept"}; code != 0 || !slices.Equal(actionsOf(decodeReport(t, out)), want) {
		t.Fatalf("second apply (exit %d) = %q, want %q\n%s", code, actionsOf(decodeReport(t, out)), want, errOut)
	}

	// Throttling is retried; a launch EC2 has no capacity for fails that
	// label only, with exit 1 and a per-host summary.
	f.schedule("it-ec2", 1, 4)
	runs, describes := f.srv.Calls("RunInstances"), f.srv.Calls("DescribeInstances")
	f.srv.FailNext("DescribeInstances", "RequestLimitExceeded", 3)
	f.srv.FailNext("RunInstances", "RequestLimitExceeded", 3)
	f.srv.FailNext("RunInstances", "InsufficientInstanceCapacity", 1)
	code, out, errOut = f.run(ctx, "apply")
	if code != 1 {
		t.Fatalf("apply with a capacity error: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"web-3", "web-4", "capacity while launched", "InsufficientInstanceCapacity", "1 launched, 3 kept, 0 removed, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if n := f.srv.Calls("RunInstances") - runs; n != 5 {
		t.Errorf("%d RunInstances calls, want 5 (3 throttled, 1 without capacity, 1 launch)", n)
	}
	if n := f.srv.Calls("DescribeInstances") - describes; n < 4 {
		t.Errorf("%d DescribeInstances calls, want the 3 throttled and more", n)
	}
	if n := len(f.live()); n != 4 {
		t.Errorf("%d instances after the failed launch, want 4", n)
	}

	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("apply after the capacity error: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := actionsOf(decodeReport(t, out)); len(got) != 5 || !slices.Contains(got, "web-3:launched") && !slices.Contains(got, "web-4:launched") {
		t.Errorf("apply after the capacity error = %q", got)
	}
	f.checkHosts("db-1", "web-1", "web-2", "web-3", "web-4")

	// Killed in the middle: as soon as the server has launched an instance
	// for a RunInstances call, the apply's context ends, so tide may never
	// see the answer. Applying again ends with exactly the planned hosts:
	// the launch is retried with the same client token.
	f.schedule("it-ec2", 1, 6)
	before := len(f.srv.Instances())
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-tick.C:
			}
			if len(f.srv.Instances()) > before {
				cancel()
				return
			}
		}
	}()
	code, out, errOut = f.run(kctx, "apply")
	if code == 0 {
		t.Fatalf("killed apply exited 0:\n%s\n%s", out, errOut)
	}
	if n := len(f.live()); n < 6 || n > 7 {
		t.Fatalf("%d instances after the killed apply, want 6 or 7", n)
	}
	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if code != 0 {
		t.Fatalf("apply after the kill: exit %d\n%s\n%s", code, out, errOut)
	}
	f.checkHosts("db-1", "web-1", "web-2", "web-3", "web-4", "web-5", "web-6")
	launches := map[string]int{}
	for _, in := range f.srv.Instances() { // terminated ones too: none was
		launches[in.Label]++
	}
	if launches["web-5"] != 1 || launches["web-6"] != 1 {
		t.Errorf("instances launched per label: %v, want one each for web-5 and web-6", launches)
	}
	code, out, _ = f.run(ctx, "apply", "--output", "json")
	for _, a := range actionsOf(decodeReport(t, out)) {
		if code != 0 || !strings.HasSuffix(a, ":kept") {
			t.Fatalf("apply after the recovery (exit %d) = %q, want all kept", code, actionsOf(decodeReport(t, out)))
		}
	}

	// down removes every instance and the local host behind it.
	code, out, errOut = f.run(ctx, "down")
	if code != 0 || !strings.Contains(out, "0 launched, 0 kept, 7 removed, 0 failed") {
		t.Fatalf("down exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(f.live()); n != 0 {
		t.Errorf("%d instances after down", n)
	}
	if hosts, err := f.cloud.List(ctx, ""); err != nil || len(hosts) != 0 {
		t.Errorf("local hosts left after down: %d (%v)", len(hosts), err)
	}
}

// zeroBackoff makes the SDK retry at once.
type zeroBackoff struct{}

func (zeroBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// crashHost makes the process of local host lid crash as a Go program
// does (SIGQUIT: the runtime prints every goroutine's stack to stderr, the
// host's console log, and exits), once it has made its host key (so that
// the runtime is up to print), and waits until its processes are gone.
func crashHost(cloud *local.Provider, lid string) error {
	key := filepath.Join(cloud.HostDir(lid), "ssh_host_ed25519_key")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(key); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s made no key within 20s", lid)
		}
		<-time.After(10 * time.Millisecond)
	}
	marker := "TIDE_HOST_ID=" + lid
	pids := localtest.ProcessesWith(marker)
	if len(pids) == 0 {
		return fmt.Errorf("no process of host %s", lid)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(localtest.ProcessesWith(marker)) > 0; {
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s still runs after SIGQUIT", lid)
		}
		<-time.After(10 * time.Millisecond)
	}
	return nil
}

// TestApplyThroughEC2HostDiesWhileBooting: the local host behind a new EC2
// instance crashes while it boots (before tide has even seen the launch's
// answer). The instance terminates as one that fails to launch does on EC2
// (Server.InternalError), its console says why, the apply reports the
// label failed with instance-gone at once rather than at the 5 minute
// address deadline, and the next apply launches the label again.
func TestApplyThroughEC2HostDiesWhileBooting(t *testing.T) {
	var (
		f       *ec2Env
		mu      sync.Mutex
		crashed string // the instance whose host crashed
	)
	crashFirstLaunch := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			mu.Lock()
			defer mu.Unlock()
			if form.Get("Action") != "RunInstances" || crashed != "" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for _, in := range f.srv.Instances() {
				if in.Label != "web-1" {
					continue
				}
				hosts, err := f.cloud.List(context.Background(), "")
				for _, h := range hosts {
					if h.Tags[ec2local.TagInstanceID] == in.ID {
						err = crashHost(f.cloud, h.ID)
						crashed = in.ID
					}
				}
				if err != nil || crashed == "" {
					t.Errorf("crashing the host of %s: %v", in.ID, err)
				}
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	f = newEC2EnvBooting(t, "it-ec2-crash", "127.0.99.64/27", crashFirstLaunch, 2*time.Second)
	f.schedule("it-ec2-crash", 0, 1)

	// Were the death not seen, the apply would wait 5 minutes for an
	// address: the context ends it long before.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code, out, errOut := f.run(ctx, "apply", "--output", "json")
	rep := decodeReport(t, out)
	if code != 1 || !slices.Equal(actionsOf(rep), []string{"web-1:failed"}) || rep.Hosts[0]["error_kind"] != "instance-gone" {
		t.Fatalf("apply with a host crashing: exit %d, want 1 and web-1 failed with instance-gone\n%s\n%s", code, out, errOut)
	}
	mu.Lock()
	dead := crashed
	mu.Unlock()
	if id := rep.Hosts[0]["instance_id"]; id != dead {
		t.Errorf("failed host is instance %v, want %s (the one whose host crashed)", id, dead)
	}

	// EC2's view: terminated on an internal error, with a console that
	// ends with the host process's own output.
	client := ec2.New(ec2.Options{Region: "eu-west-1", BaseEndpoint: sdkaws.String(f.url),
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
		// The standard retryer, without waits: the SDK retries a response
		// whose connection the transport closed while it was read
		// (aws/aws-sdk-go-v2#2737), which a loaded machine sees.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = zeroBackoff{} })})
	d, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: sdkaws.String("instance-id"), Values: []string{dead}}}})
	if err != nil || len(d.Reservations) != 1 {
		t.Fatalf("describing the crashed instance: %+v, %v", d, err)
	}
	in := d.Reservations[0].Instances[0]
	if in.State.Name != ec2types.InstanceStateNameTerminated || in.StateReason == nil ||
		sdkaws.ToString(in.StateReason.Code) != "Server.InternalError" {
		t.Errorf("the crashed instance is %s (%+v), want terminated on Server.InternalError", in.State.Name, in.StateReason)
	}
	co, err := client.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: sdkaws.String(dead)})
	if err != nil {
		t.Fatal(err)
	}
	if console, _ := base64.StdEncoding.DecodeString(sdkaws.ToString(co.Output)); !strings.Contains(string(console), "SIGQUIT: quit") {
		t.Errorf("the crashed instance's console does not say why:\n%s", console)
	}

	code, out, errOut = f.run(ctx, "apply", "--output", "json")
	if got := actionsOf(decodeReport(t, out)); code != 0 || !slices.Equal(got, []string{"web-1:launched"}) {
		t.Fatalf("apply after the crash: exit %d, %q, want web-1 launched\n%s", code, got, errOut)
	}
	if live := f.checkHosts("web-1"); live[0].ID == dead {
		t.Errorf("web-1 is still the crashed instance %s", dead)
	}
}

// TestServeBacksOffOnAuthFailure runs tide serve against the EC2 test
// server with a wrong secret: the loop keeps deciding at every step, the
// status says the cloud refused the credentials and when tide tries again,
// a metric counts the refusals, and the converges (each a DescribeInstances
// call) are spaced out rather than made at every step. Once the credentials
// are fixed, a schedule reload loads them and the fleet converges.
func TestServeBacksOffOnAuthFailure(t *testing.T) {
	f := newEC2Env(t, "it-ec2-auth", "127.0.99.128/27", nil)
	f.schedule("it-ec2-auth", 0, 1)
	base, err := os.ReadFile(f.file)
	if err != nil {
		t.Fatal(err)
	}
	writeSchedule := func(extra string) {
		t.Helper()
		tmp := f.file + ".tmp" // renamed in place: the watcher never reads half a file
		if err := os.WriteFile(tmp, append(append([]byte{}, base...), "interval: 200ms\n"+extra...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.file); err != nil {
			t.Fatal(err)
		}
	}
	writeSchedule("")

	var mu sync.Mutex
	vars := map[string]string{
		"TIDE_STATE_DIR":        f.stateDir,
		"TIDE_TOKEN":            testAPIToken,
		"AWS_ACCESS_KEY_ID":     "demo",
		"AWS_SECRET_ACCESS_KEY": "not-the-demo-secret",
		"AWS_RETRY_MODE":        "standard",
		"TIDE_AWS_MAX_BACKOFF":  "1ms",
	}
	var out, errb syncBuffer
	e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string {
			mu.Lock()
			defer mu.Unlock()
			return vars[k]
		},
		Logger: slog.New(slog.NewTextHandler(&errb, nil)),
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"serve", "-c", f.file, "--listen", "127.0.0.1:0", "--reload-poll", "50ms", "--grace", "5s"})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("tide serve did not stop within 30s")
		}
	})
	s := &servedFleet{out: &out, errs: &errb, done: done}
	re := regexp.MustCompile(`listening on (http://[0-9.:]+)/`)
	eventually(t, 20*time.Second, "tide serve to listen", func() bool {
		select {
		case code := <-done:
			t.Fatalf("tide serve exited %d: %s", code, errb.String())
		default:
		}
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			s.addr = m[1]
		}
		return m != nil
	})
	var st struct {
		ApplyError string `json:"apply_error"`
	}
	status := func() string {
		st.ApplyError = ""
		if code := s.get(t, "/api/status", &st); code != http.StatusOK {
			t.Fatalf("GET /api/status: %d", code)
		}
		return st.ApplyError
	}
	eventually(t, 20*time.Second, "the status to show the authentication failure", func() bool {
		return strings.Contains(status(), "ec2 authentication failed")
	})
	for _, want := range []string{"SignatureDoesNotMatch", "tries again in", "SIGHUP"} {
		if !strings.Contains(st.ApplyError, want) {
			t.Errorf("apply error lacks %q: %s", want, st.ApplyError)
		}
	}

	// Twelve steps (two decisions each, 2.4s at 200ms): without a backoff,
	// twelve converges, each listing the fleet; with it, two or three.
	decisions := func() float64 { return metricSum(t, s.addr, "tide_decisions_total") }
	d0, c0 := decisions(), f.srv.Calls("DescribeInstances")
	eventually(t, 30*time.Second, "twelve more steps", func() bool { return decisions() >= d0+24 })
	if n := f.srv.Calls("DescribeInstances") - c0; n > 4 {
		t.Errorf("%d DescribeInstances calls in twelve steps, want at most 4 (backing off)", n)
	}
	if n := metricSum(t, s.addr, `tide_failures_total{kind="cloud-auth"}`); n < 2 {
		t.Errorf("tide_failures_total{kind=\"cloud-auth\"} = %v, want at least 2", n)
	}
	if n := len(f.srv.Instances()); n != 0 {
		t.Errorf("%d instances launched with refused credentials", n)
	}

	// The credentials are fixed; a reload (here: the file changes) loads
	// them and tries at once, without waiting out the backoff.
	mu.Lock()
	vars["AWS_SECRET_ACCESS_KEY"] = "demo"
	mu.Unlock()
	writeSchedule("# credentials fixed\n")
	eventually(t, 60*time.Second, "web-1 to be launched and the error to clear", func() bool {
		return status() == "" && len(f.srv.Instances()) == 1
	})
	f.checkHosts("web-1")
}

// TestAuthBackoff: the waits between converges refused for the
// credentials start at the decision interval (a second at least), double,
// stop growing at five minutes, and end with a converge that authenticates.
func TestAuthBackoff(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		interval time.Duration
		want     []time.Duration
	}{
		{"minute steps", time.Minute, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
		{"short steps", 200 * time.Millisecond, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b authBackoff
			if b.waiting(t0) {
				t.Fatal("waiting before any failure")
			}
			now := t0
			for i, want := range tt.want {
				if got := b.failed(now, tt.interval); got != want {
					t.Fatalf("failure %d: wait %s, want %s", i+1, got, want)
				}
				if !b.waiting(now.Add(want-time.Millisecond)) || b.waiting(now.Add(want)) {
					t.Errorf("failure %d: waiting does not end after %s", i+1, want)
				}
				now = now.Add(want)
			}
			b.reset()
			if b.waiting(now) || b.failed(now, tt.interval) != tt.want[0] {
				t.Error("after a reset, the backoff does not start over")
			}
		})
	}
}

// metricSum returns the sum of the samples of a metric at addr/metrics
// whose line starts with prefix (a name, or a name with labels).
func metricSum(t *testing.T, addr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := strings.TrimPrefix(line, prefix)
		if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
			continue // another metric whose name starts with this one's
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// pinnedFingerprint returns the SHA256 fingerprint of host's key in a
// known_hosts file, "" when it has none.
func pinnedFingerprint(t *testing.T, knownHosts []byte, host string) string {
	t.Helper()
	rest := knownHosts
	for len(rest) > 0 {
		_, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break
		}
		rest = r
		if slices.Contains(hosts, host) {
			return ssh.FingerprintSHA256(key)
		}
	}
	return ""
}

// TestApplyThroughEC2ConsoleContradictsKey: when the console prints a
// fingerprint the host does not present, the host is refused as a
// mismatch, never trusted.
func TestApplyThroughEC2ConsoleContradictsKey(t *testing.T) {
	lie := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			if form.Get("Action") != "GetConsoleOutput" {
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r)
				return
			}
			id := form.Get("InstanceId")
			console := ec2test.HostKeyConsole("ip-"+id, []string{ec2test.FakeFingerprint(id)})
			w.Header().Set("Content-Type", "text/xml")
			_ = xml.NewEncoder(w).Encode(struct {
				XMLName    xml.Name `xml:"GetConsoleOutputResponse"`
				InstanceID string   `xml:"instanceId"`
				Output     string   `xml:"output"`
			}{InstanceID: id, Output: base64.StdEncoding.EncodeToString([]byte(console))})
		})
	}
	f := newEC2Env(t, "it-ec2-lie", "127.0.93.128/25", lie)
	f.schedule("it-ec2-lie", 1, 0)
	code, out, errOut := f.run(t.Context(), "apply")
	if code != 1 {
		t.Fatalf("apply exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"db-1", "host-key-mismatch", "1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if kh, _ := os.ReadFile(filepath.Join(f.stateDir, "ssh", "known_hosts")); strings.TrimSpace(string(kh)) != "" {
		t.Errorf("known_hosts pinned a key the console contradicts:\n%s", kh)
	}
}

// TestEC2Demo runs `tide ec2-demo` as a user would and applies
// examples/aws-demo.yaml's kind of schedule against it with only the
// documented environment; stopping the demo stops its hosts.
func TestEC2Demo(t *testing.T) {
	dir := t.TempDir()
	demoState := filepath.Join(dir, "demo")
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var demoOut, demoErr syncBuffer
	de := &env{Stdout: &demoOut, Stderr: &demoErr, Stdin: strings.NewReader(""),
		Getenv: func(string) string { return "" }, Logger: slog.New(slog.NewTextHandler(&demoErr, nil))}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, de, []string{"ec2-demo", "--listen", "127.0.0.1:0", "--state-dir", demoState,
			"--network", "127.0.83.0/29", "--boot-delay", "200ms"})
	}()
	cloud, err := local.New(local.Options{StateDir: demoState, Network: "127.0.83.0/29", StopGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		insts, _ := cloud.List(context.Background(), "")
		for _, in := range insts {
			_ = cloud.Terminate(context.Background(), in.ID)
		}
	})

	var endpoint string
	deadline := time.Now().Add(20 * time.Second)
	for endpoint == "" {
		if _, rest, ok := strings.Cut(demoOut.String(), "EC2 endpoint: "); ok {
			endpoint, _, _ = strings.Cut(rest, " ")
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("ec2-demo exited %d:\n%s", code, demoErr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ec2-demo printed no endpoint:\n%s\n%s", demoOut.String(), demoErr.String())
		}
	}
	for _, want := range []string{"identity_file: " + filepath.Join(demoState, "ssh", "id_ed25519"), "AWS_ACCESS_KEY_ID=demo"} {
		if !strings.Contains(demoOut.String(), want) {
			t.Errorf("demo instructions lack %q:\n%s", want, demoOut.String())
		}
	}

	file := filepath.Join(dir, "fleet.yaml")
	s := strings.NewReplacer("http://127.0.0.1:8790", endpoint,
		"/tmp/tide-ec2-demo/ssh/id_ed25519", filepath.Join(demoState, "ssh", "id_ed25519")).Replace(readExample(t))
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TIDE_STATE_DIR": filepath.Join(dir, "state"),
		"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_EC2_METADATA_DISABLED": "true"}
	tide := func(args ...string) (int, string, string) {
		var out, errb syncBuffer
		e := &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
			Getenv: func(k string) string { return vars[k] }, Logger: slog.New(slog.NewTextHandler(&errb, nil))}
		code := run(t.Context(), e, append(args, "-c", file))
		return code, out.String(), errb.String()
	}
	if code, out, errOut := tide("apply"); code != 0 || !strings.Contains(out, "2 launched") {
		t.Fatalf("apply against the demo: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := tide("status"); code != 0 || !strings.Contains(out, "127.0.83.") || !strings.Contains(out, "2 hosts") {
		t.Fatalf("status against the demo: exit %d\n%s\n%s", code, out, errOut)
	}
	// The demo checks signatures: other credentials are refused, clearly.
	vars["AWS_SECRET_ACCESS_KEY"] = "not-the-demo-secret"
	if code, out, errOut := tide("status"); code == 0 || !strings.Contains(out+errOut, "ec2 authentication failed") ||
		!strings.Contains(out+errOut, "SignatureDoesNotMatch") {
		t.Errorf("status with a wrong secret: exit %d, want an authentication failure\n%s\n%s", code, out, errOut)
	}
	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("ec2-demo exited %d:\n%s", code, demoErr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("ec2-demo did not stop")
	}
	if insts, err := cloud.List(context.Background(), ""); err != nil || len(insts) != 0 {
		t.Errorf("%d hosts left after the demo stopped (%v)", len(insts), err)
	}
}

// readExample returns examples/aws-demo.yaml.
func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/aws-demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replayPages answers DescribeInstances from pages recorded off an EC2 test
// server, by the request's NextToken, so that a benchmark counts only the
// client's work.
type replayPages struct {
	next  http.RoundTripper // nil: replay
	pages map[string][]byte
}

func (r *replayPages) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	token := form.Get("NextToken")
	if r.next == nil {
		page, ok := r.pages[token]
		if !ok || form.Get("Action") != "DescribeInstances" {
			return nil, fmt.Errorf("no recorded %s page for token %q", form.Get("Action"), token)
		}
		return &http.Response{
			StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"text/xml;charset=UTF-8"}},
			Body:          io.NopCloser(bytes.NewReader(page)),
			ContentLength: int64(len(page)),
			Request:       req,
		}, nil
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := r.next.RoundTrip(req)
	if err != nil || form.Get("Action") != "DescribeInstances" {
		return resp, err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.pages[token] = page
	resp.Body = io.NopCloser(bytes.NewReader(page))
	return resp, nil
}

// failDialer fails the benchmark if the reconcile dials anything.
type failDialer struct{ b *testing.B }

func (d failDialer) Dial(context.Context, fleet.Instance, []string) (deployer.Host, error) {
	d.b.Error("the reconcile dialled a host")
	return nil, errors.New("no dialling in the benchmark")
}

// BenchmarkListAndReconcile10000 is issue 4's target end to end in one
// process: a reconcile of a converged fleet of 10,000 EC2 instances (ten
// roles of 1,000 labels, all running and in the label cache), as tide
// serve runs it at every interval: listing through the real SDK (request
// building, signing, retries, paging by 1,000, the page scanner), the
// label cache read and cross-referenced, the plan, and the report. The
// pages were recorded off the EC2 test server and are replayed from
// memory: no server work is counted. cpu-ms/op is the process's user and
// system CPU per reconcile (GC included).
func BenchmarkListAndReconcile10000(b *testing.B) {
	ctx := context.Background()
	srv := ec2test.NewServer(ec2test.Options{Region: "eu-west-1", Credentials: map[string]string{"demo": "demo"}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	var roles []deployer.Role
	desired := map[string]int{}
	zones := []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}
	for r := range 10 {
		role := fmt.Sprintf("role%d", r)
		roles = append(roles, deployer.Role{Name: role, Type: "m5.large", Image: "ami-bench", Zones: zones})
		desired[role] = 1000
	}
	for i := range 10000 {
		role, n := fmt.Sprintf("role%d", i%10), i/10+1
		_, err := srv.Add(ctx, fleet.LaunchSpec{Fleet: "bench", Role: role, Label: fleet.Label(role, n),
			Type: "m5.large", Zone: zones[n%3], Image: "ami-bench", Tags: map[string]string{"team": "ops"}})
		if err != nil {
			b.Fatal(err)
		}
	}
	rec := &replayPages{next: http.DefaultTransport.(*http.Transport).Clone(), pages: map[string][]byte{}}
	p, err := aws.New(ctx, aws.Options{
		Region:      "eu-west-1",
		Endpoint:    hs.URL,
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
		HTTPClient:  &http.Client{Transport: rec},
	})
	if err != nil {
		b.Fatal(err)
	}
	insts, err := p.List(ctx, "bench") // the first list makes them run, and is recorded
	if err != nil || len(insts) != 10000 {
		b.Fatalf("List: %d instances, %v", len(insts), err)
	}
	rec.next = nil

	// The label cache of a converged fleet (its file format, version 1).
	type entry struct {
		ID      string    `json:"id"`
		Address string    `json:"address"`
		Label   string    `json:"label"`
		Role    string    `json:"role"`
		At      time.Time `json:"labelled_at"`
	}
	hosts := map[string]entry{}
	for _, in := range insts {
		if in.Address == "" || in.State != fleet.StateRunning {
			b.Fatalf("instance not running with an address: %+v", in)
		}
		hosts[in.ID] = entry{ID: in.ID, Address: in.Address, Label: in.Label, Role: in.Role, At: in.LaunchedAt}
	}
	cache := filepath.Join(b.TempDir(), "labels.json")
	data, err := json.Marshal(map[string]any{"version": 1, "fleet": "bench", "hosts": hosts, "launches": map[string]any{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cache, data, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := deployer.New(deployer.Options{Name: "bench", Cloud: p, HostKeys: p, Dialer: failDialer{b},
		CachePath: cache, Roles: roles})
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	var rep deployer.Report
	cpu0 := processCPU(b)
	for b.Loop() {
		if rep, err = f.Reconcile(ctx, desired); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	if rep.Err() != nil || rep.Count(deployer.ActionKept) != 10000 || rep.Changed() {
		b.Fatalf("reconcile: %s, %v", rep.Summary(), rep.Err())
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
