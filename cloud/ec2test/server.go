package ec2test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tideops/tide/fleet"
)

// Options configures a Server. Counts are literal: zero means "never" or
// "none", not "default"; DefaultOptions returns realistic values.
type Options struct {
	// Backend provides the hosts. Nil means a new MemoryBackend.
	Backend Backend
	// Region names the region; instances launched without a zone are put in
	// its zone "a". Empty means "us-east-1".
	Region string
	// PendingPolls is how many DescribeInstances responses show a new
	// instance as pending (without an address) before it may show running.
	// An instance runs only once the backend reports its address.
	PendingPolls int
	// NotFoundPolls is how many DescribeInstances calls naming a freshly
	// launched instance by id fail with InvalidInstanceID.NotFound, as EC2's
	// eventual consistency makes them do just after a launch.
	NotFoundPolls int
	// TerminatedPolls is how many DescribeInstances responses still show a
	// terminated instance before it disappears.
	TerminatedPolls int
	// MaxPageSize caps the page size of DescribeInstances (which then pages
	// even when the request set no MaxResults). Zero means no cap beyond the
	// request's MaxResults.
	MaxPageSize int
	// Now returns the server's time: for launch times, console timestamps,
	// the responses' Date header and the age of request signatures. Nil
	// means time.Now.
	Now func() time.Time

	// Credentials maps the access key IDs the server accepts to their secret
	// access keys. Every request must carry an AWS Signature Version 4
	// Authorization header made with one of them, scoped to Region and the
	// service "ec2"; with no credentials every request fails with
	// AuthFailure.
	Credentials map[string]string
	// MaxSkew is how far a request's signing time (X-Amz-Date) may be from
	// Now before the request fails with RequestExpired. Zero means
	// DefaultMaxSkew (five minutes).
	MaxSkew time.Duration
}

// DefaultOptions returns options close to what EC2 does, scaled down to a
// few polls: two pending polls, one NotFound poll, five terminated polls.
func DefaultOptions() Options {
	return Options{PendingPolls: 2, NotFoundPolls: 1, TerminatedPolls: 5}
}

// Server is an EC2 Query API endpoint backed by a Backend. It is an
// http.Handler and knows nothing of the URL it is served on. Its methods are
// safe for concurrent use.
type Server struct {
	opts    Options
	backend Backend
	auth    *verifier

	mu        sync.Mutex
	seq       int
	requests  int
	instances []*instance          // in launch order; never shrinks
	byID      map[string]*instance // every instance ever launched
	byToken   map[string]*instance
	faults    map[string][]fault // action -> queued failures
	calls     map[string]int
}

type fault struct {
	code string
	n    int
}

// instance is the server's record of one instance.
type instance struct {
	seq       int
	id        string
	token     string
	paramsKey string
	spec      fleet.LaunchSpec
	image     string
	keyName   string
	subnet    string
	groups    []string
	tags      map[string]string
	state     string
	address   string
	launched  time.Time
	starting  bool // backend Start or Restart in flight
	restarted bool // pending after StartInstances, not yet running
	failing   bool // a describe is taking its dead host's console and stopping it
	reason    stateReason
	console   string // the last console of a host that died while booting
	polls     int    // describe responses that showed it
	idPolls   int    // describe calls that named it by id
	gonePolls int    // describe responses that showed it terminated
	invisible bool   // terminated long enough ago to have disappeared
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server with no instances.
func NewServer(opts Options) *Server {
	if opts.Backend == nil {
		opts.Backend = NewMemoryBackend()
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	return &Server{
		opts:    opts,
		backend: opts.Backend,
		auth: &verifier{
			secrets: maps.Clone(opts.Credentials),
			region:  opts.Region,
			service: Service,
			maxSkew: opts.MaxSkew,
			now:     opts.Now,
		},
		byID:    make(map[string]*instance),
		byToken: make(map[string]*instance),
		faults:  make(map[string][]fault),
		calls:   make(map[string]int),
	}
}

// FailNext makes the next n calls of action (such as "RunInstances") fail
// with the EC2 error code (such as "RequestLimitExceeded",
// "InsufficientInstanceCapacity", "InternalError"), with the HTTP status EC2
// uses for it. Failures queue up behind earlier ones for the same action.
func (s *Server) FailNext(action, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], fault{code: code, n: n})
}

// Calls returns how many requests for action the server has received,
// failed ones included (those refused authentication too).
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Instances returns every instance the server still shows, terminated ones
// included until they disappear, in launch order.
func (s *Server) Instances() []fleet.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]fleet.Instance, 0, len(s.instances))
	for _, in := range s.instances {
		if !in.invisible {
			out = append(out, in.fleetInstance())
		}
	}
	return out
}

// Add launches an instance as RunInstances would, without a request; tests
// and benchmarks use it to seed large fleets. spec.ClientToken may be empty.
func (s *Server) Add(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	if spec.Zone == "" {
		spec.Zone = s.opts.Region + "a"
	}
	if spec.Type == "" {
		spec.Type = "m1.small"
	}
	p := launchParams{token: spec.ClientToken, spec: spec, image: spec.Image, tags: spec.AllTags()}
	p.paramsKey = p.key()
	in, _, err := s.launch(ctx, p)
	if err != nil {
		return fleet.Instance{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return in.fleetInstance(), nil
}

func (in *instance) fleetInstance() fleet.Instance {
	tags := make(map[string]string, len(in.tags))
	for k, v := range in.tags {
		tags[k] = v
	}
	return fleet.Instance{
		ID:         in.id,
		Label:      tags[fleet.TagLabel],
		Role:       tags[fleet.TagRole],
		Fleet:      tags[fleet.TagFleet],
		Type:       in.spec.Type,
		Zone:       in.spec.Zone,
		Address:    in.address,
		State:      fleet.State(in.state),
		Tags:       tags,
		LaunchedAt: in.launched,
	}
}

// apiError is an EC2 error response.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// statusFor returns the HTTP status EC2 answers an error code with.
func statusFor(code string) int {
	switch code {
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InsufficientInstanceCapacity", "InternalError", "InsufficientAddressCapacity":
		return http.StatusInternalServerError
	case "AuthFailure":
		return http.StatusUnauthorized
	case "SignatureDoesNotMatch":
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func errorf(code, format string, args ...any) *apiError {
	return &apiError{status: statusFor(code), code: code, message: fmt.Sprintf(format, args...)}
}

func notFound(id string) *apiError {
	return errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
}

var faultMessages = map[string]string{
	"RequestLimitExceeded":         "Request limit exceeded.",
	"InsufficientInstanceCapacity": "We currently do not have sufficient capacity in the Availability Zone you requested.",
	"InternalError":                "An internal error has occurred.",
	"Unavailable":                  "The server is overloaded and can't handle the request.",
}

// ServeHTTP answers one EC2 Query API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012x", s.requests)
	s.mu.Unlock()

	// The Date header is the server's clock: the SDK corrects its signing
	// time from it when a request fails for clock skew.
	w.Header().Set("Date", s.opts.Now().UTC().Format(http.TimeFormat))
	resp, err := s.handle(r)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errorf("InternalError", "%v", err)
		}
		writeXML(w, ae.status, xmlErrorResponse{
			Errors:    []xmlError{{Code: ae.code, Message: ae.message}},
			RequestID: reqID,
		})
		return
	}
	setRequestID(resp, reqID)
	writeXML(w, http.StatusOK, resp)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

func setRequestID(resp any, id string) {
	switch r := resp.(type) {
	case *xmlRunInstancesResponse:
		r.RequestID = id
	case *xmlDescribeInstancesResponse:
		r.RequestID = id
	case *xmlTerminateInstancesResponse:
		r.RequestID = id
	case *xmlStartInstancesResponse:
		r.RequestID = id
	case *xmlCreateTagsResponse:
		r.RequestID = id
	case *xmlGetConsoleOutputResponse:
		r.RequestID = id
	}
}

func (s *Server) handle(r *http.Request) (any, error) {
	if r.URL.Path != "/" {
		return nil, errorf("InvalidAction", "path %s is not served", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return nil, errorf("InvalidAction", "method %s is not served", r.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, errorf("InvalidParameterValue", "reading the request body: %v", err)
	}
	if authErr := s.auth.verify(r, body); authErr != nil {
		// A refused call still counts, under the action it names.
		if form, err := url.ParseQuery(string(body)); err == nil {
			s.mu.Lock()
			s.calls[form.Get("Action")]++
			s.mu.Unlock()
		}
		return nil, authErr
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseForm(); err != nil {
		return nil, errorf("InvalidParameterValue", "bad form: %v", err)
	}
	form := r.PostForm
	action := form.Get("Action")
	if v := form.Get("Version"); v != apiVersion {
		return nil, errorf("InvalidParameterValue", "unsupported Version %q", v)
	}

	s.mu.Lock()
	s.calls[action]++
	if f := s.takeFault(action); f != "" {
		s.mu.Unlock()
		msg := faultMessages[f]
		if msg == "" {
			msg = "injected " + f
		}
		return nil, errorf(f, "%s", msg)
	}
	s.mu.Unlock()

	ctx := r.Context()
	switch action {
	case "RunInstances":
		return s.runInstances(ctx, form)
	case "DescribeInstances":
		return s.describeInstances(ctx, form)
	case "TerminateInstances":
		return s.terminateInstances(ctx, form)
	case "StartInstances":
		return s.startInstances(ctx, form)
	case "CreateTags":
		return s.createTags(form)
	case "GetConsoleOutput":
		return s.getConsoleOutput(ctx, form)
	}
	return nil, errorf("InvalidAction", "The action %s is not valid for this web service.", action)
}

// takeFault consumes one queued failure for action. Callers hold s.mu.
func (s *Server) takeFault(action string) string {
	q := s.faults[action]
	for len(q) > 0 && q[0].n <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, action)
		return ""
	}
	q[0].n--
	s.faults[action] = q
	return q[0].code
}

// list returns the values of a query list parameter prefix.1, prefix.2, ...
func list(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := prefix + "." + strconv.Itoa(i)
		if _, ok := form[k]; !ok {
			return out
		}
		out = append(out, form.Get(k))
	}
}

// tagList returns the tags of prefix.N.Key / prefix.N.Value.
func tagList(form url.Values, prefix string) (map[string]string, error) {
	tags := make(map[string]string)
	for i := 1; ; i++ {
		p := prefix + "." + strconv.Itoa(i)
		k, ok := form[p+".Key"]
		if !ok {
			if _, hasValue := form[p+".Value"]; hasValue {
				return nil, errorf("InvalidParameterValue", "%s.Value without %s.Key", p, p)
			}
			return tags, nil
		}
		if k[0] == "" {
			return nil, errorf("InvalidParameterValue", "tag key must not be empty")
		}
		tags[k[0]] = form.Get(p + ".Value")
	}
}

type launchParams struct {
	token     string
	paramsKey string
	spec      fleet.LaunchSpec
	image     string
	keyName   string
	subnet    string
	groups    []string
	tags      map[string]string
}

func (s *Server) runInstances(ctx context.Context, form url.Values) (any, error) {
	p := launchParams{
		token:   form.Get("ClientToken"),
		image:   form.Get("ImageId"),
		keyName: form.Get("KeyName"),
		subnet:  form.Get("SubnetId"),
		groups:  list(form, "SecurityGroupId"),
	}
	if p.image == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter ImageId")
	}
	for _, k := range []string{"MinCount", "MaxCount"} {
		if form.Get(k) != "1" {
			return nil, errorf("InvalidParameterValue", "ec2test launches one instance per call: %s must be 1, not %q", k, form.Get(k))
		}
	}
	p.tags = make(map[string]string)
	for i := 1; ; i++ {
		prefix := "TagSpecification." + strconv.Itoa(i)
		rt, ok := form[prefix+".ResourceType"]
		if !ok {
			break
		}
		tags, err := tagList(form, prefix+".Tag")
		if err != nil {
			return nil, err
		}
		switch rt[0] {
		case "instance":
			for k, v := range tags {
				p.tags[k] = v
			}
		case "volume", "network-interface":
			// Accepted; ec2test models no volumes or interfaces.
		default:
			return nil, errorf("InvalidParameterValue", "unsupported resource type %q in tag specification", rt[0])
		}
	}
	zone := form.Get("Placement.AvailabilityZone")
	if zone == "" {
		zone = s.opts.Region + "a"
	}
	p.spec = fleet.LaunchSpec{
		ClientToken: p.token,
		Fleet:       p.tags[fleet.TagFleet],
		Role:        p.tags[fleet.TagRole],
		Label:       p.tags[fleet.TagLabel],
		Type:        form.Get("InstanceType"),
		Zone:        zone,
		Image:       p.image,
		Tags:        userTags(p.tags),
	}
	if p.spec.Type == "" {
		p.spec.Type = "m1.small"
	}
	p.paramsKey = p.key()

	in, same, err := s.launch(ctx, p)
	if err != nil {
		return nil, err
	}
	if !same {
		return nil, errorf("IdempotentParameterMismatch",
			"Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &xmlRunInstancesResponse{
		Xmlns:         xmlns,
		ReservationID: reservationID(in),
		OwnerID:       ownerID,
		Instances:     []xmlInstance{in.xml()},
	}, nil
}

const ownerID = "123456789012"

func reservationID(in *instance) string { return fmt.Sprintf("r-0%016x", in.seq) }

// userTags returns tags without tide's own keys, as LaunchSpec.Tags holds them.
func userTags(all map[string]string) map[string]string {
	out := make(map[string]string, len(all))
	for k, v := range all {
		switch k {
		case fleet.TagFleet, fleet.TagRole, fleet.TagLabel:
		default:
			out[k] = v
		}
	}
	return out
}

// key is a canonical form of a launch's parameters, used to tell an
// idempotent retry from a reuse of a client token. Like EC2, it compares
// parameters, not their order in the request.
func (p launchParams) key() string {
	groups := append([]string(nil), p.groups...)
	sort.Strings(groups)
	tags := make([]string, 0, len(p.tags))
	for k, v := range p.tags {
		tags = append(tags, strconv.Quote(k)+"="+strconv.Quote(v))
	}
	sort.Strings(tags)
	return strings.Join([]string{
		strconv.Quote(p.image), strconv.Quote(p.spec.Type), strconv.Quote(p.spec.Zone),
		strconv.Quote(p.subnet), strconv.Quote(p.keyName),
		strings.Join(groups, ","), strings.Join(tags, ","),
	}, "|")
}

// launch records and starts an instance, or returns the instance an earlier
// launch with the same client token made; same is false when that earlier
// launch had other parameters.
func (s *Server) launch(ctx context.Context, p launchParams) (in *instance, same bool, err error) {
	s.mu.Lock()
	if p.token != "" {
		if prev, ok := s.byToken[p.token]; ok {
			s.mu.Unlock()
			return prev, prev.paramsKey == p.paramsKey, nil
		}
	}
	s.seq++
	in = &instance{
		seq:       s.seq,
		id:        fmt.Sprintf("i-0%016x", s.seq),
		token:     p.token,
		paramsKey: p.paramsKey,
		spec:      p.spec,
		image:     p.image,
		keyName:   p.keyName,
		subnet:    p.subnet,
		groups:    p.groups,
		tags:      p.tags,
		state:     string(fleet.StatePending),
		launched:  s.opts.Now().UTC().Truncate(time.Millisecond),
		starting:  true,
	}
	s.instances = append(s.instances, in)
	s.byID[in.id] = in
	if p.token != "" {
		s.byToken[p.token] = in
	}
	s.mu.Unlock()

	spec := p.spec
	if spec.ClientToken == "" {
		spec.ClientToken = in.id
	}
	addr, err := s.backend.Start(ctx, in.id, spec)

	s.mu.Lock()
	defer s.mu.Unlock()
	in.starting = false
	if err != nil {
		// The launch never happened: forget it, so that a retry with the
		// same token starts afresh.
		in.invisible = true
		in.state = string(fleet.StateTerminated)
		delete(s.byID, in.id)
		if p.token != "" {
			delete(s.byToken, p.token)
		}
		var capErr *fleet.InsufficientCapacityError
		if errors.As(err, &capErr) {
			return nil, false, errorf("InsufficientInstanceCapacity", "%s", faultMessages["InsufficientInstanceCapacity"])
		}
		return nil, false, errorf("InternalError", "starting host: %v", err)
	}
	in.address = addr
	return in, true, nil
}

func (in *instance) xml() xmlInstance {
	x := xmlInstance{
		InstanceID:     in.id,
		ImageID:        in.image,
		State:          xmlState{Code: stateCodes[in.state], Name: in.state},
		KeyName:        in.keyName,
		InstanceType:   in.spec.Type,
		LaunchTime:     ec2Time(in.launched),
		Placement:      xmlPlacement{AvailabilityZone: in.spec.Zone, Tenancy: "default"},
		SubnetID:       in.subnet,
		ClientToken:    in.token,
		PrivateDNSName: "",
	}
	if in.reason.code != "" {
		x.StateReason = &xmlStateReason{Code: in.reason.code, Message: in.reason.message}
		x.Reason = in.reason.transition
	}
	if in.state == string(fleet.StateRunning) || in.state == string(fleet.StateStopping) {
		x.PrivateIPAddress = in.address
		x.PrivateDNSName = "ip-" + strings.ReplaceAll(in.address, ".", "-") + ".ec2.internal"
	}
	for _, g := range in.groups {
		x.Groups = append(x.Groups, xmlGroup{GroupID: g})
	}
	keys := make([]string, 0, len(in.tags))
	for k := range in.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.tags[k]})
	}
	return x
}

// filter is one Filter.N of DescribeInstances.
type filter struct {
	name   string
	values []string
}

func parseFilters(form url.Values) ([]filter, error) {
	var out []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := form[p+".Name"]
		if !ok {
			return out, nil
		}
		f := filter{name: name[0], values: list(form, p+".Value")}
		switch {
		case strings.HasPrefix(f.name, "tag:"), f.name == "tag-key", f.name == "instance-state-name",
			f.name == "instance-id", f.name == "availability-zone", f.name == "instance-type":
		default:
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		out = append(out, f)
	}
}

func (f filter) match(in *instance) bool {
	var got []string
	switch {
	case strings.HasPrefix(f.name, "tag:"):
		v, ok := in.tags[strings.TrimPrefix(f.name, "tag:")]
		if !ok {
			return false
		}
		got = []string{v}
	case f.name == "tag-key":
		for k := range in.tags {
			got = append(got, k)
		}
	case f.name == "instance-state-name":
		got = []string{in.state}
	case f.name == "instance-id":
		got = []string{in.id}
	case f.name == "availability-zone":
		got = []string{in.spec.Zone}
	case f.name == "instance-type":
		got = []string{in.spec.Type}
	}
	for _, g := range got {
		for _, v := range f.values {
			if g == v {
				return true
			}
		}
	}
	return false
}

// describeQuery is a parsed DescribeInstances request.
type describeQuery struct {
	ids      []string
	filters  []filter
	pageSize int // 0: everything
	start    int // first seq of the page
}

func (s *Server) parseDescribe(form url.Values) (describeQuery, error) {
	q := describeQuery{ids: list(form, "InstanceId")}
	var err error
	if q.filters, err = parseFilters(form); err != nil {
		return q, err
	}
	if v := form.Get("MaxResults"); v != "" {
		if len(q.ids) > 0 {
			return q, errorf("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return q, errorf("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v)
		}
		q.pageSize = n
	}
	if s.opts.MaxPageSize > 0 && len(q.ids) == 0 && (q.pageSize == 0 || q.pageSize > s.opts.MaxPageSize) {
		q.pageSize = s.opts.MaxPageSize
	}
	if t := form.Get("NextToken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		n, convErr := strconv.Atoi(strings.TrimPrefix(string(b), "seq:"))
		if err != nil || convErr != nil || !strings.HasPrefix(string(b), "seq:") {
			return q, errorf("InvalidParameterValue", "Invalid value '%s' for nextToken", t)
		}
		q.start = n
	}
	return q, nil
}

// selectPage returns the instances one describe shows, and the token of the
// next page. It neither counts polls nor changes states. Callers hold s.mu.
func (s *Server) selectPage(q describeQuery) (page []*instance, next string, err error) {
	var cand []*instance
	if len(q.ids) > 0 {
		for _, id := range q.ids {
			in, ok := s.byID[id]
			if !ok || in.invisible {
				return nil, "", notFound(id)
			}
			cand = append(cand, in)
		}
		sort.Slice(cand, func(i, j int) bool { return cand[i].seq < cand[j].seq })
	} else {
		// s.instances is sorted by seq; seq n sits at index n-1.
		from := max(q.start-1, 0)
		if from < len(s.instances) {
			cand = s.instances[from:]
		}
	}
outer:
	for _, in := range cand {
		if in.invisible || in.seq < q.start {
			continue
		}
		for _, f := range q.filters {
			if !f.match(in) {
				continue outer
			}
		}
		if q.pageSize > 0 && len(page) == q.pageSize {
			next = base64.RawURLEncoding.EncodeToString([]byte("seq:" + strconv.Itoa(in.seq)))
			break
		}
		page = append(page, in)
	}
	return page, next, nil
}

func (s *Server) describeInstances(ctx context.Context, form url.Values) (any, error) {
	q, err := s.parseDescribe(form)
	if err != nil {
		return nil, err
	}

	// First pass: ask the backend, without holding the lock, how the hosts
	// of the page's pending and running instances are.
	s.mu.Lock()
	page, _, err := s.selectPage(q)
	var ask []string
	if err == nil {
		for _, in := range page {
			if !in.starting && (in.state == string(fleet.StatePending) || in.state == string(fleet.StateRunning)) {
				ask = append(ask, in.id)
			}
		}
	}
	s.mu.Unlock()
	hosts := s.askHosts(ctx, ask)

	// Second pass: the response, counting this poll.
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(q.ids) > 0 {
		// Eventual consistency: a fresh instance is not found by id for
		// its first NotFoundPolls describes.
		var missing string
		for _, id := range q.ids {
			if in, ok := s.byID[id]; ok && !in.invisible && in.idPolls < s.opts.NotFoundPolls {
				in.idPolls++
				if missing == "" {
					missing = id
				}
			}
		}
		if missing != "" {
			return nil, notFound(missing)
		}
	}
	// Instances pending long enough run once they have an address, and
	// those whose host died leave pending or running, before the filters
	// see their state.
	for _, id := range ask {
		in := s.byID[id]
		if in == nil {
			continue
		}
		h := hosts[id]
		switch {
		case h.state == HostDown && (in.state == string(fleet.StateRunning) || in.restarted):
			// A started instance whose host dies while it boots stops
			// again: its disk is kept, as it was before the start.
			in.state = string(fleet.StateStopped)
			in.reason = reasonInstanceShutdown
			in.restarted = false
		case h.state == HostDown && h.stopped && in.state == string(fleet.StatePending):
			in.state = string(fleet.StateShuttingDown)
			in.reason = reasonLaunchFailed
			in.console = h.console
		case s.pendingLongEnough(in):
			if in.address == "" && h.state == HostUp {
				in.address = h.address
			}
			if in.address != "" {
				in.state = string(fleet.StateRunning)
				in.restarted = false
			}
		}
	}
	page, next, err := s.selectPage(q)
	if err != nil {
		return nil, err
	}
	resp := &xmlDescribeInstancesResponse{Xmlns: xmlns, NextToken: next, Reservations: make([]xmlReservation, 0, len(page))}
	for _, in := range page {
		resp.Reservations = append(resp.Reservations, xmlReservation{
			ReservationID: reservationID(in),
			OwnerID:       ownerID,
			Instances:     []xmlInstance{in.xml()},
		})
		s.advance(in)
	}
	return resp, nil
}

// hostReport is what a describe learnt of an instance's host.
type hostReport struct {
	address string
	state   HostState
	// stopped and console are set for a host that died while its instance
	// was pending: the describe that saw it first took its console and
	// freed it.
	stopped bool
	console string
}

// askHosts asks the backend about the hosts of instances ids. Of the
// instances still pending whose host died, one describe (the first to see
// it) takes the host's console and stops it, so that the instance can
// terminate with its console kept; if stopping fails, the next describe
// tries again.
func (s *Server) askHosts(ctx context.Context, ids []string) map[string]hostReport {
	hosts := make(map[string]hostReport, len(ids))
	var dead []string
	for _, id := range ids {
		a, st := s.backend.Host(ctx, id)
		hosts[id] = hostReport{address: a, state: st}
		if st == HostDown {
			dead = append(dead, id)
		}
	}
	if len(dead) == 0 {
		return hosts
	}
	var claimed []string
	s.mu.Lock()
	for _, id := range dead {
		if in := s.byID[id]; in != nil && in.state == string(fleet.StatePending) && !in.failing && !in.restarted {
			in.failing = true
			claimed = append(claimed, id)
		}
	}
	s.mu.Unlock()
	// Stopping is seen through even when the request goes away: it is
	// what terminating the instance means.
	sctx := context.WithoutCancel(ctx)
	for _, id := range claimed {
		h := hosts[id]
		out, err := s.backend.ConsoleOutput(sctx, id)
		if err != nil {
			out = fmt.Sprintf("(console unavailable: %v)\n", err)
		}
		h.console = out
		h.stopped = s.backend.Stop(sctx, id) == nil
		hosts[id] = h
	}
	s.mu.Lock()
	for _, id := range claimed {
		if in := s.byID[id]; in != nil {
			in.failing = false
		}
	}
	s.mu.Unlock()
	return hosts
}

// pendingLongEnough reports whether a pending instance has been shown
// pending in PendingPolls describes, so that it runs as soon as it has an
// address. Callers hold s.mu.
func (s *Server) pendingLongEnough(in *instance) bool {
	return in.state == string(fleet.StatePending) && !in.starting && in.polls >= s.opts.PendingPolls
}

// advance moves an instance along its lifecycle once a describe has shown
// it. Callers hold s.mu.
func (s *Server) advance(in *instance) {
	switch in.state {
	case string(fleet.StateShuttingDown):
		in.state = string(fleet.StateTerminated)
		in.invisible = s.opts.TerminatedPolls == 0
	case string(fleet.StateTerminated):
		in.gonePolls++
		in.invisible = in.gonePolls >= s.opts.TerminatedPolls
	}
	in.polls++
}

func (s *Server) terminateInstances(ctx context.Context, form url.Values) (any, error) {
	ids := list(form, "InstanceId")
	if len(ids) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	var changes []xmlStateChange
	var stop []string
	for _, id := range ids {
		in, ok := s.byID[id]
		if !ok || in.invisible {
			s.mu.Unlock()
			return nil, notFound(id)
		}
		prev := in.state
		if prev != string(fleet.StateTerminated) {
			stop = append(stop, id)
		}
		if prev != string(fleet.StateTerminated) && prev != string(fleet.StateShuttingDown) {
			in.state = string(fleet.StateShuttingDown)
			in.reason = reasonUserShutdown
		}
		changes = append(changes, xmlStateChange{
			InstanceID:    id,
			PreviousState: xmlState{Code: stateCodes[prev], Name: prev},
			CurrentState:  xmlState{Code: stateCodes[in.state], Name: in.state},
		})
	}
	s.mu.Unlock()
	for _, id := range stop {
		if err := s.backend.Stop(ctx, id); err != nil {
			return nil, errorf("InternalError", "stopping host %s: %v", id, err)
		}
	}
	return &xmlTerminateInstancesResponse{Xmlns: xmlns, Instances: changes}, nil
}

// startInstances starts stopped instances, as EC2's StartInstances does:
// each goes to pending, its host booted again by the backend (a
// Restarter), then runs once the backend reports its address, as after a
// launch. Pending and running instances are left as they are; any other
// state fails the whole call with IncorrectInstanceState, an unknown id
// with InvalidInstanceID.NotFound. A host the backend cannot boot leaves
// its instance stopped and fails the call (InsufficientInstanceCapacity
// for a backend out of capacity, InternalError otherwise).
func (s *Server) startInstances(ctx context.Context, form url.Values) (any, error) {
	ids := list(form, "InstanceId")
	if len(ids) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	rs, canRestart := s.backend.(Restarter)
	s.mu.Lock()
	for _, id := range ids {
		in, ok := s.byID[id]
		if !ok || in.invisible {
			s.mu.Unlock()
			return nil, notFound(id)
		}
		switch in.state {
		case string(fleet.StatePending), string(fleet.StateRunning):
		case string(fleet.StateStopped):
			if !canRestart {
				s.mu.Unlock()
				return nil, errorf("UnsupportedOperation", "The instance '%s' cannot be started: the test server's backend does not restart hosts.", id)
			}
		default:
			s.mu.Unlock()
			return nil, errorf("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be started.", id)
		}
	}
	var changes []xmlStateChange
	var start []string
	for _, id := range ids {
		in := s.byID[id]
		prev := in.state
		if prev == string(fleet.StateStopped) && !in.starting {
			in.state = string(fleet.StatePending)
			in.starting, in.restarted = true, true
			in.address, in.reason, in.polls = "", stateReason{}, 0
			start = append(start, id)
		}
		changes = append(changes, xmlStateChange{
			InstanceID:    id,
			PreviousState: xmlState{Code: stateCodes[prev], Name: prev},
			CurrentState:  xmlState{Code: stateCodes[in.state], Name: in.state},
		})
	}
	s.mu.Unlock()
	var failed error
	for _, id := range start {
		err := rs.Restart(ctx, id)
		s.mu.Lock()
		in := s.byID[id]
		in.starting = false
		if err != nil {
			in.state, in.restarted = string(fleet.StateStopped), false
			if failed == nil {
				failed = fmt.Errorf("starting host %s: %w", id, err)
			}
		}
		s.mu.Unlock()
	}
	if failed != nil {
		var capErr *fleet.InsufficientCapacityError
		if errors.As(failed, &capErr) {
			return nil, errorf("InsufficientInstanceCapacity", "%s", faultMessages["InsufficientInstanceCapacity"])
		}
		return nil, errorf("InternalError", "%v", failed)
	}
	return &xmlStartInstancesResponse{Xmlns: xmlns, Instances: changes}, nil
}

func (s *Server) createTags(form url.Values) (any, error) {
	ids := list(form, "ResourceId")
	if len(ids) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter ResourceId")
	}
	tags, err := tagList(form, "Tag")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if in, ok := s.byID[id]; !ok || in.invisible {
			return nil, notFound(id)
		}
	}
	for _, id := range ids {
		in := s.byID[id]
		for k, v := range tags {
			in.tags[k] = v
		}
	}
	return &xmlCreateTagsResponse{Xmlns: xmlns, Return: true}, nil
}

func (s *Server) getConsoleOutput(ctx context.Context, form url.Values) (any, error) {
	id := form.Get("InstanceId")
	if id == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	in, ok := s.byID[id]
	if !ok || in.invisible {
		s.mu.Unlock()
		return nil, notFound(id)
	}
	booting := in.state == string(fleet.StatePending)
	kept := in.console
	s.mu.Unlock()

	resp := &xmlGetConsoleOutputResponse{Xmlns: xmlns, InstanceID: id, Timestamp: ec2Time(s.opts.Now())}
	if booting {
		return resp, nil // EC2 has no console output before the instance runs
	}
	out := kept
	if out == "" {
		var err error
		if out, err = s.backend.ConsoleOutput(ctx, id); err != nil {
			return nil, errorf("InternalError", "reading console of %s: %v", id, err)
		}
	}
	if len(out) > maxConsole {
		out = out[len(out)-maxConsole:] // EC2 returns the most recent 64 KB
	}
	if out != "" {
		resp.Output = base64.StdEncoding.EncodeToString([]byte(out))
	}
	return resp, nil
}

// maxConsole is how much console output GetConsoleOutput returns at most:
// the most recent 64 KB, as EC2 does.
const maxConsole = 64 << 10

// stateReason is why an instance last changed state, as EC2 reports it in
// stateReason (code and message) and reason (the state transition reason).
type stateReason struct {
	code, message, transition string
}

// The state reasons the server gives, with EC2's codes and messages.
var (
	// reasonLaunchFailed: the host died before it booted. EC2 terminates
	// an instance that fails to launch ("An internal error caused the
	// instance to terminate during launch").
	reasonLaunchFailed = stateReason{code: "Server.InternalError", message: "Server.InternalError: Internal error on launch",
		transition: "Server.InternalError: Internal error on launch"}
	// reasonInstanceShutdown: the host of a running instance died, as when
	// its operating system shuts down; the instance stops (EC2's default
	// shutdown behaviour).
	reasonInstanceShutdown = stateReason{code: "Client.InstanceInitiatedShutdown",
		message: "Client.InstanceInitiatedShutdown: Instance initiated shutdown", transition: "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}
	// reasonUserShutdown: TerminateInstances.
	reasonUserShutdown = stateReason{code: "Client.UserInitiatedShutdown",
		message: "Client.UserInitiatedShutdown: User initiated shutdown", transition: "User initiated"}
)

// Region returns the region the server stands for: the one requests must be
// signed for.
func (s *Server) Region() string { return s.opts.Region }
