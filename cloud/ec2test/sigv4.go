package ec2test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4 names, from AWS's Signature Version 4 specification.
const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	sigTerminator = "aws4_request"
	amzDateLayout = "20060102T150405Z"
	scopeLayout   = "20060102"
	// Service is the service name EC2 requests are signed for.
	Service = "ec2"
	// DefaultMaxSkew is how far a request's signing time may be from the
	// server's clock when Options.MaxSkew is zero: SigV4's replay window
	// (AWS documents five minutes for most services).
	DefaultMaxSkew = 5 * time.Minute
)

// EC2's authentication error messages.
const (
	msgAuthFailure  = "AWS was not able to validate the provided access credentials"
	msgBadSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// verifier checks the AWS Signature Version 4 of requests made with the
// Authorization header, for one region and service.
type verifier struct {
	secrets map[string]string // access key id -> secret access key
	region  string
	service string
	maxSkew time.Duration
	now     func() time.Time
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKey string
	date      string // YYYYMMDD of the credential scope
	region    string
	service   string
	terminal  string
	// signedHeaders are the header names the client signed, lowercased and
	// sorted as the canonical request lists them.
	signedHeaders []string
	signature     []byte
}

// scope returns the credential scope: DATE/REGION/SERVICE/aws4_request.
func (a *authorization) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/" + a.terminal
}

// verify checks the signature of r, whose body has been read into body. It
// returns nil when the request is signed, for the verifier's region and
// service, within the allowed skew of the server's clock, by a known access
// key with its secret. Otherwise it returns the error EC2 answers with:
// AuthFailure (401) for a missing signature, an unknown access key or a
// credential scoped to another region or service; IncompleteSignature (400)
// for an Authorization header lacking parts; RequestExpired (400) for a
// signing time too far from the server's; SignatureDoesNotMatch (403) for a
// signature that is not the one the secret gives.
func (v *verifier) verify(r *http.Request, body []byte) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return errorf("AuthFailure", "ec2test verifies SigV4 in the Authorization header only, not presigned query strings")
		}
		return errorf("AuthFailure", "%s", msgAuthFailure)
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return err
	}
	secret, ok := v.secrets[a.accessKey]
	if !ok {
		return errorf("AuthFailure", "%s", msgAuthFailure)
	}
	if a.region != v.region {
		return errorf("AuthFailure", "%s: credential should be scoped to a valid region, not '%s'", msgAuthFailure, a.region)
	}
	if a.service != v.service {
		return errorf("AuthFailure", "%s: credential should be scoped to correct service: '%s'", msgAuthFailure, v.service)
	}
	if a.terminal != sigTerminator {
		return errorf("AuthFailure", "%s: credential should be scoped with a valid terminator: '%s', not '%s'", msgAuthFailure, sigTerminator, a.terminal)
	}

	amzDate, signedTime, err := requestTime(r, a)
	if err != nil {
		return err
	}
	now := v.now()
	if d := now.Sub(signedTime); d > v.maxSkew || d < -v.maxSkew {
		return errorf("RequestExpired", "Request has expired: signed at %s, %s from the server's time %s (at most %s allowed)",
			amzDate, d.Round(time.Second), now.UTC().Format(amzDateLayout), v.maxSkew)
	}

	payload := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(payload[:])
	if declared := r.Header.Get("X-Amz-Content-Sha256"); declared != "" && declared != payloadHash {
		// The declared hash is what gets signed; EC2 requests carry their
		// whole body, so it must be the body's.
		return errorf("SignatureDoesNotMatch", "The provided x-amz-content-sha256 header does not match what was computed.")
	}
	cr, err := canonicalRequest(r, a.signedHeaders, payloadHash)
	if err != nil {
		return err
	}
	want := signature(signingKey(secret, a.date, a.region, a.service), stringToSign(amzDate, a.scope(), cr))
	if !hmac.Equal(want, a.signature) { // constant time
		return errorf("SignatureDoesNotMatch", "%s", msgBadSignature)
	}
	return nil
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/
// SERVICE/aws4_request, SignedHeaders=a;b;c, Signature=HEX".
func parseAuthorization(h string) (*authorization, *apiError) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != sigAlgorithm {
		return nil, errorf("IncompleteSignature", "Unsupported AWS 'algorithm': '%s'", alg)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errorf("IncompleteSignature", "Authorization header requires each component to be of the form key=value, not '%s'", strings.TrimSpace(part))
		}
		fields[k] = val
	}
	var missing []string
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if len(missing) > 0 {
		return nil, errorf("IncompleteSignature", "%s", strings.Join(missing, " "))
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[0] == "" {
		return nil, errorf("IncompleteSignature", "Credential '%s' is not of the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request", fields["Credential"])
	}
	sig, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(sig) != sha256.Size {
		return nil, errorf("IncompleteSignature", "Signature '%s' is not 64 hexadecimal digits", fields["Signature"])
	}
	names := strings.Split(strings.ToLower(fields["SignedHeaders"]), ";")
	sort.Strings(names)
	if !slices.Contains(names, "host") {
		return nil, errorf("IncompleteSignature", "SignedHeaders '%s' must include host", fields["SignedHeaders"])
	}
	return &authorization{
		accessKey: cred[0], date: cred[1], region: cred[2], service: cred[3], terminal: cred[4],
		signedHeaders: names, signature: sig,
	}, nil
}

// requestTime returns the request's signing time from X-Amz-Date (or, as
// SigV4 allows, the Date header), which must be signed and fall on the
// credential scope's date.
func requestTime(r *http.Request, a *authorization) (amzDate string, t time.Time, _ *apiError) {
	switch {
	case r.Header.Get("X-Amz-Date") != "":
		if !slices.Contains(a.signedHeaders, "x-amz-date") {
			return "", t, errorf("IncompleteSignature", "The x-amz-date header must be signed")
		}
		amzDate = r.Header.Get("X-Amz-Date")
		var err error
		if t, err = time.Parse(amzDateLayout, amzDate); err != nil {
			return "", t, errorf("IncompleteSignature", "X-Amz-Date '%s' is not of the form YYYYMMDD'T'HHMMSS'Z'", amzDate)
		}
	case r.Header.Get("Date") != "":
		if !slices.Contains(a.signedHeaders, "date") {
			return "", t, errorf("IncompleteSignature", "The date header must be signed")
		}
		var err error
		if t, err = http.ParseTime(r.Header.Get("Date")); err != nil {
			return "", t, errorf("IncompleteSignature", "Date '%s' is not an HTTP date", r.Header.Get("Date"))
		}
		amzDate = t.UTC().Format(amzDateLayout)
	default:
		return "", t, errorf("IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if d := t.UTC().Format(scopeLayout); d != a.date {
		return "", t, errorf("SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.date, d, amzDate)
	}
	return amzDate, t, nil
}

// canonicalRequest builds SigV4's canonical request of r:
//
//	METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n CANONICAL-HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//
// where the canonical headers are one "name:value\n" line per signed header.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) (string, *apiError) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signed {
		values, err := headerValues(r, name)
		if err != nil {
			return "", err
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(collapseSpaces(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// headerValues returns the values of a signed header as the client sent
// them. net/http moves Host out of the header map, and may answer the
// content length only through ContentLength.
func headerValues(r *http.Request, name string) ([]string, *apiError) {
	switch name {
	case "host":
		return []string{r.Host}, nil
	case "content-length":
		if vs := r.Header.Values(name); len(vs) > 0 {
			return vs, nil
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, nil
		}
	}
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return nil, errorf("SignatureDoesNotMatch", "%s (the signed header '%s' is not in the request)", msgBadSignature, name)
	}
	return vs, nil
}

// collapseSpaces trims a header value and turns each run of spaces inside
// it into one space.
func collapseSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	return strings.Join(strings.Fields(v), " ")
}

// canonicalURI returns the URI-encoded path. Services other than S3 encode
// each segment of the path as sent (itself already encoded) once more.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery returns the query's parameters, names and values decoded
// then URI-encoded, sorted by name and then by value, joined with '&'.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		pairs = append(pairs, pair{uriEncode(queryUnescape(k)), uriEncode(queryUnescape(v))})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// queryUnescape decodes a query component as url.ParseQuery does; a
// malformed escape is kept as it came.
func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// uriEncode percent-encodes every byte but SigV4's unreserved characters
// (A-Z a-z 0-9 - _ . ~), with upper-case hex digits.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// stringToSign returns "AWS4-HMAC-SHA256\nAMZ-DATE\nSCOPE\nHEX(SHA256(CR))".
func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signingKey derives the key of one day, region and service from a secret:
// HMAC("AWS4"+secret, date), then region, service and "aws4_request".
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, sigTerminator)
}

// signature returns HMAC(key, stringToSign), raw (the header carries it in
// lower-case hex).
func signature(key []byte, stringToSign string) []byte {
	return hmacSHA256(key, stringToSign)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
