package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/tideops/tide/objstore"
)

// api lists the S3 calls the store makes, with the SDK's signatures.
type api interface {
	PutObject(ctx context.Context, in *s3sdk.PutObjectInput, opts ...func(*s3sdk.Options)) (*s3sdk.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3sdk.GetObjectInput, opts ...func(*s3sdk.Options)) (*s3sdk.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3sdk.HeadObjectInput, opts ...func(*s3sdk.Options)) (*s3sdk.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3sdk.ListObjectsV2Input, opts ...func(*s3sdk.Options)) (*s3sdk.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3sdk.DeleteObjectInput, opts ...func(*s3sdk.Options)) (*s3sdk.DeleteObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3sdk.CreateMultipartUploadInput, opts ...func(*s3sdk.Options)) (*s3sdk.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3sdk.UploadPartInput, opts ...func(*s3sdk.Options)) (*s3sdk.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3sdk.CompleteMultipartUploadInput, opts ...func(*s3sdk.Options)) (*s3sdk.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3sdk.AbortMultipartUploadInput, opts ...func(*s3sdk.Options)) (*s3sdk.AbortMultipartUploadOutput, error)
}

var _ api = (*s3sdk.Client)(nil)

// Options configure the S3 client. Everything is optional: by default the
// SDK's own configuration applies (AWS_REGION, profiles, instance
// metadata, AWS_ENDPOINT_URL_S3).
type Options struct {
	Region   string
	Profile  string
	Endpoint string
	// PathStyle addresses buckets as https://endpoint/bucket/key, as S3
	// servers other than AWS's usually want.
	PathStyle   bool
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client

	// MultipartThreshold is the size above which Put sends a body in
	// parts (a multipart upload) rather than in one PUT, which S3 caps at
	// 5 GiB. Default 64 MiB; at most 5 GiB.
	MultipartThreshold int64
	// PartSize is the size of every part but the last. Default 16 MiB, at
	// least 5 MiB (S3's minimum); grown for a body that would otherwise
	// need more than S3's 10,000 parts.
	PartSize int64
	// PartConcurrency bounds the parts of one Put in flight at once.
	// Default 4.
	PartConcurrency int
}

// Defaults of Options' multipart settings.
const (
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	DefaultPartConcurrency    = 4
)

// multipart holds a store's multipart settings, defaults applied.
type multipart struct {
	threshold   int64
	partSize    int64
	concurrency int
}

// multipartOf checks o's multipart settings against S3's limits and
// applies the defaults.
func multipartOf(o Options) (multipart, error) {
	m := multipart{threshold: o.MultipartThreshold, partSize: o.PartSize, concurrency: o.PartConcurrency}
	switch {
	case m.threshold < 0 || m.threshold > maxPutSize:
		return m, fmt.Errorf("s3 multipart threshold %d: want 0 (default %d) up to %d (5 GiB)", m.threshold, DefaultMultipartThreshold, int64(maxPutSize))
	case m.partSize != 0 && (m.partSize < minPartSize || m.partSize > maxPartSize):
		return m, fmt.Errorf("s3 part size %d: want 0 (default %d) or %d (5 MiB) up to %d (5 GiB)", m.partSize, DefaultPartSize, minPartSize, int64(maxPartSize))
	case m.concurrency < 0:
		return m, fmt.Errorf("s3 part concurrency %d: want 0 (default %d) or more", m.concurrency, DefaultPartConcurrency)
	}
	if m.threshold == 0 {
		m.threshold = DefaultMultipartThreshold
	}
	if m.partSize == 0 {
		m.partSize = DefaultPartSize
	}
	if m.concurrency == 0 {
		m.concurrency = DefaultPartConcurrency
	}
	return m, nil
}

// Client is an S3 client: it opens stores on buckets and presigns GETs.
type Client struct {
	c       *s3sdk.Client
	presign *s3sdk.PresignClient
	mp      multipart
}

// New loads the AWS configuration and returns a client.
func New(ctx context.Context, o Options) (*Client, error) {
	mp, err := multipartOf(o)
	if err != nil {
		return nil, err
	}
	var load []func(*config.LoadOptions) error
	if o.Region != "" {
		load = append(load, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3 answers any region's signature with a redirect hint
	}
	c := s3sdk.NewFromConfig(cfg, func(so *s3sdk.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		if o.HTTPClient != nil {
			so.HTTPClient = o.HTTPClient
		}
		// Checksums only where S3 requires them: streamed bodies are sent
		// with their length and no chunked trailer, which every S3 server
		// understands. Backups are verified by reading them back instead.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Client{c: c, presign: s3sdk.NewPresignClient(c), mp: mp}, nil
}

// Store returns the store on bucket whose keys are below prefix (which
// may be empty).
func (c *Client) Store(bucket, prefix string) *Store {
	return &Store{api: c.c, bucket: bucket, prefix: strings.Trim(prefix, "/"), mp: c.mp}
}

// PresignGet returns a URL that GETs bucket/key without credentials until
// ttl has passed.
func (c *Client) PresignGet(ctx context.Context, bucket, key string, ttl time.Duration) (string, error) {
	req, err := c.presign.PresignGetObject(ctx, &s3sdk.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3sdk.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presigning s3://%s/%s: %w", bucket, key, err)
	}
	return req.URL, nil
}

// StatObject describes bucket/key (a missing object wraps
// objstore.ErrNotFound): a rollout checks an artifact exists before it
// changes any host.
func (c *Client) StatObject(ctx context.Context, bucket, key string) (objstore.Info, error) {
	return c.Store(bucket, "").Stat(ctx, key)
}

// Store keeps objects in one bucket below a key prefix.
type Store struct {
	api    api
	bucket string
	prefix string
	mp     multipart
}

// String names the store in messages.
func (s *Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *Store) full(key string) (string, error) {
	if err := objstore.CheckKey(key); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return key, nil
	}
	return s.prefix + "/" + key, nil
}

func (s *Store) rel(full string) string {
	if s.prefix == "" {
		return full
	}
	return strings.TrimPrefix(full, s.prefix+"/")
}

// Put writes r under key. size is the number of bytes r holds; S3 needs it
// to stream a body it cannot seek (-1 reads r into memory first). A body
// larger than the multipart threshold is sent in parts, several at once:
// read with ReadAt from its current offset when it is an io.ReaderAt and
// an io.Seeker (an *os.File), else read in order into at most
// PartConcurrency buffers of PartSize. Each part carries its CRC32C,
// which S3 checks. A failed or cancelled multipart Put aborts the upload:
// S3 keeps neither the parts (which it would bill) nor an object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	full, err := s.full(key)
	if err != nil {
		return objstore.Info{}, err
	}
	if size < 0 {
		b, err := io.ReadAll(r)
		if err != nil {
			return objstore.Info{}, fmt.Errorf("putting %s: %w", key, err)
		}
		r, size = strings.NewReader(string(b)), int64(len(b))
	}
	if size > s.mp.threshold {
		return s.putMultipart(ctx, key, full, r, size)
	}
	_, err = s.api.PutObject(ctx, &s3sdk.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full),
		Body: r, ContentLength: aws.Int64(size),
	})
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s to %s: %w", key, s, err)
	}
	return s.Stat(ctx, key)
}

// Get opens the object under key; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	full, err := s.full(key)
	if err != nil {
		return nil, err
	}
	out, err := s.api.GetObject(ctx, &s3sdk.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil {
		return nil, fmt.Errorf("getting %s from %s: %w", key, s, notFound(err))
	}
	return out.Body, nil
}

// Stat describes the object under key.
func (s *Store) Stat(ctx context.Context, key string) (objstore.Info, error) {
	full, err := s.full(key)
	if err != nil {
		return objstore.Info{}, err
	}
	out, err := s.api.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil {
		return objstore.Info{}, fmt.Errorf("stat %s in %s: %w", key, s, notFound(err))
	}
	return objstore.Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List returns the objects whose keys begin with prefix, by key.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	var out []objstore.Info
	p := s3sdk.NewListObjectsV2Paginator(s.api, &s3sdk.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(full)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", prefix, s, err)
		}
		for _, o := range page.Contents {
			out = append(out, objstore.Info{Key: s.rel(aws.ToString(o.Key)), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object under key; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	full, err := s.full(key)
	if err != nil {
		return err
	}
	if _, err := s.api.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)}); err != nil {
		if err := notFound(err); errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("deleting %s from %s: %w", key, s, err)
	}
	return nil
}

// notFound wraps objstore.ErrNotFound around S3's answers for a missing
// object (NoSuchKey on GET, a bare 404 on HEAD).
func notFound(err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%w: %w", objstore.ErrNotFound, err)
	case errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound"):
		return fmt.Errorf("%w: %w", objstore.ErrNotFound, err)
	}
	return err
}
