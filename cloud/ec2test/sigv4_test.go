package ec2test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSigV4DocumentedExample checks the verifier's canonical request,
// string to sign, signing key and signature against the worked example of
// AWS's Signature Version 4 documentation (IAM ListUsers, signed on
// 2015-08-30 with the documentation's example credentials), then verifies
// the documented Authorization header as a whole.
func TestSigV4DocumentedExample(t *testing.T) {
	const (
		secret        = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
		amzDate       = "20150830T123600Z"
		scope         = "20150830/us-east-1/iam/aws4_request"
		wantCanonical = "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
			"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
			"content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		wantHash = "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
		wantKey  = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
		wantSig  = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	)
	newRequest := func() *http.Request {
		req := httptest.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		req.Header.Set("X-Amz-Date", amzDate)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"+scope+
			", SignedHeaders=content-type;host;x-amz-date, Signature="+wantSig)
		return req
	}
	req := newRequest()
	a, aerr := parseAuthorization(req.Header.Get("Authorization"))
	if aerr != nil {
		t.Fatal(aerr)
	}
	if a.accessKey != "AKIDEXAMPLE" || a.scope() != scope || strings.Join(a.signedHeaders, ";") != "content-type;host;x-amz-date" {
		t.Errorf("parsed %+v", a)
	}
	empty := sha256.Sum256(nil)
	cr, aerr := canonicalRequest(req, a.signedHeaders, hex.EncodeToString(empty[:]))
	if aerr != nil {
		t.Fatal(aerr)
	}
	if cr != wantCanonical {
		t.Errorf("canonical request:\n%s\nwant:\n%s", cr, wantCanonical)
	}
	sts := stringToSign(amzDate, scope, cr)
	if want := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + wantHash; sts != want {
		t.Errorf("string to sign:\n%s\nwant:\n%s", sts, want)
	}
	key := signingKey(secret, "20150830", "us-east-1", "iam")
	if got := hex.EncodeToString(key); got != wantKey {
		t.Errorf("signing key %s, want %s", got, wantKey)
	}
	if got := hex.EncodeToString(signature(key, sts)); got != wantSig {
		t.Errorf("signature %s, want %s", got, wantSig)
	}

	signedAt, _ := time.Parse(amzDateLayout, amzDate)
	v := &verifier{secrets: map[string]string{"AKIDEXAMPLE": secret}, region: "us-east-1", service: "iam",
		maxSkew: DefaultMaxSkew, now: func() time.Time { return signedAt.Add(time.Minute) }}
	if err := v.verify(newRequest(), nil); err != nil {
		t.Errorf("documented request refused: %v", err)
	}
	tampered := newRequest()
	tampered.URL.RawQuery = "Action=ListUsers&Version=2010-05-09"
	if err := v.verify(tampered, nil); err == nil || err.code != "SignatureDoesNotMatch" {
		t.Errorf("tampered query: %v, want SignatureDoesNotMatch", err)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"Version=2010-05-08&Action=ListUsers", "Action=ListUsers&Version=2010-05-08"},
		// By name, then by value; a name that is a prefix of another sorts first.
		{"a-b=1&a=2&a=1", "a=1&a=2&a-b=1"},
		{"k=a%20b&k2=a+b&t=~._-", "k=a%20b&k2=a%20b&t=~._-"},
		{"x=%2F%2a&flag", "flag=&x=%2F%2A"},
		{"u=%C3%A9", "u=%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if got := canonicalQuery(tt.raw); got != tt.want {
				t.Errorf("canonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct{ path, want string }{
		{"", "/"},
		{"/", "/"},
		// Services other than S3 encode the path as sent once more
		// (the SigV4 documentation's "documents and settings" example).
		{"/documents%20and%20settings/", "/documents%2520and%2520settings/"},
		{"/a~b/c.d", "/a~b/c.d"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			u, err := url.Parse("http://h" + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := canonicalURI(u); got != tt.want {
				t.Errorf("canonicalURI(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestCollapseSpaces(t *testing.T) {
	for in, want := range map[string]string{"a": "a", "  a  b   c ": "a b c", "x y": "x y", "": ""} {
		if got := collapseSpaces(in); got != want {
			t.Errorf("collapseSpaces(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerifyRejects sends hand-made requests, signed with the SDK's signer
// and then spoiled in one way each, and checks EC2's answer to each.
func TestVerifyRejects(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	s := newTestServer(Options{Now: func() time.Time { return now }})
	describe := form("Action", "DescribeInstances")
	tests := []struct {
		name       string
		at         time.Time                             // signing time; zero: the request is not signed
		spoil      func(req *http.Request, body *string) // after signing
		wantStatus int
		wantCode   string
	}{
		{"signed", now, nil, 200, ""},
		{"unsigned", time.Time{}, nil, 401, "AuthFailure"},
		{"presigned", time.Time{}, func(req *http.Request, _ *string) {
			req.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
		}, 401, "AuthFailure"},
		{"4m59s slow", now.Add(-4*time.Minute - 59*time.Second), nil, 200, ""},
		{"4m59s fast", now.Add(4*time.Minute + 59*time.Second), nil, 200, ""},
		{"5m01s slow", now.Add(-5*time.Minute - time.Second), nil, 400, "RequestExpired"},
		{"5m01s fast", now.Add(5*time.Minute + time.Second), nil, 400, "RequestExpired"},
		{"body changed", now, func(_ *http.Request, body *string) {
			*body = strings.Replace(*body, "DescribeInstances", "DescribeInstancex", 1)
		}, 403, "SignatureDoesNotMatch"},
		{"signed header dropped", now, func(req *http.Request, _ *string) {
			req.Header.Del("Content-Type")
		}, 403, "SignatureDoesNotMatch"},
		{"signed header changed", now, func(req *http.Request, _ *string) {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		}, 403, "SignatureDoesNotMatch"},
		{"host changed", now, func(req *http.Request, _ *string) {
			req.Host = "ec2.us-east-1.amazonaws.com"
		}, 403, "SignatureDoesNotMatch"},
		{"signature changed", now, func(req *http.Request, _ *string) {
			h := req.Header.Get("Authorization")
			last := "0"
			if strings.HasSuffix(h, "0") {
				last = "1"
			}
			req.Header.Set("Authorization", h[:len(h)-1]+last)
		}, 403, "SignatureDoesNotMatch"},
		{"payload hash header lies", now, func(req *http.Request, body *string) {
			sum := sha256.Sum256([]byte(*body))
			req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			*body += "&Extra=1"
		}, 403, "SignatureDoesNotMatch"},
		{"other algorithm", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "HMAC-SHA256", "HMAC-SHA512", 1))
		}, 400, "IncompleteSignature"},
		{"no signature part", now, func(req *http.Request, _ *string) {
			h := req.Header.Get("Authorization")
			req.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
		}, 400, "IncompleteSignature"},
		{"host not signed", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "host;", "", 1))
		}, 400, "IncompleteSignature"},
		{"x-amz-date not signed", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), ";x-amz-date", "", 1))
		}, 400, "IncompleteSignature"},
		{"no date", now, func(req *http.Request, _ *string) {
			req.Header.Del("X-Amz-Date")
		}, 400, "IncompleteSignature"},
		{"scope of another day", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/20260314/", "/20260313/", 1))
		}, 403, "SignatureDoesNotMatch"},
		{"unknown access key", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), testAccessKey, "AKIDOTHER", 1))
		}, 401, "AuthFailure"},
		{"another region", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
		}, 401, "AuthFailure"},
		{"another service", now, func(req *http.Request, _ *string) {
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/ec2/", "/s3/", 1))
		}, 401, "AuthFailure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := formRequest(describe)
			if !tt.at.IsZero() {
				sign(t, req, body, tt.at)
			}
			if tt.spoil != nil {
				tt.spoil(req, &body)
			}
			req.Body = io.NopCloser(strings.NewReader(body))
			req.ContentLength = int64(len(body))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantCode != "" {
				p := parse(t, rec)
				if len(p.Errors) != 1 || p.Errors[0].Code != tt.wantCode || p.Errors[0].Message == "" {
					t.Errorf("response %s, want %s", rec.Body, tt.wantCode)
				}
			}
			if got, want := rec.Header().Get("Date"), now.Format(http.TimeFormat); got != want {
				t.Errorf("Date header %q, want the server's clock %q", got, want)
			}
		})
	}
}

// BenchmarkVerify is the verifier's cost per request: a DescribeInstances
// request of tide's (filters, page size, token) signed by the SDK.
func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	s := newTestServer(Options{Now: func() time.Time { return now }})
	req, body := formRequest(form("Action", "DescribeInstances", "MaxResults", "1000", "NextToken", "c2VxOjEwMDE",
		"Filter.1.Name", "tag:tide:fleet", "Filter.1.Value.1", "office",
		"Filter.2.Name", "instance-state-name", "Filter.2.Value.1", "pending", "Filter.2.Value.2", "running"))
	sign(b, req, body, now)
	for b.Loop() {
		if err := s.auth.verify(req, []byte(body)); err != nil {
			b.Fatal(err)
		}
	}
}
