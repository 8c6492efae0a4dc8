package ec2test_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/tideops/tide/cloud/ec2test"
)

const (
	accessKey = "AKIDSDKTEST"
	secret    = "sdk-test-secret"
	region    = "eu-west-1"
)

// skewedSigner is the SDK's own SigV4 signer on a clock off by skew.
type skewedSigner struct {
	v4.Signer
	skew time.Duration
}

func (s skewedSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	at time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.Signer.SignHTTP(ctx, creds, r, payloadHash, service, region, at.Add(s.skew), optFns...)
}

// rewriteBody changes the body of requests after the SDK signed them, as a
// meddling proxy would: old becomes new (of the same length, so that only
// the payload hash tells).
type rewriteBody struct{ old, new string }

func (rw rewriteBody) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	changed := bytes.Replace(body, []byte(rw.old), []byte(rw.new), 1)
	if bytes.Equal(changed, body) {
		return nil, errors.New("rewriteBody: nothing to rewrite")
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(changed))
	return http.DefaultTransport.RoundTrip(req)
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// TestSDKClientAuthentication drives the real aws-sdk-go-v2 EC2 client, with
// static credentials and its standard retryer, against the server: only
// requests signed with the server's credentials, region and clock pass, the
// others fail with EC2's error code and HTTP status, and none is retried.
func TestSDKClientAuthentication(t *testing.T) {
	tests := []struct {
		name        string
		key, secret string
		region      string
		signerSkew  time.Duration // the client's clock minus the real one
		serverSkew  time.Duration // the server's clock minus the real one
		transport   http.RoundTripper
		wantCode    string // "" for success
		wantStatus  int
	}{
		{name: "right credentials", key: accessKey, secret: secret, region: region},
		{name: "client clock 3m fast", key: accessKey, secret: secret, region: region, signerSkew: 3 * time.Minute},
		{name: "wrong secret", key: accessKey, secret: "not-the-secret", region: region,
			wantCode: "SignatureDoesNotMatch", wantStatus: 403},
		{name: "unknown access key", key: "AKIDUNKNOWN", secret: secret, region: region,
			wantCode: "AuthFailure", wantStatus: 401},
		{name: "signed for another region", key: accessKey, secret: secret, region: "us-west-2",
			wantCode: "AuthFailure", wantStatus: 401},
		{name: "client clock 10m slow", key: accessKey, secret: secret, region: region, signerSkew: -10 * time.Minute,
			wantCode: "RequestExpired", wantStatus: 400},
		{name: "client clock 10m fast", key: accessKey, secret: secret, region: region, signerSkew: 10 * time.Minute,
			wantCode: "RequestExpired", wantStatus: 400},
		{name: "server clock 6m fast", key: accessKey, secret: secret, region: region, serverSkew: 6 * time.Minute,
			wantCode: "RequestExpired", wantStatus: 400},
		{name: "body altered after signing", key: accessKey, secret: secret, region: region,
			transport: rewriteBody{old: "Filter.1.Value.1=alpha", new: "Filter.1.Value.1=omega"},
			wantCode:  "SignatureDoesNotMatch", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ec2test.NewTestServer(t, ec2test.Options{
				Region:      region,
				Credentials: map[string]string{accessKey: secret},
				Now:         func() time.Time { return time.Now().Add(tt.serverSkew) },
			})
			var hc aws.HTTPClient = srv.HTTP.Client()
			if tt.transport != nil {
				hc = &http.Client{Transport: tt.transport}
			}
			client := ec2.New(ec2.Options{
				Region:       tt.region,
				BaseEndpoint: aws.String(srv.URL),
				Credentials:  credentials.NewStaticCredentialsProvider(tt.key, tt.secret, ""),
				HTTPClient:   hc,
				HTTPSignerV4: skewedSigner{Signer: *v4.NewSigner(), skew: tt.signerSkew},
				Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} }),
			})
			_, err := client.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
				Filters: []types.Filter{{Name: aws.String("tag:tide:fleet"), Values: []string{"alpha"}}},
			})
			if got := srv.Calls("DescribeInstances"); got != 1 {
				t.Errorf("server saw %d DescribeInstances calls, want 1 (no retries)", got)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DescribeInstances: %v", err)
				}
				return
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode || ae.ErrorMessage() == "" {
				t.Fatalf("DescribeInstances error %v, want %s", err, tt.wantCode)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tt.wantStatus {
				t.Errorf("DescribeInstances error %v, want HTTP status %d", err, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantCode) {
				t.Errorf("error %q does not name %s", err, tt.wantCode)
			}
		})
	}
}
