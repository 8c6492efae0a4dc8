package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tideops/tide/objstore"
)

// S3's limits on uploads.
const (
	maxPutSize    = 5 << 30 // one PutObject
	minPartSize   = 5 << 20 // every part of a multipart upload but the last
	maxPartSize   = 5 << 30 // any part
	maxParts      = 10_000  // parts of one upload
	maxObjectSize = 5 << 40 // an object
	partSizeStep  = 1 << 20 // a grown part size is a whole number of MiB
	abortTimeout  = 30 * time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// partSize returns the size of every part but the last of a size-byte
// object: want (at least S3's 5 MiB), grown to a whole number of MiB when
// the object would otherwise need more than S3's 10,000 parts. Objects
// above S3's 5 TiB are an error.
func partSize(size, want int64) (int64, error) {
	if size > maxObjectSize {
		return 0, fmt.Errorf("%d bytes: S3 objects hold at most %d (5 TiB)", size, int64(maxObjectSize))
	}
	want = max(want, minPartSize)
	if (size+want-1)/want > maxParts {
		want = (size + maxParts - 1) / maxParts
		want = (want + partSizeStep - 1) / partSizeStep * partSizeStep
	}
	return min(want, maxPartSize), nil
}

// putMultipart uploads size bytes of r under full (key to the caller) in
// parts, and aborts the upload when anything fails or ctx is cancelled.
func (s *Store) putMultipart(ctx context.Context, key, full string, r io.Reader, size int64) (objstore.Info, error) {
	ps, err := partSize(size, s.mp.partSize)
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s to %s: %w", key, s, err)
	}
	src, err := newPartSource(r, size, ps, s.mp.concurrency)
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s to %s: %w", key, s, err)
	}
	created, err := s.api.CreateMultipartUpload(ctx, &s3sdk.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	})
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s to %s: starting a multipart upload: %w", key, s, err)
	}
	id := created.UploadId
	if err := s.uploadParts(ctx, full, id, src); err != nil {
		if aerr := s.abort(ctx, full, id); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return objstore.Info{}, fmt.Errorf("putting %s to %s: %w", key, s, err)
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return objstore.Info{}, err
	}
	if info.Size != size {
		return objstore.Info{}, fmt.Errorf("putting %s to %s: the store holds %d bytes, %d were sent", key, s, info.Size, size)
	}
	return info, nil
}

// uploadParts sends src's parts, at most s.mp.concurrency at once, and
// completes the upload. The first failure cancels the parts in flight;
// it returns once none is.
func (s *Store) uploadParts(ctx context.Context, full string, id *string, src *partSource) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel(err) })
	}
	slots := make(chan struct{}, s.mp.concurrency)
	completed := make([]types.CompletedPart, src.parts)
loop:
	for i := range src.parts {
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
			break loop
		}
		if pctx.Err() != nil {
			<-slots
			break
		}
		p, err := src.part(i)
		if err != nil {
			<-slots
			fail(err)
			break
		}
		wg.Go(func() {
			defer func() { src.release(p); <-slots }()
			cp, err := s.uploadPart(pctx, full, id, p)
			if err != nil {
				fail(err)
				return
			}
			completed[i] = cp
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := context.Cause(pctx); err != nil {
		return err
	}
	_, err := s.api.CompleteMultipartUpload(ctx, &s3sdk.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		MpuObjectSize:   aws.Int64(src.size),
	})
	if err != nil {
		return fmt.Errorf("completing the multipart upload: %w", err)
	}
	return nil
}

// uploadPart sends one part with its CRC32C.
func (s *Store) uploadPart(ctx context.Context, full string, id *string, p part) (types.CompletedPart, error) {
	sum, err := p.checksum()
	if err != nil {
		return types.CompletedPart{}, fmt.Errorf("reading part %d: %w", p.number, err)
	}
	out, err := s.api.UploadPart(ctx, &s3sdk.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: id,
		PartNumber: aws.Int32(p.number), Body: p.body, ContentLength: aws.Int64(p.size),
		ChecksumCRC32C: aws.String(sum),
	})
	if err != nil {
		return types.CompletedPart{}, fmt.Errorf("uploading part %d: %w", p.number, err)
	}
	if got := aws.ToString(out.ChecksumCRC32C); got != "" && got != sum {
		return types.CompletedPart{}, fmt.Errorf("uploading part %d: the store computed crc32c %s, %s was sent", p.number, got, sum)
	}
	return types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(p.number), ChecksumCRC32C: aws.String(sum)}, nil
}

// abort aborts the upload, even when ctx is cancelled.
func (s *Store) abort(ctx context.Context, full string, id *string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if _, err := s.api.AbortMultipartUpload(actx, &s3sdk.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: id,
	}); err != nil {
		return fmt.Errorf("aborting multipart upload %s: %w", aws.ToString(id), err)
	}
	return nil
}

// partSource cuts a body into parts. A body that is an io.ReaderAt and an
// io.Seeker is read in place, each part a section of it (from the body's
// current offset); any other is read in order, each part into a buffer
// from a free list holding at most one per part in flight.
type partSource struct {
	size, partSize int64
	parts          int

	at   io.ReaderAt // or
	base int64
	seq  io.Reader
	free chan []byte
}

// part is one part of a body, ready to send: body is seekable, so the SDK
// can retry it.
type part struct {
	number int32
	size   int64
	body   io.ReadSeeker
	buf    []byte // when read into memory
}

// checksum returns the part's CRC32C as S3 wants it (base64 of the
// big-endian value), reading a section through and back to its start.
func (p part) checksum() (string, error) {
	var c uint32
	if p.buf != nil {
		c = crc32.Checksum(p.buf, castagnoli)
	} else {
		h := crc32.New(castagnoli)
		n, err := io.Copy(h, p.body)
		if err != nil {
			return "", err
		}
		if n != p.size {
			return "", fmt.Errorf("%d of %d bytes: %w", n, p.size, io.ErrUnexpectedEOF)
		}
		if _, err := p.body.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		c = h.Sum32()
	}
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c)), nil
}

func newPartSource(r io.Reader, size, partSize int64, concurrency int) (*partSource, error) {
	src := &partSource{size: size, partSize: partSize, parts: int((size + partSize - 1) / partSize)}
	at, isAt := r.(io.ReaderAt)
	sk, isSeeker := r.(io.Seeker)
	if isAt && isSeeker {
		base, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("finding the body's offset: %w", err)
		}
		src.at, src.base = at, base
		return src, nil
	}
	src.seq, src.free = r, make(chan []byte, concurrency)
	return src, nil
}

// part returns part i (from 0). Parts of a sequential body must be asked
// for in order, from one goroutine.
func (src *partSource) part(i int) (part, error) {
	off := int64(i) * src.partSize
	n := min(src.partSize, src.size-off)
	p := part{number: int32(i + 1), size: n}
	if src.at != nil {
		p.body = io.NewSectionReader(src.at, src.base+off, n)
		return p, nil
	}
	var buf []byte
	select {
	case buf = <-src.free:
	default:
		buf = make([]byte, src.partSize)
	}
	if _, err := io.ReadFull(src.seq, buf[:n]); err != nil {
		src.free <- buf
		return part{}, fmt.Errorf("reading part %d (bytes %d to %d of %d): %w", p.number, off, off+n, src.size, err)
	}
	p.buf = buf[:n]
	p.body = bytes.NewReader(p.buf)
	return p, nil
}

// release returns a sent part's buffer to the free list.
func (src *partSource) release(p part) {
	if p.buf != nil {
		src.free <- p.buf[:cap(p.buf)]
	}
}
