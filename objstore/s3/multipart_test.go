package s3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/s3"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// Small multipart settings keep the tests fast: a 12 MiB body is three
// parts of 5, 5 and 2 MiB, two in flight at once.
const (
	mib        = 1 << 20
	partSize   = 5 * mib
	threshold  = 6 * mib
	objectSize = 12 * mib
	inFlight   = 2
)

// randomBytes returns n reproducible bytes in which no part looks like
// another, so parts stored out of order show.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'t', 'i', 'd', 'e'}).Read(b)
	return b
}

// partRecorder is the client's transport: it records the UploadPart
// requests, counts those in flight, and runs a test's hooks on them.
type partRecorder struct {
	base http.RoundTripper

	mu          sync.Mutex
	parts       map[int]http.Header // part number -> request headers
	sizes       map[int]int64
	inFlight    int
	maxInFlight int
	singlePuts  int

	// onRequest may replace a part's request body; onResponse sees its
	// answer. Both run on the request's goroutine.
	onRequest  func(part int, req *http.Request)
	onResponse func(part int, resp *http.Response)
}

func newPartRecorder(base http.RoundTripper) *partRecorder {
	return &partRecorder{base: base, parts: map[int]http.Header{}, sizes: map[int]int64{}}
}

func (p *partRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	n, err := strconv.Atoi(q.Get("partNumber"))
	if req.Method != http.MethodPut || !q.Has("uploadId") || err != nil {
		if req.Method == http.MethodPut && !q.Has("uploadId") {
			p.mu.Lock()
			p.singlePuts++
			p.mu.Unlock()
		}
		return p.base.RoundTrip(req)
	}
	p.mu.Lock()
	p.parts[n] = req.Header.Clone()
	p.sizes[n] = req.ContentLength
	p.inFlight++
	p.maxInFlight = max(p.maxInFlight, p.inFlight)
	p.mu.Unlock()
	if p.onRequest != nil {
		p.onRequest(n, req)
	}
	resp, err := p.base.RoundTrip(req)
	p.mu.Lock()
	p.inFlight--
	p.mu.Unlock()
	if err == nil && p.onResponse != nil {
		p.onResponse(n, resp)
	}
	return resp, err
}

// multipartStore returns a store on bucket "backups" of srv with the
// small multipart settings, its requests going through rec.
func multipartStore(t *testing.T, srv s3test.Server, rec *partRecorder) *s3.Store {
	t.Helper()
	o := srv.Options()
	o.MultipartThreshold, o.PartSize, o.PartConcurrency = threshold, partSize, inFlight
	o.HTTPClient = &http.Client{Transport: rec}
	c, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c.Store("backups", "tide")
}

// assertNothingLeft checks that no multipart upload is open in the bucket
// and that key holds no object.
func assertNothingLeft(t *testing.T, srv s3test.Server, st *s3.Store, key string) {
	t.Helper()
	out, err := srv.SDK().ListMultipartUploads(context.Background(), &s3sdk.ListMultipartUploadsInput{Bucket: aws.String("backups")})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left open: key %s, id %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
	if _, err := st.Stat(context.Background(), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Stat %s after a failed Put: %v, want ErrNotFound", key, err)
	}
}

func crc32c(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

func TestMultipartRoundTrip(t *testing.T) {
	data := randomBytes(objectSize)
	file := func(t *testing.T, header int) io.Reader {
		f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Write(append(make([]byte, header), data...)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(int64(header), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		return f
	}
	bodies := []struct {
		name string
		body func(t *testing.T) io.Reader
	}{
		{"file", func(t *testing.T) io.Reader { return file(t, 0) }},
		{"file read from its offset", func(t *testing.T) io.Reader { return file(t, 1000) }},
		{"stream", func(t *testing.T) io.Reader { return io.MultiReader(bytes.NewReader(data)) }},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, "backups")
			for _, b := range bodies {
				t.Run(b.name, func(t *testing.T) {
					ctx := context.Background()
					rec := newPartRecorder(s.HTTPClient.Transport)
					st := multipartStore(t, s, rec)
					key := "roundtrip/" + strings.ReplaceAll(b.name, " ", "-")
					info, err := st.Put(ctx, key, b.body(t), objectSize)
					if err != nil {
						t.Fatal(err)
					}
					if info.Size != objectSize {
						t.Errorf("Put size %d, want %d", info.Size, objectSize)
					}
					rc, err := st.Get(ctx, key)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("Get: %d bytes (want %d), equal %v, %v", len(got), len(data), bytes.Equal(got, data), err)
					}
					rec.mu.Lock()
					defer rec.mu.Unlock()
					if rec.singlePuts != 0 {
						t.Errorf("%d single PUTs, want none", rec.singlePuts)
					}
					wantSizes := map[int]int64{1: partSize, 2: partSize, 3: objectSize - 2*partSize}
					if len(rec.sizes) != len(wantSizes) {
						t.Errorf("parts sent %v, want %v", rec.sizes, wantSizes)
					}
					for n, size := range wantSizes {
						if rec.sizes[n] != size {
							t.Errorf("part %d: %d bytes, want %d", n, rec.sizes[n], size)
						}
						off := int64(n-1) * partSize
						if got, want := rec.parts[n].Get("X-Amz-Checksum-Crc32c"), crc32c(data[off:off+size]); got != want {
							t.Errorf("part %d: crc32c header %q, want %q", n, got, want)
						}
					}
					if rec.maxInFlight > inFlight {
						t.Errorf("%d parts in flight at once, want at most %d", rec.maxInFlight, inFlight)
					}
				})
			}
			t.Run("at the threshold", func(t *testing.T) {
				rec := newPartRecorder(s.HTTPClient.Transport)
				st := multipartStore(t, s, rec)
				small := data[:threshold]
				if _, err := st.Put(context.Background(), "roundtrip/small", bytes.NewReader(small), threshold); err != nil {
					t.Fatal(err)
				}
				if rec.singlePuts != 1 || len(rec.parts) != 0 {
					t.Errorf("%d single PUTs and %d parts, want one PUT", rec.singlePuts, len(rec.parts))
				}
			})
		})
	}
}

// failingAt is a file-like body whose ReadAt fails from an offset on.
type failingAt struct {
	*bytes.Reader
	from int64
}

var errInjected = errors.New("injected read failure")

func (f failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.from {
		return 0, errInjected
	}
	return f.Reader.ReadAt(p, off)
}

// corruptAt flips one byte of a request body.
type corruptAt struct {
	io.ReadCloser
	at, n int64
}

func (c *corruptAt) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	if c.at >= c.n && c.at < c.n+int64(k) {
		p[c.at-c.n] ^= 0xff
	}
	c.n += int64(k)
	return k, err
}

func TestMultipartFailureLeavesNothing(t *testing.T) {
	data := randomBytes(objectSize)
	type run struct {
		ctx  context.Context
		body io.Reader
		rec  *partRecorder
	}
	tests := []struct {
		name string
		// onlyChecking: the server must check parts' checksums
		// (gofakes3 ignores them; tide's read-back verify catches what
		// they would).
		onlyChecking bool
		setup        func(t *testing.T, r *run)
		check        func(t *testing.T, err error)
	}{
		{"ReadAt fails at part 2", false,
			func(t *testing.T, r *run) { r.body = failingAt{bytes.NewReader(data), partSize + 1} },
			func(t *testing.T, err error) {
				if !errors.Is(err, errInjected) {
					t.Errorf("Put: %v, want the injected error", err)
				}
			}},
		{"stream ends in part 2", false,
			func(t *testing.T, r *run) { r.body = io.MultiReader(bytes.NewReader(data[:partSize+mib])) },
			func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("Put: %v, want io.ErrUnexpectedEOF", err)
				}
			}},
		{"cancelled once part 1 is stored", false,
			func(t *testing.T, r *run) {
				ctx, cancel := context.WithCancel(r.ctx)
				t.Cleanup(cancel)
				r.ctx = ctx
				r.rec.onResponse = func(part int, resp *http.Response) {
					if part == 1 && resp.StatusCode == http.StatusOK {
						cancel()
					}
				}
			},
			func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Put: %v, want context.Canceled", err)
				}
			}},
		{"part 2 corrupted on the way", true,
			func(t *testing.T, r *run) {
				r.rec.onRequest = func(part int, req *http.Request) {
					if part == 2 {
						req.Body = &corruptAt{ReadCloser: req.Body, at: 12345}
					}
				}
			},
			func(t *testing.T, err error) {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "BadDigest" {
					t.Errorf("Put: %v, want the server's BadDigest", err)
				}
			}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, "backups")
			for _, tt := range tests {
				if tt.onlyChecking && srv.name != "versitygw" {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					rec := newPartRecorder(s.HTTPClient.Transport)
					r := &run{ctx: context.Background(), body: bytes.NewReader(data), rec: rec}
					tt.setup(t, r)
					st := multipartStore(t, s, rec)
					key := "failed/" + strings.ReplaceAll(tt.name, " ", "-")
					_, err := st.Put(r.ctx, key, r.body, objectSize)
					if err == nil {
						t.Fatal("Put succeeded")
					}
					t.Logf("Put: %v", err)
					tt.check(t, err)
					assertNothingLeft(t, s, st, key)
				})
			}
		})
	}
}
