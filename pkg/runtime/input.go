package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ErrInputChanged is wrapped by the error of a record whose input object
// is no longer the version its event named: two quick uploads of one key
// must not give the older one's output under the newer one's event, nor a
// splice of both.
var ErrInputChanged = errors.New("the input object changed")

// inputPin is the object version every read of a run's input is pinned
// to: the event's ETag (sent as If-Match) and its VersionId, when the
// event has them.
type inputPin struct {
	etag      string // without quotes
	versionID string
}

// pinOf returns the version the event's object names.
func pinOf(o events.S3Object) inputPin {
	return inputPin{etag: strings.Trim(o.ETag, `"`), versionID: o.VersionID}
}

// apply pins the request to p.
func (p inputPin) apply(in *s3.GetObjectInput) {
	if p.etag != "" {
		in.IfMatch = aws.String(`"` + p.etag + `"`)
	}
	if p.versionID != "" {
		in.VersionId = aws.String(p.versionID)
	}
}

// getInput opens the input object pinned to p; a failed precondition
// becomes an error wrapping ErrInputChanged.
func getInput(ctx context.Context, c S3API, bucket, key string, p inputPin) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	p.apply(in)
	out, err := c.GetObject(ctx, in)
	if err != nil && preconditionFailed(err) {
		return nil, fmt.Errorf("s3://%s/%s no longer has the ETag %q its event named (a newer upload replaced it, and its own event processes it): %w: %w",
			bucket, key, p.etag, ErrInputChanged, err)
	}
	return out, err
}

// preconditionFailed reports whether err is S3's answer to an If-Match that
// does not match.
func preconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

// Resuming the input: when the object's body breaks before its
// Content-Length (a connection reset mid-body), the reader reopens it from
// the next byte with a ranged GET pinned to the same version, at most
// maxInputRetries times per record, waiting a jittered, doubling backoff
// before each.
const (
	maxInputRetries = 5
	// defaultInputBackoff is the first wait (50–100 ms with jitter); the
	// five waits add up to 3.1 s at most.
	defaultInputBackoff = 100 * time.Millisecond
)

// inputReader is the input object's body, resumed where it broke. What it
// returns is exactly the object's bytes, in order, each once: the program
// never sees a gap, a duplicate or a splice of two versions.
type inputReader struct {
	ctx         context.Context
	c           S3API
	bucket, key string
	pin         inputPin
	backoff     time.Duration
	log         *slog.Logger

	body io.ReadCloser
	// size is the object's length, -1 when unknown (then nothing is
	// resumed); n how many bytes were returned.
	size int64
	n    atomic.Int64
	// broken is the error that broke the body, to resume from at the next
	// Read.
	broken  error
	retries atomic.Int32
}

// openInput opens the input object pinned to pin. When the event named no
// ETag, the one the first answer gives pins the resumed reads.
func openInput(ctx context.Context, c S3API, bucket, key string, pin inputPin, backoff time.Duration, log *slog.Logger) (*inputReader, error) {
	out, err := getInput(ctx, c, bucket, key, pin)
	if err != nil {
		return nil, err
	}
	if pin.etag == "" {
		pin.etag = strings.Trim(aws.ToString(out.ETag), `"`)
	}
	if v := aws.ToString(out.VersionId); pin.versionID == "" && v != "null" {
		pin.versionID = v
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return &inputReader{ctx: ctx, c: c, bucket: bucket, key: key, pin: pin, backoff: backoff, log: log, body: out.Body, size: size}, nil
}

// Read returns the object's next bytes, resuming the body if it broke.
func (r *inputReader) Read(p []byte) (int, error) {
	for {
		if r.broken != nil {
			if err := r.resume(r.broken); err != nil {
				return 0, err
			}
			r.broken = nil
		}
		n, err := r.body.Read(p)
		total := r.n.Add(int64(n))
		switch {
		case err == nil:
			return n, nil
		case r.size >= 0 && total >= r.size:
			// Everything arrived; what follows does not matter.
			return n, io.EOF
		case err == io.EOF && r.size < 0:
			return n, io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
		if r.size < 0 || r.ctx.Err() != nil {
			return n, err
		}
		r.broken = err
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the object at the first byte not yet returned.
func (r *inputReader) resume(cause error) error {
	r.body.Close()
	r.body = http.NoBody
	off := r.n.Load()
	for {
		if int(r.retries.Load()) >= maxInputRetries {
			return fmt.Errorf("s3://%s/%s: the body broke at byte %d of %d after %d resumed reads: %w", r.bucket, r.key, off, r.size, maxInputRetries, cause)
		}
		attempt := r.retries.Add(1)
		d := r.backoff << (attempt - 1)
		d = d/2 + rand.N(d/2+1)
		r.log.WarnContext(r.ctx, "input broke, resuming", "bucket", r.bucket, "key", r.key, "offset", off, "size", r.size, "retry", attempt, "wait", d, "err", cause)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return fmt.Errorf("s3://%s/%s: resuming at byte %d: %w (after %w)", r.bucket, r.key, off, context.Cause(r.ctx), cause)
		}
		in := &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key), Range: aws.String(fmt.Sprintf("bytes=%d-", off))}
		r.pin.apply(in)
		out, err := r.c.GetObject(r.ctx, in)
		if err != nil && preconditionFailed(err) {
			return fmt.Errorf("s3://%s/%s changed while the program read it: its ETag is no longer %q, and %d of its %d bytes were read; not splicing two versions: %w: %w",
				r.bucket, r.key, r.pin.etag, off, r.size, ErrInputChanged, err)
		}
		if err != nil {
			cause = err
			continue
		}
		if err := checkRange(aws.ToString(out.ContentRange), off, r.size); err != nil {
			out.Body.Close()
			return fmt.Errorf("s3://%s/%s: resuming at byte %d: %w", r.bucket, r.key, off, err)
		}
		r.body = out.Body
		return nil
	}
}

// checkRange checks that a ranged answer starts at off and runs to the end
// of an object of size bytes: a server that ignored the Range header would
// send the object again from its start.
func checkRange(contentRange string, off, size int64) error {
	var first, last, total int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &first, &last, &total); err != nil {
		return fmt.Errorf("the answer has no usable Content-Range (%q)", contentRange)
	}
	if first != off || last != size-1 || total != size {
		return fmt.Errorf("the answer holds bytes %d-%d of %d, want %d-%d of %d", first, last, total, off, size-1, size)
	}
	return nil
}

// Close closes the current body.
func (r *inputReader) Close() error { return r.body.Close() }
