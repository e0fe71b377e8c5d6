package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
)

// writerManifest is a package running testprog's write mode with args.
func writerManifest(args ...string) Manifest {
	return Manifest{Version: 1, Program: "/bin/testprog", Args: append([]string{"testprog", "write"}, args...),
		Input: Input{Prefix: "input/", Suffix: ".csv"}, Output: Output{Prefix: "output/"}}
}

// outputKeys lists the bucket's keys under output/.
func (s handlerSetup) outputKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, k := range s.keys(t) {
		if strings.HasPrefix(k, "output/") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// event is the S3 event of the object at key, with its ETag.
func (s handlerSetup) event(t *testing.T, key string) events.S3Event {
	t.Helper()
	head, err := s.c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	ev := s3Event(s.bucket, key)
	ev.Records[0].S3.Object.ETag = strings.Trim(aws.ToString(head.ETag), `"`)
	return ev
}

func TestHandleOutputFile(t *testing.T) {
	tests := []struct {
		name       string
		stdout     string
		stdoutAlso bool
		wantKeys   []string
	}{
		{"stdout to the log", "to stdout", false, []string{"output/day1.csv"}},
		{"no stdout", "", false, []string{"output/day1.csv"}},
		{"stdout kept", "to stdout", true, []string{"output/day1.csv", "output/day1.csv.stdout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := writerManifest("0", tt.stdout, "{output}=result bytes")
			m.Output.StdoutAlso = tt.stdoutAlso
			s := mustHandlerFor(t, m)
			s.put(t, "input/day1.csv", []byte("a,b\n"))
			res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv"))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.wantKeys, s.outputKeys(t)); diff != "" {
				t.Errorf("output keys (-want +got):\n%s", diff)
			}
			if got, _ := s.get(t, "output/day1.csv"); string(got) != "result bytes" {
				t.Errorf("output/day1.csv = %q, want the output file's %q", got, "result bytes")
			}
			r := res.Records[0]
			wantFiles, wantBytes := 1, int64(len("result bytes"))
			if tt.stdoutAlso {
				if got, _ := s.get(t, "output/day1.csv.stdout"); string(got) != tt.stdout+"\n" {
					t.Errorf("output/day1.csv.stdout = %q, want %q", got, tt.stdout+"\n")
				}
				wantFiles, wantBytes = 2, wantBytes+int64(len(tt.stdout)+1)
			}
			if r.OutputFiles != wantFiles || r.OutputBytes != wantBytes {
				t.Errorf("OutputFiles, OutputBytes = %d, %d, want %d, %d", r.OutputFiles, r.OutputBytes, wantFiles, wantBytes)
			}
			logged := strings.Contains(s.log.String(), "input/day1.csv (stdout): to stdout\n")
			if want := tt.stdout != "" && !tt.stdoutAlso; logged != want {
				t.Errorf("stdout line in the log: %v, want %v; log:\n%s", logged, want, s.log.String())
			}
		})
	}
}

func TestHandleOutputFileMissing(t *testing.T) {
	s := mustHandlerFor(t, writerManifest("0", "", "/tmp/elsewhere-{output}"))
	s.put(t, "input/day1.csv", []byte("a,b\n"))
	_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv"))
	if err == nil || !strings.Contains(err.Error(), "without creating its output file") {
		t.Fatalf("Handle: %v, want an error saying the output file was not created", err)
	}
	if keys := s.outputKeys(t); len(keys) != 0 {
		t.Errorf("objects under output/ after a run without its output file: %q", keys)
	}
}

func TestHandleOutputDir(t *testing.T) {
	m := writerManifest("0", "summary printed", "/out/summary.csv=1,2\n", "/out/plots/a.png=PNG", "/out/changed.txt=new",
		"/out/link@/etc/passwd", "plots/b.png=in the workdir")
	m.Output.Dir = "/out"
	files := map[string]string{"/out/old.txt": "kept", "/out/changed.txt": "before"}
	var lb logBuffer
	s := mustHandlerWith(t, m, files, WithLogger(NewLogger(lb.writer(), "")))
	s.put(t, "input/day1.csv", []byte("a,b\n"))
	ev := s.event(t, "input/day1.csv")
	ctx := withRequestID(context.Background(), "8f5c3a2e-0000-4000-8000-000000000001")
	for run := 1; run <= 2; run++ { // the directory is as the package had it again
		res, err := s.h.Handle(ctx, ev)
		if err != nil {
			t.Fatalf("run %d: Handle: %v", run, err)
		}
		want := []string{"output/day1/_manifest.json", "output/day1/changed.txt", "output/day1/plots/a.png", "output/day1/summary.csv"}
		if diff := cmp.Diff(want, s.outputKeys(t)); diff != "" {
			t.Errorf("run %d: output keys (-want +got):\n%s", run, diff)
		}
		man := s.checkManifest(t, "output/day1/_manifest.json")
		if man.Input.ETag != ev.Records[0].S3.Object.ETag || man.Input.Key != "input/day1.csv" || man.RequestID != requestID(ctx) {
			t.Errorf("run %d: manifest input %+v, request %q; want ETag %q, request %q", run, man.Input, man.RequestID, ev.Records[0].S3.Object.ETag, requestID(ctx))
		}
		if r := res.Records[0]; r.OutputFiles != 3 || r.OutputBytes != 4+3+3 || r.ManifestKey != "output/day1/_manifest.json" || r.OutputKey != "" {
			t.Errorf("run %d: record %+v, want 3 files, 10 bytes, the manifest's key and no output key", run, r)
		}
		if b, err := os.ReadFile(filepath.Join(s.h.outDir, "changed.txt")); err != nil || string(b) != "before" {
			t.Errorf("run %d: changed.txt after the run = %q, %v; want the package's %q back", run, b, err, "before")
		}
	}
	if !strings.Contains(s.log.String(), "input/day1.csv (stdout): summary printed") {
		t.Errorf("the program's stdout is not in the log:\n%s", s.log.String())
	}
	if log := strings.Join(lb.lines(), "\n"); !strings.Contains(log, "a symlink is not uploaded") || !strings.Contains(log, `path=link target=/etc/passwd points="outside the directory"`) {
		t.Errorf("the log does not say the symlink link -> /etc/passwd was left out:\n%s", log)
	}
}

// checkManifest reads the output manifest at key and checks each file's
// size and SHA-256 against its object.
func (s handlerSetup) checkManifest(t *testing.T, key string) OutputManifest {
	t.Helper()
	b, ok := s.get(t, key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	var man OutputManifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatalf("%s: %v\n%s", key, err, b)
	}
	var paths []string
	for _, f := range man.Files {
		paths = append(paths, f.Path)
		obj, _ := s.get(t, f.Key)
		sum := sha256.Sum256(obj)
		if f.Key != "output/day1/"+f.Path || int64(len(obj)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("manifest entry %+v: the object is %d bytes, SHA-256 %x", f, len(obj), sum)
		}
	}
	if want := []string{"changed.txt", "plots/a.png", "summary.csv"}; !slices.Equal(paths, want) {
		t.Errorf("manifest paths %q, want %q", paths, want)
	}
	return man
}

func TestHandleOutputDirWorkDir(t *testing.T) {
	m := writerManifest("0", "kept", "result.txt=r", "sub/x.txt=x")
	m.WorkDir, m.Output.Dir, m.Output.StdoutAlso = "/work", "/work/", true
	s := mustHandlerWith(t, m, map[string]string{"/work/config.ini": "c"})
	s.put(t, "input/day1.csv", []byte("a,b\n"))
	res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv"))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := []string{"output/day1.csv.stdout", "output/day1/_manifest.json", "output/day1/result.txt", "output/day1/sub/x.txt"}
	if diff := cmp.Diff(want, s.outputKeys(t)); diff != "" {
		t.Errorf("output keys (-want +got):\n%s", diff)
	}
	if r := res.Records[0]; r.StdoutKey != "output/day1.csv.stdout" || r.OutputFiles != 3 || r.OutputBytes != 2+5 {
		t.Errorf("record %+v, want the stdout key, 3 objects of 7 bytes", r)
	}
	b, _ := s.get(t, "output/day1/_manifest.json")
	var man OutputManifest
	if err := json.Unmarshal(b, &man); err != nil || man.Stdout == nil || man.Stdout.Key != "output/day1.csv.stdout" || man.Stdout.Size != 5 {
		t.Errorf("manifest's stdout entry: %v, %+v; want output/day1.csv.stdout, 5 bytes", err, man.Stdout)
	}
}

func TestHandleOutputDirLargeFile(t *testing.T) {
	// Over a part: the multipart uploader, beside PutObjects.
	m := writerManifest("0", "", "/out/big.bin#6291459", "/out/a.txt=a", "/out/b.txt=b")
	m.Output.Dir = "/out"
	s := mustHandlerWith(t, m, nil, WithPartSize(MinPartSize))
	s.put(t, "input/day1.csv", []byte("a,b\n"))
	if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	b, _ := s.get(t, "output/day1/_manifest.json")
	var man OutputManifest
	if err := json.Unmarshal(b, &man); err != nil || len(man.Files) != 3 {
		t.Fatalf("manifest: %v, %d files, want 3:\n%s", err, len(man.Files), b)
	}
	for _, f := range man.Files {
		obj, _ := s.get(t, f.Key)
		if sum := sha256.Sum256(obj); int64(len(obj)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("manifest entry %+v: the object is %d bytes, SHA-256 %x", f, len(obj), sum)
		}
	}
	if f := man.Files[2]; f.Path != "big.bin" || f.Size != 6291459 {
		t.Errorf("last manifest entry %+v, want big.bin of 6291459 bytes", f)
	}
}

func TestHandleOutputDirInWorkDir(t *testing.T) {
	m := writerManifest("0", "", "out/r.txt=r", "log.txt=not an output")
	m.WorkDir, m.WritableWorkDir, m.Output.Dir = "/app", true, "/app/out"
	s := mustHandlerWith(t, m, map[string]string{"/app/out/keep.txt": "k"})
	s.put(t, "input/day1.csv", []byte("a,b\n"))
	if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := []string{"output/day1/_manifest.json", "output/day1/r.txt"}
	if diff := cmp.Diff(want, s.outputKeys(t)); diff != "" {
		t.Errorf("output keys (-want +got):\n%s", diff)
	}
}

func TestHandleOutputFailedRun(t *testing.T) {
	for name, args := range map[string][]string{
		"output file": {"3", "out", "{output}=x"},
		"output dir":  {"3", "out", "/out/a.txt=a", "/out/sub/b.txt=b"},
	} {
		t.Run(name, func(t *testing.T) {
			m := writerManifest(args...)
			m.Output.Dir, m.Output.StdoutAlso = "/out", true
			s := mustHandlerFor(t, m)
			s.put(t, "input/day1.csv", []byte("a,b\n"))
			_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv"))
			var re *RecordError
			if !errors.As(err, &re) || re.ExitCode != 3 {
				t.Fatalf("Handle: %v, want a RecordError with exit status 3", err)
			}
			if keys := s.outputKeys(t); len(keys) != 0 {
				t.Errorf("objects under output/ after a failed run: %q", keys)
			}
		})
	}
}

// failingPut fails the PutObject of keys ending in suffix.
type failingPut struct {
	S3API
	suffix string
}

func (f failingPut) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if strings.HasSuffix(aws.ToString(in.Key), f.suffix) {
		return nil, errors.New("injected failure")
	}
	return f.S3API.PutObject(ctx, in, opts...)
}

func TestHandleOutputDirUploadFails(t *testing.T) {
	for _, suffix := range []string{"_manifest.json", "/c.txt"} {
		t.Run(suffix, func(t *testing.T) {
			m := writerManifest("0", "", "{output}=o", "/out/a.txt=a", "/out/b.txt=b", "/out/c.txt=c", "/out/d.txt=d")
			m.Output.Dir = "/out"
			s := mustHandlerWith(t, m, nil, WithS3Client(failingPut{motoClient(t), suffix}))
			s.put(t, "input/day1.csv", []byte("a,b\n"))
			_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "input/day1.csv"))
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("Handle: %v, want the injected failure", err)
			}
			if keys := s.outputKeys(t); len(keys) != 0 {
				t.Errorf("objects under output/ after a failed upload: %q", keys)
			}
		})
	}
}

func TestPointArg(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/out", "/tmp/o"},
		{"/out/a.csv", "/tmp/o/a.csv"},
		{"--dir=/out/x", "--dir=/tmp/o/x"},
		{"/output/a", "/output/a"},
		{"x/out", "x/out"},
		{"-o/out", "-o/out"},
	} {
		if got := pointArg(tt.in, "/out", "/tmp/o"); got != tt.want {
			t.Errorf("pointArg(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOutputFileName(t *testing.T) {
	for suffix, want := range map[string]string{".csv": "output.csv", ".csv.out": "output.out", "": "output", ".c$v": "output", "_x.tar.gz": "output.gz"} {
		if got := outputFileName(suffix); got != want {
			t.Errorf("outputFileName(%q) = %q, want %q", suffix, got, want)
		}
	}
}

func TestOutputCheck(t *testing.T) {
	tests := []struct {
		name string
		args []string
		out  Output
		want string // in the error; "" for none
	}{
		{"dir", []string{"p"}, Output{Dir: "/out"}, ""},
		{"relative dir", []string{"p"}, Output{Dir: "out"}, "not an absolute image path"},
		{"root dir", []string{"p"}, Output{Dir: "/"}, "not an absolute image path"},
		{"stdout also with output file", []string{"p", "-o", "{output}"}, Output{StdoutAlso: true}, ""},
		{"stdout also with dir", []string{"p"}, Output{Dir: "/out", StdoutAlso: true}, ""},
		{"stdout also alone", []string{"p"}, Output{StdoutAlso: true}, "stdout_also needs {output}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errors.Join(tt.out.check(tt.args)...)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("check = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestDiagnoseStorage(t *testing.T) {
	var h Handler
	re := &RecordError{Bucket: "b", Key: "k", Op: "running program", ExitCode: 1, Stderr: []string{"write(10): No space left on device"}}
	h.diagnoseStorage(re)
	if !errors.Is(re, ErrStorageFull) || !strings.Contains(re.Error(), "MiB") || !strings.Contains(re.Error(), "program exited with status 1") {
		t.Errorf("error of a run out of space = %v, want the status, the storage size and ErrStorageFull", re)
	}
	re = &RecordError{Bucket: "b", Key: "k", Op: "running program", ExitCode: 1, Stderr: []string{"bad input"}}
	if h.diagnoseStorage(re); errors.Is(re, ErrStorageFull) {
		t.Errorf("error of a run with space left = %v, want no storage diagnosis", re)
	}
}
