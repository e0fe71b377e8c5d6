package lambda

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func bytesEntry(name string, mode fs.FileMode, body string) zipEntry {
	return zipEntry{Name: name, Mode: mode, Size: int64(len(body)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(body)), nil
	}}
}

// zipFile is what a test reads back from a zip entry.
type zipFile struct {
	Name    string
	Mode    fs.FileMode
	Unix    uint32 // ExternalAttrs >> 16
	Method  uint16
	Content string
}

func mustReadZip(t testing.TB, b []byte) []zipFile {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("zip.NewReader: %v", err)
	}
	var files []zipFile
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("opening %s: %v", f.Name, err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", f.Name, err)
		}
		if !f.Modified.Equal(zipTime) {
			t.Errorf("%s: Modified = %v, want %v", f.Name, f.Modified, zipTime)
		}
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: CreatorVersion = %#x, want Unix (3<<8)", f.Name, f.CreatorVersion)
		}
		files = append(files, zipFile{Name: f.Name, Mode: f.Mode(), Unix: f.ExternalAttrs >> 16, Method: f.Method, Content: string(body)})
	}
	return files
}

func TestWriteZip(t *testing.T) {
	entries := []zipEntry{
		bytesEntry("rootfs/usr/bin/prog", 0o755, "#!/bin/sh\necho hi\n"),
		{Name: "rootfs/bin", Mode: fs.ModeSymlink | 0o777, Target: "usr/bin"},
		bytesEntry("extract.json", 0o644, "{}\n"),
		bytesEntry("bootstrap", 0o755, strings.Repeat("\x7fELF", 1000)),
		{Name: "ld.so", Mode: fs.ModeSymlink | 0o777, Target: "rootfs/lib64/ld-linux-x86-64.so.2"},
		bytesEntry("rootfs/usr/lib/libx.so.1", 0o644, "lib"),
		{Name: "rootfs/usr/lib/libx.so", Mode: fs.ModeSymlink | 0o777, Target: "libx.so.1"},
	}
	var first bytes.Buffer
	st, err := writeZip(context.Background(), &first, entries)
	if err != nil {
		t.Fatalf("writeZip: %v", err)
	}
	// Determinism: the same entries in another order give the same bytes.
	rev := append([]zipEntry(nil), entries...)
	sort.Slice(rev, func(i, j int) bool { return rev[i].Name > rev[j].Name })
	var second bytes.Buffer
	if _, err := writeZip(context.Background(), &second, rev); err != nil {
		t.Fatalf("writeZip: %v", err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("writeZip of the same entries in another order gave different bytes")
	}

	const (
		reg = 0o100000
		dir = 0o040000
		lnk = 0o120000
	)
	want := []zipFile{
		{Name: "bootstrap", Mode: 0o755, Unix: reg | 0o755, Method: zip.Deflate, Content: strings.Repeat("\x7fELF", 1000)},
		{Name: "extract.json", Mode: 0o644, Unix: reg | 0o644, Method: zip.Deflate, Content: "{}\n"},
		{Name: "ld.so", Mode: fs.ModeSymlink | 0o777, Unix: lnk | 0o777, Method: zip.Store, Content: "rootfs/lib64/ld-linux-x86-64.so.2"},
		{Name: "rootfs/", Mode: fs.ModeDir | 0o755, Unix: dir | 0o755, Method: zip.Store},
		{Name: "rootfs/bin", Mode: fs.ModeSymlink | 0o777, Unix: lnk | 0o777, Method: zip.Store, Content: "usr/bin"},
		{Name: "rootfs/usr/", Mode: fs.ModeDir | 0o755, Unix: dir | 0o755, Method: zip.Store},
		{Name: "rootfs/usr/bin/", Mode: fs.ModeDir | 0o755, Unix: dir | 0o755, Method: zip.Store},
		{Name: "rootfs/usr/bin/prog", Mode: 0o755, Unix: reg | 0o755, Method: zip.Deflate, Content: "#!/bin/sh\necho hi\n"},
		{Name: "rootfs/usr/lib/", Mode: fs.ModeDir | 0o755, Unix: dir | 0o755, Method: zip.Store},
		{Name: "rootfs/usr/lib/libx.so", Mode: fs.ModeSymlink | 0o777, Unix: lnk | 0o777, Method: zip.Store, Content: "libx.so.1"},
		{Name: "rootfs/usr/lib/libx.so.1", Mode: 0o644, Unix: reg | 0o644, Method: zip.Deflate, Content: "lib"},
	}
	if diff := cmp.Diff(want, mustReadZip(t, first.Bytes())); diff != "" {
		t.Errorf("zip contents (-want +got):\n%s", diff)
	}
	var unzipped int64
	for _, f := range want {
		unzipped += int64(len(f.Content))
	}
	if diff := cmp.Diff(zipStats{Entries: len(want), Files: 7, Unzipped: unzipped}, st); diff != "" {
		t.Errorf("writeZip stats (-want +got):\n%s", diff)
	}
	if zipTime.Location() != time.UTC {
		t.Errorf("zipTime is not UTC")
	}
}

func TestWriteZipErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []zipEntry
	}{
		{"duplicate", []zipEntry{bytesEntry("a", 0o644, "1"), bytesEntry("a", 0o644, "2")}},
		{"below a symlink", []zipEntry{{Name: "rootfs/lib64", Mode: fs.ModeSymlink | 0o777, Target: "usr/lib64"}, bytesEntry("rootfs/lib64/ld.so", 0o755, "x")}},
		{"below a file", []zipEntry{bytesEntry("a", 0o644, "1"), bytesEntry("a/b", 0o644, "2")}},
		{"absolute", []zipEntry{bytesEntry("/etc/passwd", 0o644, "x")}},
		{"escapes", []zipEntry{bytesEntry("../x", 0o644, "x")}},
		{"unclean", []zipEntry{bytesEntry("a//b", 0o644, "x")}},
		{"short read", []zipEntry{{Name: "a", Mode: 0o644, Size: 5, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}}},
		{"device", []zipEntry{{Name: "null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := writeZip(context.Background(), io.Discard, tt.entries); err == nil {
				t.Errorf("writeZip(%s) succeeded, want an error", tt.name)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := writeZip(ctx, io.Discard, []zipEntry{bytesEntry("a", 0o644, "1")}); err == nil {
		t.Error("writeZip with a canceled context succeeded, want an error")
	}
}
