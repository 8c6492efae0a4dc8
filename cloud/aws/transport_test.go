package aws

import (
	"bytes"
	"io"
	"net/http"
)

// BufferedBodies hands the transport a private copy of each request body.
// The SDK closes a request's body as soon as the response headers are in;
// net/http may still touch the body then and, finding it closed, drop the
// connection while the response body is being read ("use of closed network
// connection", aws/aws-sdk-go-v2#2737). The SDK retries that, which is fine
// in service but makes the call counts and results tests assert flaky. It is
// exported for the package's external tests only (this is a _test file).
type BufferedBodies struct{ Next http.RoundTripper }

// RoundTrip sends req with a body the SDK cannot close under net/http.
func (b BufferedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return b.Next.RoundTrip(req)
}
