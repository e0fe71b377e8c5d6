package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
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
// the real bootstrap and the in-process S3, side by side with the same
// program run
//
//   - directly on the file (the baseline; target ≤ 1.15×): a
//     cat-like program with a file on each side copies in the kernel, so
//     no S3-fed run can come near it — the S3 round trip alone, measured
//     too, is several times slower;
//   - on pipes, fed and drained by this process;
//   - fed from and to the same S3 without the shim: GET → stdin, stdout →
//     multipart upload, in this process, no bootstrap, no Runtime API —
//     the ratio to this is what the shim itself costs.
//
// It reports medians and bests of EXTRACT_BENCH_RUNS runs (default 5) and
// the bootstrap's start-to-first /next latency (target < 20 ms). It only
// measures: run it with EXTRACT_BENCH=1 (and not -short).
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
	_, prog := mustBuilt(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "bench.csv")
	writeCSV(t, csv, int64(mb)<<20)
	zipPath := mustPackage(t, testManifest("cat"))
	want := fileSHA256(t, csv)

	runs := 5
	if v := os.Getenv("EXTRACT_BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EXTRACT_BENCH_RUNS=%q: want a positive count", v)
		}
		runs = n
	}
	var direct, piped, s3alone, s3prog, shim, init []time.Duration
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
		s3rt := s3Plumbed(t, csv, "")
		plumbed := s3Plumbed(t, csv, prog)

		// The output is hashed as it is read, not held: 200 MB allocated
		// here would keep this process's GC busy during the next run.
		sum := sha256.New()
		res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithTimeout(5*time.Minute), WithOutputWriter(sum))
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		if got := sum.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("output SHA-256 %x differs from the input's %x", got, want)
		}
		t.Logf("run %d: direct %v, through pipes %v, S3 alone %v, S3 → program → S3 without the shim %v, invocation %v, bootstrap start → first /next %v",
			i+1, d.Round(time.Millisecond), p.Round(time.Millisecond), s3rt.Round(time.Millisecond), plumbed.Round(time.Millisecond),
			res.Duration.Round(time.Millisecond), res.InitDuration.Round(10*time.Microsecond))
		direct, piped, s3alone, s3prog = append(direct, d), append(piped, p), append(s3alone, s3rt), append(s3prog, plumbed)
		shim, init = append(shim, res.Duration), append(init, res.InitDuration)
	}
	for _, st := range []struct {
		name string
		pick func([]time.Duration) time.Duration
	}{{"median", median}, {"best", slices.Min[[]time.Duration]}} {
		d, p, s3rt, plumbed, inv := st.pick(direct), st.pick(piped), st.pick(s3alone), st.pick(s3prog), st.pick(shim)
		t.Logf("%s of %d, %d MB: direct %v, through pipes %v, S3 alone %v, S3 → program → S3 without the shim %v, invocation %v: "+
			"%.2f× direct (target ≤ 1.15×; S3 alone is already %.2f×), %.2f× through pipes, %.2f× without the shim; start → first /next %v (target < 20ms)",
			st.name, runs, mb, d.Round(time.Millisecond), p.Round(time.Millisecond), s3rt.Round(time.Millisecond), plumbed.Round(time.Millisecond), inv.Round(time.Millisecond),
			float64(inv)/float64(d), float64(s3rt)/float64(d), float64(inv)/float64(p), float64(inv)/float64(plumbed), st.pick(init).Round(10*time.Microsecond))
	}
}

func fileSHA256(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// s3Plumbed times the S3 part of an invocation without the shim: the
// object read from a local S3 and written back (the GET streamed into a
// multipart upload, 8 MiB parts, two at a time) with the bootstrap's S3
// client, in this process. With prog empty, nothing else: what any
// S3-triggered function pays before a program runs at all. With prog, the
// GET feeds the program's stdin and its stdout feeds the upload: the least
// plumbing that runs a program on an S3 object, no bootstrap, no Runtime
// API.
func s3Plumbed(t *testing.T, csv, prog string) time.Duration {
	t.Helper()
	s, err := NewS3(t.TempDir(), nil)
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
	defer obj.Body.Close()
	body := io.Reader(obj.Body)
	var cmd *exec.Cmd
	if prog != "" {
		cmd, body = startCat(t, prog, obj.Body)
	}
	if _, err := up.Upload(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("out.csv"), Body: body}); err != nil {
		t.Fatal(err)
	}
	if cmd != nil {
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
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
	start := time.Now()
	cmd, stdout := startCat(t, prog, src)
	if _, err := io.CopyBuffer(struct{ io.Writer }{dst}, stdout, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// startCat starts `prog cat` with src copied to its stdin by a goroutine
// and returns its stdout, a plain reader (not an *os.File, so copies from
// it go through user space, as the bootstrap's do).
func startCat(t *testing.T, prog string, src io.Reader) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(prog, "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.CopyBuffer(struct{ io.Writer }{stdin}, struct{ io.Reader }{src}, make([]byte, 256<<10))
		stdin.Close()
	}()
	return cmd, struct{ io.Reader }{stdout}
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
