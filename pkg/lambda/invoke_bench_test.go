package lambda

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// TestShimOverhead measures the bootstrap's cost: a CSV (200 MB, or
// EXTRACT_BENCH_MB) through a cat-like program by way of the Runtime API,
// the real bootstrap and the in-process S3, against the same program run
// directly on the file. It reports the ratio of the invocation's duration
// to the direct run's (target ≤ 1.15) and the bootstrap's start-to-first
// /next latency (target < 20 ms). It only measures: run it with
// EXTRACT_BENCH=1 (and not -short).
func TestShimOverhead(t *testing.T) {
	if testing.Short() || os.Getenv("EXTRACT_BENCH") == "" {
		t.Skip("benchmark: set EXTRACT_BENCH=1 (and do not pass -short) to run it")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	mb := 200
	if v := os.Getenv("EXTRACT_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		mb = n
	}
	_, prog := mustInvBuilt(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "bench.csv")
	writeCSV(t, csv, int64(mb)<<20)
	zipPath := mustInvPackage(t, invManifest("cat"))

	runs := 5
	if v := os.Getenv("EXTRACT_BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EXTRACT_BENCH_RUNS=%q: want a positive count", v)
		}
		runs = n
	}
	var direct, piped, s3alone, shim, init []time.Duration
	for i := 0; i < runs; i++ {
		// Direct: the program on the file, output to a file.
		in, err := os.Open(csv)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "direct.out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(prog, "cat")
		cmd.Stdin, cmd.Stdout = in, out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		in.Close()
		out.Close()
		p := runPiped(t, prog, csv, filepath.Join(dir, "piped.out"))
		s3rt := s3RoundTrip(t, csv)

		res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithInvokeTimeout(5*time.Minute))
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		if int64(len(res.Output)) != int64(mb)<<20 {
			t.Fatalf("output is %d bytes, want %d", len(res.Output), int64(mb)<<20)
		}
		t.Logf("run %d: direct %v, through pipes %v, S3 alone %v, invocation %v, bootstrap start → first /next %v",
			i+1, d.Round(time.Millisecond), p.Round(time.Millisecond), s3rt.Round(time.Millisecond),
			res.Duration.Round(time.Millisecond), res.InitDuration.Round(10*time.Microsecond))
		direct, piped, s3alone = append(direct, d), append(piped, p), append(s3alone, s3rt)
		shim, init = append(shim, res.Duration), append(init, res.InitDuration)
	}
	for _, st := range []struct {
		name string
		pick func([]time.Duration) time.Duration
	}{{"median", median}, {"best", slices.Min[[]time.Duration]}} {
		d, p, s3rt, inv := st.pick(direct), st.pick(piped), st.pick(s3alone), st.pick(shim)
		t.Logf("%s of %d, %d MB: direct %v, through pipes %v, S3 alone %v, invocation %v: %.2f× direct (target ≤ 1.15×), %.2f× through pipes, %.2f× S3 alone + direct; start → first /next %v (target < 20ms)",
			st.name, runs, mb, d.Round(time.Millisecond), p.Round(time.Millisecond), s3rt.Round(time.Millisecond), inv.Round(time.Millisecond),
			float64(inv)/float64(d), float64(inv)/float64(p), float64(inv)/float64(s3rt+d), st.pick(init).Round(10*time.Microsecond))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// s3RoundTrip times what any S3-triggered function pays before its program
// runs at all: the object read from the same local S3 and written back
// (the GET streamed into a multipart upload, 8 MiB parts, two at a time),
// with the bootstrap's S3 client and no program, no pipes, no bootstrap.
func s3RoundTrip(t *testing.T, csv string) time.Duration {
	t.Helper()
	s, err := NewLocalS3(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(csv)
	if err != nil {
		t.Fatal(err)
	}
	err = s.PutObject("b", "in.csv", f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", s.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	c, err := xruntime.NewS3Client(context.Background())
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	if err != nil {
		t.Fatal(err)
	}
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 8 << 20; u.Concurrency = 2 })
	start := time.Now()
	obj, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("in.csv")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.Upload(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("out.csv"), Body: obj.Body})
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// runPiped runs the program with its stdin and stdout on pipes, fed from
// and drained to files by this process, as the bootstrap runs it (with a
// file on each side, cat-like programs copy in the kernel).
func runPiped(t *testing.T, prog, in, out string) time.Duration {
	t.Helper()
	src, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	cmd := exec.Command(prog, "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.CopyBuffer(struct{ io.Writer }{stdin}, struct{ io.Reader }{src}, make([]byte, 256<<10))
		stdin.Close()
	}()
	if _, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{stdout}, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// writeCSV writes about size bytes of CSV rows (exactly size bytes).
func writeCSV(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var n int64
	for n < size {
		line := fmt.Sprintf("%d,%.6f,%.6f\n", r.IntN(1e9), r.Float64()*1000, r.Float64()*100)
		if n+int64(len(line)) > size {
			line = line[:size-n]
		}
		m, _ := w.WriteString(line)
		n += int64(m)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
