package lambda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/internal/testkit"
)

// dirZipEntries returns the files, symlinks and directories below dir as zip
// entries under prefix, the regular files opened from disk.
func dirZipEntries(t testing.TB, dir, prefix string) []zipEntry {
	t.Helper()
	var entries []zipEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := zipEntry{Name: prefix + filepath.ToSlash(rel), Mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			e.Size = info.Size()
			e.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		case !info.IsDir():
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return entries
}

// fileZipEntry is the host file at p as the zip entry name.
func fileZipEntry(t testing.TB, name, p string) zipEntry {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return zipEntry{Name: name, Mode: info.Mode().Perm(), Size: info.Size(), Open: func() (io.ReadCloser, error) { return os.Open(p) }}
}

// benchZipEntries is a package's worth of entries: the fortran-merged
// fixture's files (17 MB, libc and libgfortran the largest) and a large
// bootstrap (the amd64 one `make build` embeds, else the test binary).
func benchZipEntries(b testing.TB) []zipEntry {
	fixtures := testkit.Fixtures(b)
	bootstrap := filepath.Join("bootstraps", "bootstrap-amd64")
	if _, err := os.Stat(bootstrap); err != nil {
		if bootstrap, err = os.Executable(); err != nil {
			b.Fatalf("os.Executable: %v", err)
		}
	}
	entries := dirZipEntries(b, filepath.Join(fixtures, "fortran-merged"), "rootfs/")
	return append(entries, fileZipEntry(b, "bootstrap", bootstrap))
}

// BenchmarkWriteZip times the zip of benchZipEntries, sequential (as with
// GOMAXPROCS 1) and parallel (as writeZip does).
func BenchmarkWriteZip(b *testing.B) {
	entries := benchZipEntries(b)
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	for _, bm := range []struct {
		name    string
		workers int
	}{{"sequential", 1}, {"parallel", runtime.GOMAXPROCS(0)}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			lim := deflateLimits{workers: bm.workers, inPlace: zipInPlaceSize, ahead: zipAheadBudget}
			for b.Loop() {
				if _, err := writeZipLimits(context.Background(), io.Discard, entries, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// testInPlace and testAhead are small deflateLimits, so that small test
// entries take every path.
const (
	testInPlace = 64 << 10
	testAhead   = 256 << 10
)

// zipWith writes the zip of the entries with writeEntries (workers 1) or
// writeEntriesParallel, with small limits.
func zipWith(t testing.TB, ctx context.Context, entries []zipEntry, workers int) ([]byte, zipStats, error) {
	t.Helper()
	var buf bytes.Buffer
	st, err := writeZipLimits(ctx, &buf, entries, deflateLimits{workers: workers, inPlace: testInPlace, ahead: testAhead})
	return buf.Bytes(), st, err
}

// mixedZipEntries are entries of every kind: directories, symlinks, empty,
// small, incompressible and repetitive files, and files above
// testInPlace between them, so that large files are deflated in place while
// workers run ahead, and the ahead budget is reached.
func mixedZipEntries() []zipEntry {
	rnd := rand.NewChaCha8([32]byte{1, 2})
	random := func(n int) string {
		b := make([]byte, n)
		rnd.Read(b)
		return string(b)
	}
	entries := []zipEntry{
		{Name: "rootfs/etc", Mode: fs.ModeDir | 0o755},
		{Name: "rootfs/lib64", Mode: fs.ModeSymlink | 0o777, Target: "usr/lib64"},
		{Name: "rootfs/usr/share/empty", Mode: fs.ModeDir | 0o700},
		bytesEntry("rootfs/etc/empty", 0o644, ""),
		bytesEntry("rootfs/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"),
		bytesEntry("rootfs/ünïcode", 0o644, "a name that needs the UTF-8 flag"),
		bytesEntry("big/a-random", 0o755, random(testInPlace+1)),
		bytesEntry("big/b-text", 0o644, strings.Repeat("all work and no play ", (testInPlace+4096)/21)),
		bytesEntry("mid/at-limit", 0o644, random(testInPlace)),
	}
	for i := range 8 {
		body := random(testInPlace/2 + i*4099)
		if i%2 == 0 {
			body = strings.Repeat(body[:1000], len(body)/1000)
		}
		entries = append(entries, bytesEntry(fmt.Sprintf("mid/f%02d", i), 0o644, body))
	}
	return entries
}

func TestWriteZipParallelSameBytes(t *testing.T) {
	entries := mixedZipEntries()
	if fixtures := os.Getenv("EXTRACT_FIXTURES"); fixtures != "" {
		root := filepath.Join(fixtures, "fortran-merged")
		entries = append(entries,
			fileZipEntry(t, "bin/momentum", filepath.Join(root, "usr/local/bin/momentum")),
			fileZipEntry(t, "lib/ld.so", filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")))
	}
	want, wantSt, err := zipWith(t, context.Background(), entries, 1)
	if err != nil {
		t.Fatalf("sequential writeZip: %v", err)
	}
	for _, workers := range []int{2, 3} {
		got, st, err := zipWith(t, context.Background(), entries, workers)
		if err != nil {
			t.Fatalf("writeZip with %d workers: %v", workers, err)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Errorf("writeZip with %d workers: %d bytes, not the sequential zip's %d bytes (from offset %d)", workers, len(got), len(want), at)
		}
		if st != wantSt {
			t.Errorf("writeZip with %d workers: stats %+v, want %+v", workers, st, wantSt)
		}
	}
	// Files deflated ahead (Package's bootstrap: deflateAhead while the
	// layers are indexed) are written as they came out, to the same bytes.
	ahead := append([]zipEntry(nil), entries...)
	early := 0
	for i, e := range ahead {
		if e.Mode.IsRegular() && i%2 == 0 {
			ahead[i].Deflated = deflateAhead(context.Background(), e)
			early++
		}
	}
	if early == 0 {
		t.Fatal("no regular file to deflate ahead")
	}
	got, st, err := zipWith(t, context.Background(), ahead, 2)
	if err != nil {
		t.Fatalf("writeZip with %d files deflated ahead: %v", early, err)
	}
	if !bytes.Equal(got, want) || st != wantSt {
		t.Errorf("writeZip with %d files deflated ahead: %d bytes (stats %+v), not the sequential zip's %d bytes (%+v)", early, len(got), st, len(want), wantSt)
	}
	// The zip reads back: the UTF-8 name, the data descriptors.
	files := mustReadZip(t, want)
	if len(files) == 0 || files[len(files)-1].Name != "rootfs/ünïcode" {
		t.Errorf("last zip entry is not rootfs/ünïcode: %v", len(files))
	}
}

func TestWriteZipParallelErrors(t *testing.T) {
	failing := func(name string) zipEntry {
		return zipEntry{Name: name, Mode: 0o644, Size: 3, Open: func() (io.ReadCloser, error) { return nil, errors.New("gone") }}
	}
	long := bytesEntry("b/long", 0o644, "abcdef")
	long.Size = 4
	tests := []struct {
		name    string
		entries []zipEntry
		want    string
	}{
		{"open", []zipEntry{bytesEntry("a", 0o644, "1"), failing("b/x"), failing("c")}, `opening "b/x": gone`},
		{"short", []zipEntry{bytesEntry("a", 0o644, "1"), {Name: "b/short", Mode: 0o644, Size: 5, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}, failing("c")}, `adding "b/short" to the zip: read 3 bytes, want 5`},
		{"long", []zipEntry{bytesEntry("a", 0o644, "1"), long, failing("c")}, `adding "b/long" to the zip: read 6 bytes, want 4`},
		{"device", []zipEntry{bytesEntry("a", 0o644, "1"), {Name: "b/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}, failing("c")}, `zip entry "b/null": unsupported file type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, workers := range []int{1, 2} {
				_, _, err := zipWith(t, context.Background(), tt.entries, workers)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("writeZip with %d workers: error %v, want %q", workers, err, tt.want)
				}
			}
		})
	}
}

func TestWriteZipParallelCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	opened := 0
	entries := mixedZipEntries()
	entries = append(entries, zipEntry{Name: "a/cancel", Mode: 0o644, Size: 1, Open: func() (io.ReadCloser, error) {
		opened++
		cancel()
		return io.NopCloser(strings.NewReader("x")), nil
	}})
	_, _, err := zipWith(t, ctx, entries, 2)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("writeZip canceled while writing: error %v, want context.Canceled", err)
	}
	if opened != 1 {
		t.Errorf("the canceling entry was opened %d times, want 1", opened)
	}
}

// TestWriteZipParallelAhead checks that workers deflate later files while
// the writer deflates a large one: the large file's Open waits until the
// last small file has been opened.
func TestWriteZipParallelAhead(t *testing.T) {
	opened := make(chan struct{})
	big := strings.Repeat("x", testInPlace+1)
	entries := []zipEntry{
		{Name: "a-big", Mode: 0o644, Size: int64(len(big)), Open: func() (io.ReadCloser, error) {
			select {
			case <-opened:
				return io.NopCloser(strings.NewReader(big)), nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("z-small was not opened while a-big waited")
			}
		}},
		bytesEntry("m-small", 0o644, "m"),
		{Name: "z-small", Mode: 0o644, Size: 1, Open: func() (io.ReadCloser, error) {
			close(opened)
			return io.NopCloser(strings.NewReader("z")), nil
		}},
	}
	if _, _, err := zipWith(t, context.Background(), entries, 2); err != nil {
		t.Errorf("writeZip: %v", err)
	}
}
