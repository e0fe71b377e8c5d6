package runtime

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// putVersion uploads data at key and returns its ETag (unquoted, as S3
// events carry it) and version ID.
func (s handlerSetup) putVersion(t *testing.T, key string, data []byte) (etag, version string) {
	t.Helper()
	out, err := s.c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutObject(%q): %v", key, err)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`), aws.ToString(out.VersionId)
}

// pinnedEvent is the event of one upload of key, naming its ETag and
// version as S3 does.
func pinnedEvent(bucket, key, etag, version string) events.S3Event {
	ev := s3Event(bucket, key)
	ev.Records[0].S3.Object.ETag = etag
	ev.Records[0].S3.Object.VersionID = version
	return ev
}

// TestHandleStaleInput: the event of an older upload of the key is refused
// with ErrInputChanged and writes nothing; the newest one's event runs.
func TestHandleStaleInput(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	oldTag, _ := s.putVersion(t, "a.csv", []byte("old\n"))
	newTag, _ := s.putVersion(t, "a.csv", []byte("new\n"))
	if oldTag == newTag {
		t.Fatalf("both uploads have ETag %s", oldTag)
	}
	_, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", oldTag, ""))
	if !errors.Is(err, ErrInputChanged) {
		t.Fatalf("Handle(event of the older upload) = %v, want ErrInputChanged", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `no longer has the ETag "`+oldTag+`"`) || !strings.Contains(msg, "s3://"+s.bucket+"/a.csv") {
		t.Errorf("error %q does not name the object and the event's ETag", msg)
	}
	if _, ok := s.get(t, "output/a.csv"); ok {
		t.Error("output written for a stale event")
	}
	// Quoted, as some tools write it, the current ETag runs.
	if _, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", `"`+newTag+`"`, "")); err != nil {
		t.Fatalf("Handle(event of the current upload): %v", err)
	}
	if got, _ := s.get(t, "output/a.csv"); string(got) != "new\n" {
		t.Errorf("output/a.csv = %q, want %q", got, "new\n")
	}
}

// TestHandleInputVersion: in a versioned bucket, the event's VersionId is
// what the program reads, even after a newer upload.
func TestHandleInputVersion(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	if _, err := s.c.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: &s.bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	oldTag, oldVersion := s.putVersion(t, "a.csv", []byte("old\n"))
	if oldVersion == "" {
		t.Fatal("no version ID from a versioned bucket")
	}
	s.putVersion(t, "a.csv", []byte("new\n"))
	if _, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", oldTag, oldVersion)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got, _ := s.get(t, "output/a.csv"); string(got) != "old\n" {
		t.Errorf("output/a.csv = %q, want the event's version %q", got, "old\n")
	}
}
