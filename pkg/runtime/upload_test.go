package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestUploaderSizes streams outputs around the part size to moto: each
// comes back byte for byte, as a single PutObject when it fits in a part
// and in exactly ceil(size/part) parts otherwise (no empty last part).
func TestUploaderSizes(t *testing.T) {
	c := motoClient(t)
	bucket := mustBucket(t, c)
	const part = MinPartSize
	u := newUploader(c, part, 2, types.ChecksumAlgorithmCrc32, discardLog)
	for _, tt := range []struct {
		size  int
		parts int // 0: a single PutObject
	}{
		{0, 0}, {1, 0}, {part - 1, 0}, {part, 0}, {part + 1, 2}, {3 * part, 3}, {3*part + 5, 4},
	} {
		data := randomData(t, tt.size)
		key := "out/" + strings.Repeat("x", tt.parts+1)
		// A reader that is not a *bytes.Reader: the size is not known ahead.
		if err := u.upload(context.Background(), bucket, key, io.MultiReader(bytes.NewReader(data))); err != nil {
			t.Fatalf("%d bytes: upload: %v", tt.size, err)
		}
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("%d bytes: GetObject: %v", tt.size, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: object is %d bytes (%v), differs", tt.size, len(got), err)
		}
		etag := strings.Trim(aws.ToString(out.ETag), `"`)
		_, suffix, multipart := strings.Cut(etag, "-")
		switch {
		case tt.parts == 0 && multipart:
			t.Errorf("%d bytes: ETag %s is a multipart upload's, want a single PutObject", tt.size, etag)
		case tt.parts > 0 && suffix != string(rune('0'+tt.parts)):
			t.Errorf("%d bytes: ETag %s, want %d parts", tt.size, etag, tt.parts)
		}
	}
}

// TestUploaderReusesBuffers checks that the part buffers outlive an upload:
// the next one fills the same memory.
func TestUploaderReusesBuffers(t *testing.T) {
	c := motoClient(t)
	bucket := mustBucket(t, c)
	u := newUploader(c, MinPartSize, 2, types.ChecksumAlgorithmCrc32, discardLog)
	held := func() map[*byte]bool {
		seen := map[*byte]bool{}
		for range cap(u.bufs) {
			b := <-u.bufs
			if b != nil {
				seen[&b[0]] = true
			}
			defer func() { u.bufs <- b }()
		}
		return seen
	}
	data := randomData(t, 4*MinPartSize+1)
	if err := u.upload(context.Background(), bucket, "a.csv", io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	first := held()
	if len(first) != 3 {
		t.Fatalf("%d part buffers allocated for concurrency 2, want 3", len(first))
	}
	if err := u.upload(context.Background(), bucket, "b.csv", io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	for p := range held() {
		if !first[p] {
			t.Fatal("the second upload allocated a new part buffer")
		}
	}
}

// failingParts fails the UploadPart of one part number.
type failingParts struct {
	S3API
	part int32
}

var errInjected = errors.New("injected part failure")

func (f failingParts) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if aws.ToInt32(in.PartNumber) == f.part {
		return nil, errInjected
	}
	return f.S3API.UploadPart(ctx, in, opts...)
}

// TestUploaderFailures: a failing part or a failing reader aborts the
// upload, leaves no object and no upload in progress, and says why.
func TestUploaderFailures(t *testing.T) {
	c := motoClient(t)
	bucket := mustBucket(t, c)
	data := randomData(t, 4*MinPartSize)
	readErr := errors.New("program failed")
	for _, tt := range []struct {
		name string
		s3   S3API
		r    io.Reader
		want error
		msg  string
	}{
		{"part fails", failingParts{c, 2}, io.MultiReader(bytes.NewReader(data)), errInjected, "uploading part 2"},
		{"reader fails in part 3", c, io.MultiReader(bytes.NewReader(data[:2*MinPartSize+10]), errorReader{readErr}), readErr, "program failed"},
		{"reader fails in part 1", c, io.MultiReader(bytes.NewReader(data[:10]), errorReader{readErr}), readErr, "program failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUploader(tt.s3, MinPartSize, 2, types.ChecksumAlgorithmCrc32, discardLog)
			key := "out/" + tt.name
			err := u.upload(context.Background(), bucket, key, tt.r)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("upload = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
			if _, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
				t.Error("an object was written by a failed upload")
			}
			ups, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("%d multipart uploads left, want them aborted", len(ups.Uploads))
			}
			if n := len(u.bufs); n != cap(u.bufs) {
				t.Errorf("%d of %d part buffers returned", n, cap(u.bufs))
			}
		})
	}
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

var discardLog = slog.New(slog.DiscardHandler)

// deniedAbort fails AbortMultipartUpload as S3 does for a role without
// s3:AbortMultipartUpload.
type deniedAbort struct{ S3API }

var errAbortDenied = errors.New("api error AccessDenied: not authorized to perform s3:AbortMultipartUpload")

func (deniedAbort) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return nil, errAbortDenied
}

// TestUploaderLogsFailedAbort: when the abort after a failed part is
// denied too, the upload's error is still the part's, and a warning names
// the bucket, key and upload ID of the upload left behind.
func TestUploaderLogsFailedAbort(t *testing.T) {
	c := motoClient(t)
	bucket := mustBucket(t, c)
	var logs bytes.Buffer
	u := newUploader(deniedAbort{failingParts{c, 2}}, MinPartSize, 2, types.ChecksumAlgorithmCrc32,
		slog.New(slog.NewJSONHandler(&logs, nil)))
	key := "output/big.csv"
	err := u.upload(context.Background(), bucket, key, io.MultiReader(bytes.NewReader(randomData(t, 3*MinPartSize))))
	if !errors.Is(err, errInjected) {
		t.Fatalf("upload = %v, want the part's error %v", err, errInjected)
	}
	ups, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 {
		t.Fatalf("%d multipart uploads in progress, want the one whose abort was denied", len(ups.Uploads))
	}
	var rec struct {
		Level, Msg, Bucket, Key, Err string
		UploadID                     string `json:"upload_id"`
	}
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: want one JSON record: %v", logs.String(), err)
	}
	want := rec
	want.Level, want.Bucket, want.Key, want.UploadID, want.Err = "WARN", bucket, key, aws.ToString(ups.Uploads[0].UploadId), errAbortDenied.Error()
	if rec != want || !strings.Contains(rec.Msg, "aborting the multipart upload failed") {
		t.Errorf("log record = %+v, want %+v with a message saying the abort failed", rec, want)
	}
}
