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
	"strconv"
	"testing"
	"time"
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

	const runs = 3
	var direct, pipedBest, shim, init time.Duration
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
		piped := runPiped(t, prog, csv, filepath.Join(dir, "piped.out"))

		res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithInvokeTimeout(5*time.Minute))
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		if int64(len(res.Output)) != int64(mb)<<20 {
			t.Fatalf("output is %d bytes, want %d", len(res.Output), int64(mb)<<20)
		}
		t.Logf("run %d: direct %v, direct through pipes %v, invocation %v (%.2f×, %.2f× the piped run), bootstrap start → first /next %v",
			i+1, d.Round(time.Millisecond), piped.Round(time.Millisecond), res.Duration.Round(time.Millisecond),
			float64(res.Duration)/float64(d), float64(res.Duration)/float64(piped), res.InitDuration.Round(10*time.Microsecond))
		if i == 0 || d < direct {
			direct = d
		}
		if i == 0 || piped < pipedBest {
			pipedBest = piped
		}
		if i == 0 || res.Duration < shim {
			shim = res.Duration
		}
		if i == 0 || res.InitDuration < init {
			init = res.InitDuration
		}
	}
	t.Logf("best of %d, %d MB: direct %v, through pipes %v, invocation %v: ratio %.2f× (%.2f× the piped run; target ≤ 1.15×); start → first /next %v (target < 20ms)",
		runs, mb, direct.Round(time.Millisecond), pipedBest.Round(time.Millisecond), shim.Round(time.Millisecond),
		float64(shim)/float64(direct), float64(shim)/float64(pipedBest), init.Round(10*time.Microsecond))
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
