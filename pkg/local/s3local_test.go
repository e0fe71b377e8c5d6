package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
)

func mustLocalS3(t *testing.T) *S3 {
	t.Helper()
	s, err := NewS3("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sdkClient returns a real SDK client for endpoint; checksums "when
// supported" make it send aws-chunked bodies with checksum trailers.
func sdkClient(endpoint string, checksum aws.RequestChecksumCalculation) *s3.Client {
	return s3.NewFromConfig(aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("test", "test", ""),
		RequestChecksumCalculation: checksum,
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getAll(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("GetObject(%s/%s): %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalS3WithSDK(t *testing.T) {
	ctx := context.Background()
	for _, cs := range []aws.RequestChecksumCalculation{aws.RequestChecksumCalculationWhenSupported, aws.RequestChecksumCalculationWhenRequired} {
		t.Run(map[aws.RequestChecksumCalculation]string{1: "checksums", 2: "no-checksums"}[cs], func(t *testing.T) {
			s := mustLocalS3(t)
			c := sdkClient(s.URL(), cs)
			bucket := "in"
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("CreateBucket: %v", err)
			}
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("HeadBucket: %v", err)
			}
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")}); err == nil {
				t.Error("HeadBucket(nope) = nil error, want not found")
			}

			small := []byte("a,b\n1,2\n")
			key := "dir/red flower+1.csv"
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(small)}); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			if got := getAll(t, c, bucket, key); !bytes.Equal(got, small) {
				t.Errorf("GetObject = %q, want %q", got, small)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("HeadObject: %v", err)
			}
			if aws.ToInt64(head.ContentLength) != int64(len(small)) {
				t.Errorf("HeadObject length = %d, want %d", aws.ToInt64(head.ContentLength), len(small))
			}
			rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=2-4")})
			if err != nil {
				t.Fatalf("ranged GetObject: %v", err)
			}
			rb, _ := io.ReadAll(rng.Body)
			rng.Body.Close()
			if string(rb) != "b\n1" {
				t.Errorf("ranged GetObject = %q, want %q", rb, "b\n1")
			}

			// Streamed, unknown size, larger than a part: multipart.
			big := randomBytes(t, 12<<20+12345)
			up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 2 })
			if _, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big.csv"), Body: io.MultiReader(bytes.NewReader(big))}); err != nil {
				t.Fatalf("multipart Upload: %v", err)
			}
			if got := getAll(t, c, bucket, "big.csv"); !bytes.Equal(got, big) {
				t.Errorf("multipart object differs: %d bytes, want %d", len(got), len(big))
			}

			// A failing stream aborts the upload and leaves no object.
			boom := errors.New("boom")
			_, err = up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("failed.csv"),
				Body: io.MultiReader(bytes.NewReader(big[:11<<20]), errReader{boom})})
			if !errors.Is(err, boom) {
				t.Errorf("failing Upload = %v, want %v", err, boom)
			}
			if n := s.openUploads(); n != 0 {
				t.Errorf("%d multipart uploads left after abort, want 0", n)
			}
			_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("failed.csv")})
			var nf *types.NotFound
			if !errors.As(err, &nf) {
				t.Errorf("HeadObject(failed.csv) = %v, want NotFound", err)
			}
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("failed.csv")})
			var nsk *types.NoSuchKey
			if !errors.As(err, &nsk) {
				t.Errorf("GetObject(failed.csv) = %v, want NoSuchKey", err)
			}

			list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			if err != nil {
				t.Fatalf("ListObjectsV2: %v", err)
			}
			var keys []string
			for _, o := range list.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			if diff := cmp.Diff([]string{"big.csv", key}, keys); diff != "" {
				t.Errorf("ListObjectsV2 keys (-want +got):\n%s", diff)
			}
			page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, MaxKeys: aws.Int32(1)})
			if err != nil {
				t.Fatal(err)
			}
			if !aws.ToBool(page.IsTruncated) || len(page.Contents) != 1 {
				t.Fatalf("ListObjectsV2(max 1) = %d keys truncated=%v, want 1 and truncated", len(page.Contents), aws.ToBool(page.IsTruncated))
			}
			page, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, ContinuationToken: page.NextContinuationToken})
			if err != nil || len(page.Contents) != 1 || aws.ToString(page.Contents[0].Key) != key {
				t.Errorf("second page = %v, %v; want [%s]", page, err, key)
			}

			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
				t.Fatalf("DeleteObject: %v", err)
			}
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
				t.Error("HeadObject after delete = nil error")
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestAWSChunkedReader(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"unsigned with trailer", "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n", "hello world", false},
		{"signed", "5;chunk-signature=abc\r\nhello\r\n0;chunk-signature=def\r\n\r\n", "hello", false},
		{"empty", "0\r\n\r\n", "", false},
		{"truncated", "a\r\nhello", "hello", true},
		{"bad size", "zz\r\nhello\r\n", "", true},
		{"missing CRLF", "5\r\nhelloXX0\r\n\r\n", "hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &awsChunkedReader{r: bufioReader(tt.in)}
			got, err := io.ReadAll(r)
			if (err != nil) != tt.wantErr {
				t.Errorf("decoding %q: err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("decoding %q = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestLocalS3AWSChunked sends through TLS, where the SDK streams bodies
// with Content-Encoding aws-chunked and a checksum trailer.
func TestLocalS3AWSChunked(t *testing.T) {
	ctx := context.Background()
	s := mustLocalS3(t)
	var chunked atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			chunked.Add(1)
		}
		s.route(w, r)
	}))
	defer srv.Close()
	c := s3.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  srv.Client(),
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	if err := s.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 6<<20+7)
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20 })
	if _, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: io.MultiReader(bytes.NewReader(data))}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("small"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if chunked.Load() == 0 {
		t.Fatal("the SDK sent no aws-chunked body; the test does not test what it should")
	}
	if got := getAll(t, c, "b", "k"); !bytes.Equal(got, data) {
		t.Errorf("object differs: %d bytes, want %d", len(got), len(data))
	}
	if got := getAll(t, c, "b", "small"); string(got) != "hello" {
		t.Errorf("small object = %q, want hello", got)
	}
}

// FuzzAWSChunked checks that any payload, cut in chunks of any size and
// encoded, decodes to itself, and that arbitrary bytes decode without
// panicking to no more bytes than were sent.
func FuzzAWSChunked(f *testing.F) {
	f.Add([]byte("hello world"), uint16(3), true)
	f.Add([]byte{}, uint16(1), false)
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(100), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, trailer bool) {
		// Arbitrary input: no panic, no more output than input.
		got, _ := io.ReadAll(&awsChunkedReader{r: bufio.NewReader(bytes.NewReader(data))})
		if len(got) > len(data) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(data))
		}
		// Round trip.
		size := int(chunk)%4096 + 1
		var enc bytes.Buffer
		for rest := data; len(rest) > 0; {
			n := min(size, len(rest))
			fmt.Fprintf(&enc, "%x;chunk-signature=00\r\n", n)
			enc.Write(rest[:n])
			enc.WriteString("\r\n")
			rest = rest[n:]
		}
		enc.WriteString("0\r\n")
		if trailer {
			enc.WriteString("x-amz-checksum-crc32:AAAAAA==\r\n")
		}
		enc.WriteString("\r\n")
		dec, err := io.ReadAll(&awsChunkedReader{r: bufio.NewReader(&enc)})
		if err != nil || !bytes.Equal(dec, data) {
			t.Fatalf("round trip of %d bytes in %d-byte chunks: %d bytes, %v", len(data), size, len(dec), err)
		}
	})
}

// A completed multipart object is served from its parts, kept as uploaded:
// reads across part boundaries, parts uploaded but not listed dropped, and
// nothing left on disk once the object is replaced and deleted.
func TestLocalS3MultipartParts(t *testing.T) {
	ctx := context.Background()
	s := mustLocalS3(t)
	c := sdkClient(s.URL(), aws.RequestChecksumCalculationWhenRequired)
	bucket, key := "in", "parts.csv"
	if err := s.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	sizes := []int{5<<20 + 7, 5 << 20, 3, 1000} // part 4 is uploaded, not listed
	var want []byte
	var done []types.CompletedPart
	for i, n := range sizes {
		b := randomBytes(t, n)
		part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		if i < 3 {
			want = append(want, b...)
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: part.ETag})
		}
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got := getAll(t, c, bucket, key); !bytes.Equal(got, want) {
		t.Fatalf("GetObject: %d bytes differ from the %d uploaded", len(got), len(want))
	}
	b1 := int64(sizes[0])
	for _, r := range [][2]int64{{b1 - 2, b1 + 2}, {0, b1 - 1}, {b1, b1}, {2*b1 - 10, int64(len(want)) - 1}, {int64(len(want)) - 2, int64(len(want)) - 1}} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
		if err != nil {
			t.Fatalf("GetObject range %v: %v", r, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want[r[0]:r[1]+1]) {
			t.Errorf("GetObject range %v: %d bytes (%v), want %d equal bytes", r, len(got), err, r[1]-r[0]+1)
		}
	}
	rc, err := s.Object(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("Object: %d bytes (%v), want the %d uploaded", len(got), err, len(want))
	}

	// Replaced by a plain PutObject, then deleted: no file is left behind.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("x\n")}); err != nil {
		t.Fatal(err)
	}
	if got := getAll(t, c, bucket, key); string(got) != "x\n" {
		t.Errorf("after PutObject GetObject = %q", got)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(filepath.Join(s.dir, bucket))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d entries left in the bucket's directory after delete, want 0: %v", len(left), left)
	}
}

// TestLocalS3AccessKey: after requireAccessKey, a request signed with
// another access key, an unsigned one and one naming another Host are
// refused with 403; the key's own requests work.
func TestLocalS3AccessKey(t *testing.T) {
	s := mustLocalS3(t)
	ctx := context.Background()
	// Before: any key (the SDK tests' "test").
	if _, err := sdkClient(s.URL(), aws.RequestChecksumCalculationWhenRequired).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("b")}); err != nil {
		t.Fatalf("CreateBucket before requireAccessKey: %v", err)
	}
	s.requireAccessKey("LOCALKEY1")
	client := func(id string) *s3.Client {
		return s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id, "secret", "")},
			func(o *s3.Options) { o.BaseEndpoint = aws.String(s.URL()); o.UsePathStyle = true })
	}
	if _, err := client("LOCALKEY1").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("data")}); err != nil {
		t.Fatalf("PutObject with the key: %v", err)
	}
	if got := getAll(t, client("LOCALKEY1"), "b", "k"); string(got) != "data" {
		t.Errorf("GetObject with the key = %q, want data", got)
	}
	for _, id := range []string{"test", "LOCALKEY", "LOCALKEY12"} {
		_, err := client(id).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
			t.Errorf("GetObject with access key %q = %v, want 403 InvalidAccessKeyId", id, err)
		}
	}
	raw := func(host, auth string) int {
		req, err := http.NewRequest("GET", s.URL()+"/b/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	addr := strings.TrimPrefix(s.URL(), "http://")
	good := "AWS4-HMAC-SHA256 Credential=LOCALKEY1/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
	if got := raw(addr, good); got != http.StatusOK {
		t.Errorf("GET with the key's Authorization: %d, want 200", got)
	}
	if got := raw(addr, ""); got != http.StatusForbidden {
		t.Errorf("unsigned GET: %d, want 403", got)
	}
	_, port, _ := strings.Cut(addr, ":")
	if got := raw("rebound.example:"+port, good); got != http.StatusForbidden {
		t.Errorf("GET with another Host: %d, want 403", got)
	}
}
