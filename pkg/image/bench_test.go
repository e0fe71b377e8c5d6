package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The benchmark image: benchLayers gzip layers of about 66 MB uncompressed
// each (530 MB in all), each with benchSmall small text files (0.5–7.5
// KiB), 8 larger files of 2–4 MB, a few copies of real ELF files and
// scripts, and whiteouts of some files of the layer below. Generated
// deterministically once into an OCI layout in
// os.TempDir()/extract-bench-v2 and reused.
const (
	benchLayers = 8
	benchSmall  = 10000
	benchDir    = "extract-bench-v2"
)

var benchWords = strings.Fields("the of and to in is was for on are with as by at from lambda image layer file program momentum mass velocity fortran container registry")

// writeBenchText writes n bytes of word-like text from r.
func writeBenchText(w *bufio.Writer, r *rand.Rand, n int) {
	for n > 0 {
		word := benchWords[r.IntN(len(benchWords))]
		if len(word)+1 > n {
			w.WriteString(strings.Repeat("x", n))
			return
		}
		w.WriteString(word)
		if r.IntN(12) == 0 {
			w.WriteByte('\n')
		} else {
			w.WriteByte(' ')
		}
		n -= len(word) + 1
	}
}

// benchImage returns the benchmark image as an OCI layout opened with
// Open("oci:DIR") (layers are compressed blobs, as from a registry) and its
// total uncompressed size.
func benchImage(b *testing.B) (*Image, int64) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), benchDir)
	done := filepath.Join(dir, "complete")
	lay := filepath.Join(dir, "layout")
	if _, err := os.Stat(done); err != nil {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, benchLayers)
		for li := range benchLayers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[li] = writeBenchLayer(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", li)), li)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		var ls []v1.Layer
		for li := range benchLayers {
			l, err := tarball.LayerFromFile(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", li)))
			if err != nil {
				b.Fatal(err)
			}
			ls = append(ls, l)
		}
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			b.Fatal(err)
		}
		p, err := layout.Write(lay, empty.Index)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			b.Fatal(err)
		}
		for li := range benchLayers {
			os.Remove(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", li)))
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated the benchmark image in %s", time.Since(start).Round(time.Second))
	}
	img, err := Open(context.Background(), "oci:"+lay)
	if err != nil {
		b.Fatal(err)
	}
	// Total uncompressed bytes, for b.SetBytes.
	ls, err := img.V1().Layers()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	return img, total
}

func writeBenchLayer(p string, li int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	r := rand.New(rand.NewPCG(uint64(li), 42))
	epoch := time.Unix(0, 0)
	var body strings.Builder
	put := func(name string, data string, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, data)
		return err
	}
	text := func(n int) string {
		body.Reset()
		bw := bufio.NewWriter(&body)
		writeBenchText(bw, r, n)
		bw.Flush()
		return body.String()
	}
	dirs := map[string]bool{}
	for i := range benchSmall {
		d := fmt.Sprintf("usr/share/l%d/d%03d", li, i/100)
		if !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		if err := put(fmt.Sprintf("%s/f%05d.txt", d, i), text(512+r.IntN(7*1024)), 0o644); err != nil {
			return err
		}
	}
	for i := range 8 {
		if err := put(fmt.Sprintf("opt/l%d/big%d.dat", li, i), text(2<<20+r.IntN(2<<20)), 0o644); err != nil {
			return err
		}
	}
	for i, src := range []string{"/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/tar"} {
		b, err := os.ReadFile(src)
		if err != nil {
			continue
		}
		if err := put(fmt.Sprintf("usr/lib/l%d/elf%d", li, i), string(b), 0o755); err != nil {
			return err
		}
	}
	for i := range 20 {
		if err := put(fmt.Sprintf("usr/bin/l%d-script%d", li, i), "#!/bin/sh\necho "+strconv.Itoa(i)+"\n", 0o755); err != nil {
			return err
		}
	}
	if li > 0 {
		for i := 0; i < benchSmall; i += 97 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/l%d/d%03d/.wh.f%05d.txt", li-1, i/100, i), Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// peakMemory samples the Go heap in use while it runs, and reads the
// process's peak RSS (VmHWM, reset first through /proc/self/clear_refs).
type peakMemory struct {
	stop chan struct{}
	done chan struct{}
	heap uint64
}

func startPeakMemory() *peakMemory {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	p := &peakMemory{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			p.heap = max(p.heap, ms.HeapInuse)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// report stops sampling and reports peak heap and RSS in MB.
func (p *peakMemory) report(b *testing.B) {
	close(p.stop)
	<-p.done
	b.ReportMetric(float64(p.heap)/1e6, "peak-heap-MB")
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			b.ReportMetric(kb/1e3, "peak-RSS-MB")
		}
	}
}

// BenchmarkIndex measures BuildIndex on the generated image; compare with
// BenchmarkFlatten, which only flattens (mutate.Extract) without parsing.
func BenchmarkIndex(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 530 MB image")
	}
	img, total := benchImage(b)
	runtime.GC()
	b.SetBytes(total)
	b.ResetTimer()
	mem := startPeakMemory()
	var idx *Index
	for b.Loop() {
		var err error
		idx, err = BuildIndex(context.Background(), img)
		if err != nil {
			b.Fatal(err)
		}
	}
	mem.report(b)
	b.ReportMetric(float64(idx.Len()), "paths")
}

// BenchmarkIndexReport measures BuildIndexReport (inspect's one pass: the
// index and dive's layer report) on the generated image.
func BenchmarkIndexReport(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 530 MB image")
	}
	img, total := benchImage(b)
	runtime.GC()
	b.SetBytes(total)
	b.ResetTimer()
	mem := startPeakMemory()
	var rep *Report
	for b.Loop() {
		var err error
		_, rep, err = BuildIndexReport(context.Background(), img)
		if err != nil {
			b.Fatal(err)
		}
	}
	mem.report(b)
	b.ReportMetric(rep.Efficiency, "efficiency")
}

// BenchmarkFlatten reads the flattened filesystem of the same image with
// go-containerregistry's mutate.Extract, to io.Discard.
func BenchmarkFlatten(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 530 MB image")
	}
	img, total := benchImage(b)
	runtime.GC()
	b.SetBytes(total)
	b.ResetTimer()
	mem := startPeakMemory()
	for b.Loop() {
		rc := mutate.Extract(img.V1())
		_, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	mem.report(b)
}
