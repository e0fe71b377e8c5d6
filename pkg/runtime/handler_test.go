package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
)

// mustTaskRoot lays out a package: extract.json and the test program at
// rootfs/bin/testprog.
func mustTaskRoot(t *testing.T, m Manifest) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, RootDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(testProg, filepath.Join(root, RootDir, "bin", "testprog"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ManifestPath), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

type handlerSetup struct {
	h      *Handler
	c      *s3.Client
	bucket string
	log    *bytes.Buffer
}

// mustHandler makes a package running testprog with args and a handler for
// it against a fresh moto bucket.
func mustHandler(t *testing.T, mode string, args ...string) handlerSetup {
	t.Helper()
	return mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: append([]string{"testprog"}, args...), Input: Input{Mode: mode, Suffix: DefaultInputSuffix}})
}

// mustHandlerFor makes the package of m and a handler for it against a
// fresh moto bucket.
func mustHandlerFor(t *testing.T, m Manifest) handlerSetup {
	t.Helper()
	return mustHandlerWith(t, m, nil)
}

// mustHandlerWith is mustHandlerFor with files (image path → content) added
// to the package and opts given to NewHandler after the test's own.
func mustHandlerWith(t *testing.T, m Manifest, files map[string]string, opts ...Option) handlerSetup {
	t.Helper()
	root := mustTaskRoot(t, m)
	for p, content := range files {
		name := filepath.Join(root, RootDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lm, err := LoadManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(lm, root); err != nil {
		t.Fatal(err)
	}
	c := motoClient(t)
	var log bytes.Buffer
	h, err := NewHandler(context.Background(), lm, root, append([]Option{WithS3Client(c), WithProgramLog(&log), WithEnviron([]string{"TZ=UTC"})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if h.outDir != "" {
		t.Cleanup(func() { os.RemoveAll(h.outDir) })
	}
	return handlerSetup{h: h, c: c, bucket: mustBucket(t, c), log: &log}
}

func (s handlerSetup) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if _, err := s.c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("PutObject(%q): %v", key, err)
	}
}

// get returns the object's content, or nil and false when it does not exist.
func (s handlerSetup) get(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	out, err := s.c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// keys lists the bucket.
func (s handlerSetup) keys(t *testing.T) []string {
	t.Helper()
	out, err := s.c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func (s handlerSetup) uploadsInProgress(t *testing.T) int {
	t.Helper()
	out, err := s.c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// s3Event builds an event like S3 sends: keys URL-encoded form style.
func s3Event(bucket string, encodedKeys ...string) events.S3Event {
	var ev events.S3Event
	for _, k := range encodedKeys {
		var r events.S3EventRecord
		r.EventSource = "aws:s3"
		r.EventName = "ObjectCreated:Put"
		r.S3.Bucket.Name = bucket
		r.S3.Object.Key = k
		ev.Records = append(ev.Records, r)
	}
	return ev
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		encodedKey string
		key        string
		size       int
	}{
		{"plain", "data.csv", "data.csv", 1000},
		{"space as plus", "red+flower.csv", "red flower.csv", 4096},
		{"encoded slash and plus", "dir%2Fa%2Bb+c.csv", "dir/a+b c.csv", 10},
		{"empty", "empty.csv", "empty.csv", 0},
		{"multipart", "big.csv", "big.csv", 20<<20 + 17},
	}
	s := mustHandler(t, "stdin", "cat")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomData(t, tt.size)
			s.put(t, tt.key, data)
			for run := 1; run <= 2; run++ { // a retried event gives the same output
				res, err := s.h.Handle(context.Background(), s3Event(s.bucket, tt.encodedKey))
				if err != nil {
					t.Fatalf("run %d: Handle: %v", run, err)
				}
				want := []RecordResult{{Bucket: s.bucket, Key: tt.key, OutputBucket: s.bucket, OutputKey: "output/" + tt.key,
					InputBytes: int64(tt.size), OutputBytes: int64(tt.size), OutputFiles: 1}}
				if diff := cmp.Diff(want, res.Records, cmpIgnoreDuration); diff != "" {
					t.Errorf("run %d: records (-want +got):\n%s", run, diff)
				}
				got, ok := s.get(t, "output/"+tt.key)
				if !ok {
					t.Fatalf("run %d: no output object output/%s", run, tt.key)
				}
				if !bytes.Equal(got, data) {
					t.Errorf("run %d: output is %d bytes, differs from the %d input bytes", run, len(got), len(data))
				}
			}
		})
	}
}

var cmpIgnoreDuration = cmp.Transformer("noDuration", func(r RecordResult) RecordResult { r.DurationMS, r.ProgramMS = 0, 0; return r })

func TestHandleSkips(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	for _, k := range []string{"output/a.csv", "notes.txt", "a.csv"} {
		s.put(t, k, []byte("x,y\n"))
	}
	ev := s3Event(s.bucket, "output%2Fa.csv", "notes.txt", "a.csv")
	res, err := s.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var skipped []string
	for _, r := range res.Records {
		skipped = append(skipped, r.Skipped)
	}
	want := []string{`key is under the output prefix "output/"`, `key does not end in ".csv"`, ""}
	if diff := cmp.Diff(want, skipped); diff != "" {
		t.Errorf("skip reasons (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a.csv", "notes.txt", "output/a.csv"}, s.keys(t)); diff != "" {
		t.Errorf("bucket keys (-want +got):\n%s", diff)
	}
	// a.csv's output, written under the prefix, was not itself processed.
	if got, _ := s.get(t, "output/a.csv"); string(got) != "x,y\n" {
		t.Errorf("output/a.csv = %q", got)
	}
}

func TestHandleInputPrefix(t *testing.T) {
	s := mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "cat"},
		Input: Input{Prefix: "input/", Suffix: ".csv"}, Output: Output{Prefix: "output/", Suffix: ".out"}})
	s.put(t, "input/day 1.csv", []byte("1\n"))
	s.put(t, "other/day2.csv", []byte("2\n"))
	res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input%2Fday+1.csv", "other%2Fday2.csv"))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := []RecordResult{
		{Bucket: s.bucket, Key: "input/day 1.csv", OutputBucket: s.bucket, OutputKey: "output/day 1.csv.out", InputBytes: 2, OutputBytes: 2, OutputFiles: 1},
		{Bucket: s.bucket, Key: "other/day2.csv", Skipped: `key is not under the input prefix "input/"`},
	}
	if diff := cmp.Diff(want, res.Records, cmpIgnoreDuration); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if got, _ := s.get(t, "output/day 1.csv.out"); string(got) != "1\n" {
		t.Errorf("output/day 1.csv.out = %q, want %q", got, "1\n")
	}
}

func TestHandleOtherOutputBucket(t *testing.T) {
	c := motoClient(t)
	out := mustBucket(t, c)
	s := mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "cat"},
		Output: Output{Bucket: out, Prefix: "output/"}})
	// In another output bucket, an input key under "output/" is a real input.
	s.put(t, "output/x.csv", []byte("x\n"))
	if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "output%2Fx.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	o := handlerSetup{c: c, bucket: out}
	if got, _ := o.get(t, "output/output/x.csv"); string(got) != "x\n" {
		t.Errorf("s3://%s/output/output/x.csv = %q, want %q", out, got, "x\n")
	}
}

func TestHandleTestEvent(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	var ev events.S3Event
	raw := `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-22T03:00:00.000Z","Bucket":"` + s.bucket + `","RequestId":"X","HostId":"Y"}`
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	res, err := s.h.Handle(context.Background(), ev)
	if err != nil || len(res.Records) != 0 {
		t.Errorf("Handle(test event) = %+v, %v; want no records and no error", res, err)
	}
	if keys := s.keys(t); len(keys) != 0 {
		t.Errorf("bucket holds %q after a test event, want nothing", keys)
	}
}

func TestHandleMultipleRecords(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	s.put(t, "one.csv", []byte("1\n"))
	s.put(t, "two.csv", []byte("2\n"))
	res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "one.csv", "two.csv"))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(res.Records) != 2 {
		t.Fatalf("%d records, want 2", len(res.Records))
	}
	for k, want := range map[string]string{"output/one.csv": "1\n", "output/two.csv": "2\n"} {
		if got, _ := s.get(t, k); string(got) != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// One missing object fails the invocation, the other record still runs.
	s.put(t, "three.csv", []byte("3\n"))
	_, err = s.h.Handle(context.Background(), s3Event(s.bucket, "missing.csv", "three.csv"))
	var re *RecordError
	if !errors.As(err, &re) || re.Key != "missing.csv" || re.Op != "reading input" {
		t.Errorf("Handle = %v, want a RecordError reading missing.csv", err)
	}
	if got, _ := s.get(t, "output/three.csv"); string(got) != "3\n" {
		t.Errorf("output/three.csv = %q, want the record processed", got)
	}
}

func TestHandleFailure(t *testing.T) {
	tests := []struct {
		name     string
		outBytes int
	}{
		{"small output", 100},
		{"multipart output", 20 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustHandler(t, "stdin", "fail", "3", "30", strconv.Itoa(tt.outBytes))
			s.put(t, "in put.csv", []byte("a\n"))
			_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "in+put.csv"))
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Handle = %v, want a *RecordError", err)
			}
			if re.ExitCode != 3 || re.Bucket != s.bucket || re.Key != "in put.csv" {
				t.Errorf("RecordError = %+v, want exit 3 for %s/in put.csv", re, s.bucket)
			}
			var want []string
			for i := 11; i <= 30; i++ {
				want = append(want, fmt.Sprintf("error line %d", i))
			}
			if diff := cmp.Diff(want, re.Stderr); diff != "" {
				t.Errorf("stderr tail (-want +got):\n%s", diff)
			}
			msg := err.Error()
			for _, part := range []string{"s3://" + s.bucket + "/in put.csv", "exited with status 3", "error line 30"} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not mention %q", msg, part)
				}
			}
			if _, ok := s.get(t, "output/in put.csv"); ok {
				t.Error("output object written for a failed run")
			}
			if n := s.uploadsInProgress(t); n != 0 {
				t.Errorf("%d multipart uploads left, want them aborted", n)
			}
			if !strings.Contains(s.log.String(), "in put.csv: error line 1\n") {
				t.Errorf("program log lacks the key-prefixed stderr lines:\n%s", s.log.String())
			}
		})
	}
}

func TestHandleTimeout(t *testing.T) {
	s := mustHandler(t, "stdin", "sleep")
	s.put(t, "slow.csv", []byte("a\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.h.Handle(ctx, s3Event(s.bucket, "slow.csv"))
	elapsed := time.Since(start)
	var re *RecordError
	if !errors.As(err, &re) || !re.TimedOut {
		t.Fatalf("Handle = %v, want a timed-out RecordError", err)
	}
	if elapsed > 1400*time.Millisecond {
		t.Errorf("Handle returned after %v, want before the 1.5s deadline", elapsed)
	}
	if !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %q does not say it timed out", err)
	}
	// The child in the program's process group was killed too.
	var pid int
	for _, l := range re.Stderr {
		fmt.Sscanf(l, "child %d", &pid)
	}
	if pid == 0 {
		t.Fatalf("no child pid in stderr %q", re.Stderr)
	}
	if alive(pid) {
		t.Errorf("child %d of the program survived the timeout", pid)
	}
	if _, ok := s.get(t, "output/slow.csv"); ok {
		t.Error("output written for a timed-out run")
	}
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	for i := 0; i < 20; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return false
		}
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func TestHandleFileInput(t *testing.T) {
	s := mustHandler(t, "file", "catfile", "{input}")
	data := randomData(t, 3<<20)
	s.put(t, "dir/in file.csv", data)
	if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "dir%2Fin+file.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got, _ := s.get(t, "output/dir/in file.csv"); !bytes.Equal(got, data) {
		t.Errorf("output is %d bytes, want the %d input bytes", len(got), len(data))
	}
}

func TestHandleProgramStopsReading(t *testing.T) {
	s := mustHandler(t, "stdin", "head", "10")
	data := randomData(t, 5<<20)
	s.put(t, "long.csv", data)
	if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "long.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got, _ := s.get(t, "output/long.csv"); !bytes.Equal(got, data[:10]) {
		t.Errorf("output = %d bytes, want the first 10 input bytes", len(got))
	}
}

func TestHandleMissingInterpreter(t *testing.T) {
	link := filepath.Join(t.TempDir(), "x0123456789")
	s := mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "cat"}, LinkDir: link})
	// Replace the program by a script whose interpreter is under the link
	// directory, as the packager rewrites #! lines, but is not in the
	// package.
	if err := os.WriteFile(s.h.program, []byte("#!"+link+"/rootfs/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.put(t, "a.csv", []byte("x\n"))
	_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "a.csv"))
	if err == nil || !strings.Contains(err.Error(), "program interpreter is missing") || !strings.Contains(err.Error(), link) {
		t.Errorf("Handle = %v, want an error naming the missing interpreter and the link dir", err)
	}
}
