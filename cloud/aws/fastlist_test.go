package aws

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tideops/tide/cloud/ec2test"
	"github.com/tideops/tide/fleet"
)

// A DescribeInstances page shaped like EC2's, with the nested elements that
// reuse instance field names (network interfaces, block devices).
const realisticPage = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <imageId>ami-bff32ccc</imageId>
                    <instanceState>
                        <code>16</code>
                        <name>running</name>
                    </instanceState>
                    <privateDnsName>ip-192-168-1-88.eu-west-1.compute.internal</privateDnsName>
                    <instanceType>t2.micro</instanceType>
                    <launchTime>2018-05-08T16:46:19.000Z</launchTime>
                    <placement>
                        <availabilityZone>eu-west-1c</availabilityZone>
                        <groupName></groupName>
                        <tenancy>default</tenancy>
                    </placement>
                    <subnetId>subnet-56f5f633</subnetId>
                    <privateIpAddress>192.168.1.88</privateIpAddress>
                    <ipAddress>54.194.252.215</ipAddress>
                    <blockDeviceMapping>
                        <item>
                            <deviceName>/dev/xvda</deviceName>
                            <ebs><volumeId>vol-1</volumeId><status>attached</status></ebs>
                        </item>
                    </blockDeviceMapping>
                    <networkInterfaceSet>
                        <item>
                            <networkInterfaceId>eni-0598e7d356eba8e4c</networkInterfaceId>
                            <privateIpAddress>192.168.9.9</privateIpAddress>
                            <association><publicIp>1.2.3.4</publicIp><ipOwnerId>amazon</ipOwnerId></association>
                            <privateIpAddressesSet>
                                <item><privateIpAddress>192.168.9.9</privateIpAddress><primary>true</primary></item>
                            </privateIpAddressesSet>
                        </item>
                    </networkInterfaceSet>
                    <tagSet>
                        <item><key>tide:fleet</key><value>office</value></item>
                        <item><key>tide:label</key><value>web-3</value></item>
                        <item><key>tide:role</key><value>web</value></item>
                        <item><key>note</key><value>a &amp; b &lt;c&gt; &#233;&#x41;</value></item>
                        <item><key>empty</key><value/></item>
                    </tagSet>
                </item>
            </instancesSet>
        </item>
        <item>
            <reservationId>r-2</reservationId>
            <instancesSet>
                <item>
                    <instanceId>i-2</instanceId>
                    <instanceState><code>0</code><name>pending</name></instanceState>
                    <instanceType>m5.large</instanceType>
                    <launchTime>2018-05-08T16:46:20.123Z</launchTime>
                    <placement><availabilityZone>eu-west-1a</availabilityZone></placement>
                    <ipAddress>54.0.0.1</ipAddress>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken>tok&amp;1</nextToken>
</DescribeInstancesResponse>`

func TestScanDescribeInstances(t *testing.T) {
	got, token, err := scanDescribeInstances([]byte(realisticPage))
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	want := []fleet.Instance{
		{
			ID: "i-1234567890abcdef0", Label: "web-3", Role: "web", Fleet: "office", Type: "t2.micro",
			Zone: "eu-west-1c", Address: "192.168.1.88", State: fleet.StateRunning,
			Tags: map[string]string{"tide:fleet": "office", "tide:label": "web-3", "tide:role": "web",
				"note": "a & b <c> éA", "empty": ""},
			LaunchedAt: time.Date(2018, 5, 8, 16, 46, 19, 0, time.UTC),
		},
		{
			ID: "i-2", Type: "m5.large", Zone: "eu-west-1a", Address: "54.0.0.1", State: fleet.StatePending,
			LaunchedAt: time.Date(2018, 5, 8, 16, 46, 20, 123e6, time.UTC),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scan =\n%+v\nwant\n%+v", got, want)
	}
	if token != "tok&1" {
		t.Errorf("next token %q, want %q", token, "tok&1")
	}
}

func TestScanDescribeInstancesLeavesOddXMLToTheSDK(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"comment", `<R><!-- x --><reservationSet/></R>`},
		{"cdata", `<R><reservationSet><item><instancesSet><item><instanceId><![CDATA[i-1]]></instanceId></item></instancesSet></item></reservationSet></R>`},
		{"truncated", `<R><reservationSet><item>`},
		{"mismatched", `<R><reservationSet></item></R>`},
		{"bad time", `<R><reservationSet><item><instancesSet><item><launchTime>yesterday</launchTime></item></instancesSet></item></reservationSet></R>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := scanDescribeInstances([]byte(tt.doc)); err == nil {
				t.Errorf("scan of %s succeeded", tt.doc)
			}
		})
	}
}

// newInternalProvider returns a Provider talking to handler through the SDK.
func newInternalProvider(t *testing.T, handler http.Handler, pageSize int32) *Provider {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	hs := httptest.NewServer(handler)
	t.Cleanup(hs.Close)
	p, err := New(context.Background(), Options{
		Region:      "us-east-1",
		Endpoint:    hs.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		// See BufferedBodies: without it the SDK now and then fails a call
		// with "use of closed network connection" (aws-sdk-go-v2#2737).
		HTTPClient: &http.Client{Transport: BufferedBodies{Next: http.DefaultTransport.(*http.Transport).Clone()}},
		PageSize:   pageSize,
		Retry: RetryOptions{Mode: sdkaws.RetryModeStandard,
			Backoff: retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withComments puts an XML comment in every DescribeInstances response, which
// the scanner leaves to the SDK.
type withComments struct{ next http.Handler }

func (h withComments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	body := bytes.Replace(rec.Body.Bytes(), []byte("<reservationSet>"), []byte("<!-- c --><reservationSet>"), 1)
	w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, bytes.NewReader(body))
}

// TestListFastAndSDKDecodeAgree lists the same fleet through the scanner and
// through the SDK's decoder, across pages and with awkward tag values.
func TestListFastAndSDKDecodeAgree(t *testing.T) {
	ctx := context.Background()
	srv := ec2test.NewServer(ec2test.Options{PendingPolls: 1, Credentials: map[string]string{"AKIDTEST": "secret"}})
	for i := 1; i <= 30; i++ {
		s := fleet.LaunchSpec{Fleet: "office", Role: "web", Label: fleet.Label("web", i), Type: "t3.micro",
			Zone: "us-east-1b", Image: "ami-1", Tags: map[string]string{
				"note": fmt.Sprintf(`<&'"> é %d`, i), "empty": "", " spaced ": " v ",
			}}
		if _, err := srv.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		handler http.Handler
	}{
		{"plain", srv},
		{"comments fall back to the SDK", withComments{srv}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newInternalProvider(t, tt.handler, 7)
			if _, err := p.List(ctx, "office"); err != nil { // makes them run
				t.Fatal(err)
			}
			fast, err := p.List(ctx, "office")
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			p.sdkDecode = true
			slow, err := p.List(ctx, "office")
			if err != nil {
				t.Fatalf("List with the SDK's decoder: %v", err)
			}
			if len(fast) != 30 {
				t.Fatalf("List returned %d instances, want 30", len(fast))
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Errorf("decoders disagree:\nfast %+v\nsdk  %+v", fast[0], slow[0])
			}
		})
	}
}

func TestListErrorsStillTyped(t *testing.T) {
	srv := ec2test.NewServer(ec2test.Options{Credentials: map[string]string{"AKIDTEST": "secret"}})
	p := newInternalProvider(t, srv, 0)
	srv.FailNext("DescribeInstances", "RequestLimitExceeded", 100)
	if _, err := p.List(context.Background(), "office"); !fleet.IsThrottled(err) {
		t.Fatalf("List error = %v, want throttled", err)
	}
}

// TestScanIntoPrefixesCaseAndAppend: names match with namespace prefixes,
// in any case and with spaces before '>'; a scan appends after dst, and a
// failed one leaves dst alone.
func TestScanIntoPrefixesCaseAndAppend(t *testing.T) {
	doc := `<R><ns:ReservationSet><item><instancesSet><ITEM><instanceId>i-9</instanceId ><x:instanceType>t3.nano</x:instanceType>` +
		`<InstanceState><Name>running</NAME></InstanceState></ITEM></instancesSet></item></ns:ReservationSet></R>`
	dst := []fleet.Instance{{ID: "i-0"}}
	got, _, err := scanInto(dst, []byte(doc))
	want := []fleet.Instance{{ID: "i-0"}, {ID: "i-9", Type: "t3.nano", State: fleet.StateRunning}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("scanInto = %+v, %v; want %+v", got, err, want)
	}
	got, _, err = scanInto(dst, []byte(doc[:len(doc)-4]))
	if err == nil || got != nil || len(dst) != 1 || dst[0].ID != "i-0" {
		t.Errorf("truncated scan = %+v, %v; dst %+v", got, err, dst)
	}
}

// TestScanInstanceStrings: an instance's id, address and label share one
// string unless they hold entities; the launch time of the last instance
// is reused only when it is the same text; a tag value read before its key
// goes under that key, as before.
func TestScanInstanceStrings(t *testing.T) {
	item := func(id, private, public, label, launch string) string {
		return `<item><instanceId>` + id + `</instanceId>` + private + public +
			`<launchTime>` + launch + `</launchTime><tagSet><item><key>tide:label</key><value>` + label +
			`</value></item><item><value>v</value><key>k</key></item></tagSet></item>`
	}
	doc := `<R><reservationSet><item><instancesSet>` +
		item("i-1", `<privateIpAddress>10.0.0.1</privateIpAddress>`, `<ipAddress>1.1.1.1</ipAddress>`, "web-1", "2026-01-01T00:00:00Z") +
		item("i-&amp;2", `<privateIpAddress/>`, `<ipAddress>2.2.2.2</ipAddress>`, "web-&lt;2", "2026-01-01T00:00:00Z") +
		item("i-3", ``, ``, "", "2026-01-01T00:00:01.5Z") +
		`</instancesSet></item></reservationSet></R>`
	got, _, err := scanDescribeInstances([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := []fleet.Instance{
		{ID: "i-1", Address: "10.0.0.1", Label: "web-1", LaunchedAt: at, Tags: map[string]string{"tide:label": "web-1", "k": "v"}},
		{ID: "i-&2", Address: "2.2.2.2", Label: "web-<2", LaunchedAt: at, Tags: map[string]string{"tide:label": "web-<2", "k": "v"}},
		{ID: "i-3", LaunchedAt: at.Add(1500 * time.Millisecond), Tags: map[string]string{"tide:label": "", "k": "v"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scan =\n%+v\nwant\n%+v", got, want)
	}
}
