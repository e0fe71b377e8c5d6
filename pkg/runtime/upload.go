package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3API is the part of the S3 client the handler uses: GetObject for the
// input, PutObject and the multipart calls for the output, DeleteObject to
// remove what a run whose output is several objects wrote before one of
// them failed.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// S3 limits of multipart uploads.
const (
	// MinPartSize is the smallest part S3 accepts (but the last).
	MinPartSize = 5 << 20
	// maxParts is the most parts an upload may have.
	maxParts = 10000
)

// uploader streams a reader of unknown length to an S3 object: one
// PutObject when it ends within the first part, else a multipart upload.
//
// It does what the SDK's upload manager does, with two differences that
// matter when the same bootstrap serves invocation after invocation: the
// part buffers (concurrency+1 of them) are allocated once and reused for
// every upload, and the first part is read straight into one of them (the
// manager grows it with io.ReadAll, allocating and zeroing twice the part
// size on every call). The first 200 MB through the shim spent a fifth of
// its CPU there.
type uploader struct {
	s3          S3API
	partSize    int
	concurrency int
	// checksum is the algorithm of the checksums sent with the object and
	// each part (CRC32, as the SDK's default), or none when
	// AWS_REQUEST_CHECKSUM_CALCULATION=when_required.
	checksum types.ChecksumAlgorithm
	// bufs holds the part buffers; nil until first needed.
	bufs chan []byte
	// log gets a warning when an abort fails.
	log *slog.Logger
}

func newUploader(c S3API, partSize, concurrency int, checksum types.ChecksumAlgorithm, log *slog.Logger) *uploader {
	u := &uploader{s3: c, partSize: partSize, concurrency: concurrency, checksum: checksum, bufs: make(chan []byte, concurrency+1), log: log}
	for range concurrency + 1 {
		u.bufs <- nil
	}
	return u
}

// get waits for a free part buffer.
func (u *uploader) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-u.bufs:
		if b == nil {
			b = make([]byte, u.partSize)
		}
		return b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (u *uploader) put(b []byte) { u.bufs <- b }

// next reads r's next part into a free buffer: the buffer and the length
// read (nil and 0 when r had nothing more), and whether r ended. On a read
// error the buffer is returned to the pool.
func (u *uploader) next(ctx context.Context, r io.Reader) (b []byte, n int, end bool, err error) {
	if b, err = u.get(ctx); err != nil {
		return nil, 0, true, err
	}
	n, err = io.ReadFull(r, b)
	switch err {
	case nil:
		return b, n, false, nil
	case io.EOF, io.ErrUnexpectedEOF:
		if n == 0 {
			u.put(b)
			b = nil
		}
		return b, n, true, nil
	default:
		u.put(b)
		return nil, 0, true, err
	}
}

// upload writes everything r gives to bucket/key. On any error — r's, or
// S3's — nothing is left behind: a multipart upload is aborted.
func (u *uploader) upload(ctx context.Context, bucket, key string, r io.Reader) error {
	first, n1, end, err := u.next(ctx, r)
	if err != nil {
		return err
	}
	// A full first part may be all there is: read on before choosing.
	var second []byte
	var n2 int
	if !end {
		if second, n2, end, err = u.next(ctx, r); err != nil {
			u.put(first)
			return err
		}
	}
	if second == nil {
		if first != nil {
			defer u.put(first)
		}
		_, err := u.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(first[:n1]), ChecksumAlgorithm: u.checksum})
		return err
	}
	created, err := u.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ChecksumAlgorithm: u.checksum})
	if err != nil {
		u.put(first)
		u.put(second)
		return err
	}
	id := created.UploadId

	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	send := func(num int32, b []byte, n int) {
		wg.Go(func() {
			defer u.put(b)
			out, err := u.s3.UploadPart(pctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: id, PartNumber: aws.Int32(num),
				Body: bytes.NewReader(b[:n]), ChecksumAlgorithm: u.checksum})
			if err != nil {
				cancel(fmt.Errorf("uploading part %d: %w", num, err))
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
			mu.Unlock()
		})
	}
	send(1, first, n1)
	send(2, second, n2)
	for num := int32(3); !end && pctx.Err() == nil; num++ {
		b, n, last, err := u.next(pctx, r)
		end = last
		switch {
		case err != nil:
			cancel(err)
		case b == nil:
		case num > maxParts:
			u.put(b)
			cancel(fmt.Errorf("the output is larger than %d parts of %d bytes, S3's limit for one object", maxParts, u.partSize))
		default:
			send(num, b, n)
		}
	}
	wg.Wait()
	if err := context.Cause(pctx); err != nil {
		u.abort(ctx, bucket, key, id)
		return err
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	_, err = u.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		u.abort(ctx, bucket, key, id)
		return fmt.Errorf("completing the upload: %w", err)
	}
	return nil
}

// abort drops the multipart upload id, even when ctx is done (its
// deadline is why the upload failed, often): the parts would otherwise
// stay stored, and billed, until a lifecycle rule removes them. The upload
// has failed already, so an abort that fails too (a role without
// s3:AbortMultipartUpload, say) is logged, not returned: the warning names
// the upload for whoever removes it by hand.
func (u *uploader) abort(ctx context.Context, bucket, key string, id *string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := u.s3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id})
	if err != nil {
		u.log.WarnContext(actx, "aborting the multipart upload failed: its parts stay stored, and billed, until a lifecycle rule or an abort by hand removes them",
			"bucket", bucket, "key", key, "upload_id", aws.ToString(id), "err", err)
	}
}
