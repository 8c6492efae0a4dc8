package ec2test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/tideops/tide/fleet"
)

// Test credentials: the one access key test servers accept.
const (
	testAccessKey = "AKIDTEST"
	testSecret    = "test-secret"
)

// newTestServer returns a Server accepting the test credentials.
func newTestServer(opts Options) *Server {
	opts.Credentials = map[string]string{testAccessKey: testSecret}
	return NewServer(opts)
}

// sign signs req, whose body is body, with the SDK's SigV4 signer for the
// test credentials, region us-east-1 and service ec2, at time at.
func sign(t testing.TB, req *http.Request, body string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

// formRequest returns an EC2 Query API request carrying params.
func formRequest(params url.Values) (*http.Request, string) {
	if params.Get("Version") == "" {
		params.Set("Version", apiVersion)
	}
	body := params.Encode()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, body
}

// call sends one signed EC2 Query request to s.
func call(t *testing.T, s *Server, params url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req, body := formRequest(params)
	sign(t, req, body, time.Now())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func runForm(token, itype string, tags ...string) url.Values {
	v := form("Action", "RunInstances", "ImageId", "ami-1", "InstanceType", itype, "MinCount", "1", "MaxCount", "1",
		"Placement.AvailabilityZone", "us-east-1b", "TagSpecification.1.ResourceType", "instance")
	if token != "" {
		v.Set("ClientToken", token)
	}
	for i := 0; i < len(tags); i += 2 {
		n := "TagSpecification.1.Tag." + string(rune('1'+i/2))
		v.Set(n+".Key", tags[i])
		v.Set(n+".Value", tags[i+1])
	}
	return v
}

// parsed is a loose view of any response, in the SDK's terms.
type parsed struct {
	XMLName   xml.Name
	Errors    []xmlError       `xml:"Errors>Error"`
	RequestID string           `xml:"RequestID"`
	Instances []xmlInstance    `xml:"instancesSet>item"`
	Reserv    []xmlReservation `xml:"reservationSet>item"`
	NextToken string           `xml:"nextToken"`
	Output    string           `xml:"output"`
	Return    bool             `xml:"return"`
}

func parse(t *testing.T, rec *httptest.ResponseRecorder) parsed {
	t.Helper()
	var p parsed
	if err := xml.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, rec.Body)
	}
	return p
}

func TestErrorShapes(t *testing.T) {
	s := newTestServer(Options{})
	tests := []struct {
		name       string
		params     url.Values
		auth       bool
		wantStatus int
		wantCode   string
	}{
		{"unknown action", form("Action", "RebootInstances"), true, 400, "InvalidAction"},
		{"unsigned", form("Action", "DescribeInstances"), false, 401, "AuthFailure"},
		{"bad filter", form("Action", "DescribeInstances", "Filter.1.Name", "vpc-id", "Filter.1.Value.1", "x"), true, 400, "InvalidParameterValue"},
		{"max results too small", form("Action", "DescribeInstances", "MaxResults", "2"), true, 400, "InvalidParameterValue"},
		{"ids with max results", form("Action", "DescribeInstances", "MaxResults", "5", "InstanceId.1", "i-1"), true, 400, "InvalidParameterCombination"},
		{"unknown id", form("Action", "DescribeInstances", "InstanceId.1", "i-404"), true, 400, "InvalidInstanceID.NotFound"},
		{"terminate unknown", form("Action", "TerminateInstances", "InstanceId.1", "i-404"), true, 400, "InvalidInstanceID.NotFound"},
		{"several instances", form("Action", "RunInstances", "ImageId", "ami-1", "MinCount", "1", "MaxCount", "3"), true, 400, "InvalidParameterValue"},
		{"no image", form("Action", "RunInstances", "MinCount", "1", "MaxCount", "1"), true, 400, "MissingParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := formRequest(tt.params)
			if tt.auth {
				sign(t, req, body, time.Now())
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			p := parse(t, rec)
			if p.XMLName.Local != "Response" || len(p.Errors) != 1 || p.Errors[0].Code != tt.wantCode ||
				p.Errors[0].Message == "" || p.RequestID == "" {
				t.Errorf("error response = %s", rec.Body)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		code       string
		wantStatus int
	}{
		{"RequestLimitExceeded", 503},
		{"InsufficientInstanceCapacity", 500},
		{"InternalError", 500},
		{"Throttling", 400},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			s := newTestServer(Options{})
			s.FailNext("RunInstances", tt.code, 2)
			for i := range 2 {
				rec := call(t, s, runForm("t", "t3.micro"))
				if rec.Code != tt.wantStatus || parse(t, rec).Errors[0].Code != tt.code {
					t.Fatalf("call %d: %d %s", i, rec.Code, rec.Body)
				}
			}
			if rec := call(t, s, runForm("t", "t3.micro")); rec.Code != 200 {
				t.Fatalf("third call: %d %s", rec.Code, rec.Body)
			}
			if got := s.Calls("RunInstances"); got != 3 {
				t.Errorf("Calls = %d, want 3", got)
			}
			if n := len(s.Instances()); n != 1 {
				t.Errorf("%d instances, want 1", n)
			}
		})
	}
}

func TestRunInstancesShape(t *testing.T) {
	s := newTestServer(Options{})
	rec := call(t, s, runForm("tok", "t3.micro", fleet.TagLabel, "web-1", "team", "a&b"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `xmlns="`+xmlns+`"`) {
		t.Fatalf("RunInstances: %d %s", rec.Code, rec.Body)
	}
	p := parse(t, rec)
	if p.XMLName.Local != "RunInstancesResponse" || len(p.Instances) != 1 {
		t.Fatalf("response = %s", rec.Body)
	}
	in := p.Instances[0]
	if in.State != (xmlState{Code: 0, Name: "pending"}) || in.PrivateIPAddress != "" || in.InstanceType != "t3.micro" ||
		in.Placement.AvailabilityZone != "us-east-1b" || in.ClientToken != "tok" || !strings.HasPrefix(in.InstanceID, "i-") {
		t.Errorf("instance = %+v", in)
	}
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[tg.Key] = tg.Value
	}
	if tags[fleet.TagLabel] != "web-1" || tags["team"] != "a&b" {
		t.Errorf("tags = %v", tags)
	}
}

func TestIdempotentClientToken(t *testing.T) {
	s := newTestServer(Options{})
	first := parse(t, call(t, s, runForm("tok", "t3.micro", "a", "1", "b", "2"))).Instances[0].InstanceID
	// Same parameters, tags in another order: the same instance.
	again := parse(t, call(t, s, runForm("tok", "t3.micro", "b", "2", "a", "1"))).Instances[0].InstanceID
	if again != first {
		t.Errorf("retry gave %s, want %s", again, first)
	}
	rec := call(t, s, runForm("tok", "m5.large", "a", "1", "b", "2"))
	if rec.Code != 400 || parse(t, rec).Errors[0].Code != "IdempotentParameterMismatch" {
		t.Errorf("reused token: %d %s", rec.Code, rec.Body)
	}
	if n := len(s.Instances()); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

func TestLifecycle(t *testing.T) {
	s := newTestServer(Options{PendingPolls: 2, NotFoundPolls: 1, TerminatedPolls: 2})
	id := parse(t, call(t, s, runForm("", "t3.micro"))).Instances[0].InstanceID
	byID := form("Action", "DescribeInstances", "InstanceId.1", id)
	describe := func() xmlInstance {
		t.Helper()
		rec := call(t, s, byID)
		p := parse(t, rec)
		if rec.Code != 200 || len(p.Reserv) != 1 || len(p.Reserv[0].Instances) != 1 {
			t.Fatalf("describe: %d %s", rec.Code, rec.Body)
		}
		return p.Reserv[0].Instances[0]
	}
	if rec := call(t, s, byID); rec.Code != 400 || parse(t, rec).Errors[0].Code != "InvalidInstanceID.NotFound" {
		t.Fatalf("first describe by id: %d %s", rec.Code, rec.Body)
	}
	for i := range 2 {
		if in := describe(); in.State.Name != "pending" || in.PrivateIPAddress != "" {
			t.Fatalf("describe %d: %+v", i, in)
		}
	}
	in := describe()
	if in.State != (xmlState{Code: 16, Name: "running"}) || !strings.HasPrefix(in.PrivateIPAddress, "10.0.") {
		t.Fatalf("third describe: %+v", in)
	}
	console := parse(t, call(t, s, form("Action", "GetConsoleOutput", "InstanceId", id)))
	text, err := base64.StdEncoding.DecodeString(console.Output)
	if err != nil || !strings.Contains(string(text), FakeFingerprint(id)) {
		t.Errorf("console output %q (%v)", text, err)
	}
	if p := parse(t, call(t, s, form("Action", "CreateTags", "ResourceId.1", id, "Tag.1.Key", "k", "Tag.1.Value", "v"))); !p.Return {
		t.Errorf("CreateTags did not return true")
	}
	var term xmlTerminateInstancesResponse
	if err := xml.Unmarshal(call(t, s, form("Action", "TerminateInstances", "InstanceId.1", id)).Body.Bytes(), &term); err != nil {
		t.Fatal(err)
	}
	if len(term.Instances) != 1 || term.Instances[0].PreviousState.Name != "running" || term.Instances[0].CurrentState.Name != "shutting-down" {
		t.Fatalf("terminate: %+v", term.Instances)
	}
	wantStates := []string{"shutting-down", "terminated", "terminated"}
	for i, want := range wantStates {
		if got := describe().State.Name; got != want {
			t.Fatalf("describe %d after terminate: %s, want %s", i, got, want)
		}
	}
	if rec := call(t, s, byID); rec.Code != 400 {
		t.Errorf("terminated instance still visible: %s", rec.Body)
	}
	if _, st := s.backend.Host(context.Background(), id); st != HostDown {
		t.Errorf("backend host not stopped: %s", st)
	}
}

// TestHostDies: an instance whose host dies while it boots terminates, as
// EC2 terminates an instance that fails to launch, with its console kept;
// one whose host dies while it runs stops, as when its system shuts down.
func TestHostDies(t *testing.T) {
	tests := []struct {
		name        string
		runFirst    bool     // let the instance run before its host dies
		wantStates  []string // describes after the crash
		wantReason  string
		wantStopped bool // the backend's host is freed
	}{
		{"while booting", false, []string{"shutting-down", "terminated"}, "Server.InternalError", true},
		{"while running", true, []string{"stopped", "stopped"}, "Client.InstanceInitiatedShutdown", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewMemoryBackend()
			s := newTestServer(Options{Backend: b, PendingPolls: 2, TerminatedPolls: 2})
			id := parse(t, call(t, s, runForm("tok", "t3.micro"))).Instances[0].InstanceID
			describe := func() xmlInstance {
				t.Helper()
				rec := call(t, s, form("Action", "DescribeInstances", "InstanceId.1", id))
				p := parse(t, rec)
				if rec.Code != 200 || len(p.Reserv) != 1 || len(p.Reserv[0].Instances) != 1 {
					t.Fatalf("describe: %d %s", rec.Code, rec.Body)
				}
				return p.Reserv[0].Instances[0]
			}
			if in := describe(); in.State.Name != "pending" || in.StateReason != nil {
				t.Fatalf("first describe: %+v", in)
			}
			for i := 0; tt.runFirst && describe().State.Name != "running"; i++ {
				if i == 3 {
					t.Fatal("the instance did not run")
				}
			}
			if !b.Crash(id, "panic: out of cheese\n") {
				t.Fatal("Crash: the host was not alive")
			}
			for i, want := range tt.wantStates {
				in := describe()
				if in.State.Name != want || in.State.Code != stateCodes[want] {
					t.Fatalf("describe %d after the crash: %+v, want %s", i, in.State, want)
				}
				if in.StateReason == nil || in.StateReason.Code != tt.wantReason || !strings.HasPrefix(in.StateReason.Message, tt.wantReason+": ") {
					t.Errorf("describe %d: state reason %+v, want %s", i, in.StateReason, tt.wantReason)
				}
			}
			console := parse(t, call(t, s, form("Action", "GetConsoleOutput", "InstanceId", id)))
			text, err := base64.StdEncoding.DecodeString(console.Output)
			if err != nil || !strings.HasSuffix(string(text), "panic: out of cheese\n") || !strings.Contains(string(text), FakeFingerprint(id)) {
				t.Errorf("console output %q (%v), want the host's last words", text, err)
			}
			if _, st := b.Host(context.Background(), id); st != HostDown {
				t.Errorf("backend host is %s", st)
			}
			if out, _ := b.ConsoleOutput(context.Background(), id); (out == "") != tt.wantStopped {
				t.Errorf("backend console %q: the host should be stopped (freed): %v", out, tt.wantStopped)
			}
			// Terminating it is a user's shutdown.
			if rec := call(t, s, form("Action", "TerminateInstances", "InstanceId.1", id)); rec.Code != 200 {
				t.Fatalf("terminate: %d %s", rec.Code, rec.Body)
			}
			if tt.runFirst {
				if in := describe(); in.State.Name != "shutting-down" || in.StateReason == nil || in.StateReason.Code != "Client.UserInitiatedShutdown" {
					t.Errorf("after terminate: %+v %+v", in.State, in.StateReason)
				}
			}
		})
	}
}

func TestDescribeFiltersAndPages(t *testing.T) {
	s := newTestServer(Options{})
	for i := 1; i <= 12; i++ {
		f := "a"
		if i%3 == 0 {
			f = "b"
		}
		if _, err := s.Add(context.Background(), fleet.LaunchSpec{Fleet: f, Role: "w", Label: fleet.Label("w", i), Image: "ami"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	token := ""
	pages := 0
	for {
		v := form("Action", "DescribeInstances", "MaxResults", "5", "Filter.1.Name", "tag:"+fleet.TagFleet, "Filter.1.Value.1", "a",
			"Filter.2.Name", "instance-state-name", "Filter.2.Value.1", "pending", "Filter.2.Value.2", "running")
		if token != "" {
			v.Set("NextToken", token)
		}
		p := parse(t, call(t, s, v))
		pages++
		for _, r := range p.Reserv {
			for _, in := range r.Instances {
				ids = append(ids, in.InstanceID)
			}
		}
		if token = p.NextToken; token == "" {
			break
		}
	}
	if len(ids) != 8 || pages != 2 {
		t.Errorf("got %d instances in %d pages, want 8 in 2", len(ids), pages)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("%s on two pages", id)
		}
		seen[id] = true
	}
	if rec := call(t, s, form("Action", "DescribeInstances", "NextToken", "garbage!")); rec.Code != 400 {
		t.Errorf("garbage token accepted: %s", rec.Body)
	}
}

func TestHostKeyConsole(t *testing.T) {
	got := HostKeyConsole("h", []string{"SHA256:abc", "256 SHA256:def root@h (ECDSA)"})
	for _, want := range []string{
		"ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n",
		"ec2: 256 SHA256:abc root@h (ED25519)\n",
		"ec2: 256 SHA256:def root@h (ECDSA)\n",
		"ec2: -----END SSH HOST KEY FINGERPRINTS-----\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("console lacks %q:\n%s", want, got)
		}
	}
}
