package ec2test

import (
	"net/http/httptest"
	"testing"
)

// TestServer is a Server listening on a loopback httptest server.
type TestServer struct {
	*Server
	// HTTP is the listening server; its URL is the endpoint to give the SDK.
	HTTP *httptest.Server
	// URL is HTTP.URL.
	URL string
}

// NewTestServer starts a Server on a loopback address and closes it when
// the test ends.
func NewTestServer(t testing.TB, opts Options) *TestServer {
	t.Helper()
	s := NewServer(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &TestServer{Server: s, HTTP: hs, URL: hs.URL}
}
