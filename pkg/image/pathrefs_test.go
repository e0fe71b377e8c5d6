package image_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/pkg/image"
)

// refTree is a merged-/usr root with a loader, libc, dash and the program
// /usr/bin/app, whose loaded bytes end with the NUL-separated strings
// names (as in .rodata), followed by the strings debug outside any PT_LOAD
// segment (as in .debug_str). extra adds or replaces paths.
func refTree(names, debug []string, extra map[string]node) map[string]node {
	app := loadedStrings(mkELF(refApp), names...)
	for _, n := range debug {
		app = append(append(app, n...), 0)
	}
	tree := map[string]node{
		"usr/bin/app":  {data: app, mode: 0o755},
		"usr/bin/dash": prog(elfSpec{interp: "/lib64/ld-linux-x86-64.so.2", needed: []string{"libc.so.6"}}),
		"usr/bin/sh":   link("dash"),
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": lib(elfSpec{soname: "ld-linux-x86-64.so.2"}),
		// libc names paths of its own (and one a program would count):
		// none of them counts.
		"usr/lib/x86_64-linux-gnu/libc.so.6": {data: append(mkELF(elfSpec{soname: "libc.so.6", needed: []string{"ld-linux-x86-64.so.2"}}),
			"\x00/bin/sh\x00/usr/share/app\x00/etc/app/app.conf\x00"...), mode: 0o644},
		"usr/lib64/ld-linux-x86-64.so.2": link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		"opt/app/lib/README":             text("libraries\n"),
		"lib":                            link("usr/lib"),
		"lib64":                          link("usr/lib64"),
		"bin":                            link("usr/bin"),
		"usr/share/app/x.dat":            text("data\n"),
		"usr/share/zoneinfo/UTC":         text("TZif\n"),
		"usr/lib/locale/C.utf8/LC_CTYPE": text("ctype\n"),
		"usr/lib/app-core/helper":        text("helper\n"),
		"etc/nsswitch.conf":              text("passwd: files\n"),
		"etc/ld.so.cache":                text("cache\n"),
		"etc/app/app.conf":               text("db=/var/lib/app/db\n# old=/var/lib/app/old\n"),
		"var/lib/app/db":                 text("rows\n"),
		"var/lib/app/old":                text("rows\n"),
	}
	for k, v := range extra {
		tree[k] = v
	}
	return tree
}

// refApp is the ELF spec of refTree's /usr/bin/app.
var refApp = elfSpec{exec: true, interp: "/lib64/ld-linux-x86-64.so.2", needed: []string{"libc.so.6"}, rpath: "/opt/app/lib"}

// loadedStrings appends the strings, each after a NUL, to the 64-bit
// little-endian ELF file b and grows its PT_LOAD segments to the end of
// the file, so that the strings are in the program's memory.
func loadedStrings(b []byte, strs ...string) []byte {
	for _, s := range strs {
		b = append(append(b, 0), s...)
	}
	b = append(b, 0)
	phoff := binary.LittleEndian.Uint64(b[32:])
	size, num := int(binary.LittleEndian.Uint16(b[54:])), int(binary.LittleEndian.Uint16(b[56:]))
	for i := 0; i < num; i++ {
		ph := b[int(phoff)+i*size:]
		if binary.LittleEndian.Uint32(ph) == 1 { // PT_LOAD
			n := uint64(len(b)) - binary.LittleEndian.Uint64(ph[8:])
			binary.LittleEndian.PutUint64(ph[32:], n)
			binary.LittleEndian.PutUint64(ph[40:], n)
		}
	}
	return b
}

func TestPathRefs(t *testing.T) {
	const app = "/usr/bin/app"
	tests := []struct {
		name    string
		names   []string        // strings in /usr/bin/app's loaded bytes
		debug   []string        // strings in its bytes not loaded
		extra   map[string]node // more image paths
		entry   []string        // ENTRYPOINT (default /usr/bin/app)
		include []string
		want    []image.PathRef
	}{
		{
			name:  "binary names a data directory",
			names: []string{"/usr/share/app", "usage: app [-v]"},
			want:  []image.PathRef{{File: app, Path: "/usr/share/app", Kind: "dir"}},
		},
		{
			name:  "binary names a file through a directory symlink, with a full stop",
			names: []string{"see /lib/app-core/helper."},
			want:  []image.PathRef{{File: app, Path: "/lib/app-core/helper", Kind: "file"}},
		},
		{
			name:  "binary holds a default XML config",
			names: []string{`<include ignore_missing="yes">/usr/share/app</include>`},
			want:  []image.PathRef{{File: app, Path: "/usr/share/app", Kind: "dir"}},
		},
		{
			name:  "paths outside the loaded segments (debug information) do not count",
			names: []string{"usage: app"},
			debug: []string{"/usr/share/app", "/usr/lib/app-core/helper"},
		},
		{
			name:  "binary names paths the image lacks",
			names: []string{"/usr/share/nothing/here", "/etc/app/missing.conf", "/srv/data"},
		},
		{
			name:  "C library paths, its own files, /bin/sh",
			names: []string{"/usr/share/zoneinfo/UTC", "/usr/lib/locale/C.utf8", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/bin/sh", "/tmp", "/dev/null", "/proc/self/exe"},
		},
		{
			name:  "hierarchy directories, the loader and the RPATH",
			names: []string{"/usr/lib", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/etc", "/usr/share", "/opt", "/opt/app/lib", "/lib64/ld-linux-x86-64.so.2"},
		},
		{
			name:  "a file the zip points a variable at (SSL_CERT_FILE)",
			names: []string{"/etc/ssl/certs/ca-certificates.crt"},
			extra: map[string]node{"etc/ssl/certs/ca-certificates.crt": text("-----BEGIN CERTIFICATE-----\n")},
		},
		{
			name:  "a library home below a hierarchy directory counts",
			names: []string{"/usr/lib/app-core"},
			want:  []image.PathRef{{File: app, Path: "/usr/lib/app-core", Kind: "dir"}},
		},
		{
			name:  "URLs, relative paths and expression tails",
			names: []string{"http://example.com/usr/share/app", "share/app", "../usr/share/app", "${prefix}/usr/share/app", "%s/usr/share/app", "~/usr/share/app"},
		},
		{
			name:    "shell script: relocated commands and sources do not count, other paths do",
			entry:   []string{"/usr/local/bin/run.sh"},
			include: []string{"/usr/local/lib/app/data.txt"},
			extra: map[string]node{
				"usr/local/bin/run.sh": script("#!/usr/bin/dash\n" +
					"# reads /etc/app/app.conf\n" +
					". /usr/local/lib/app/common.sh\n" +
					"cat /usr/local/lib/app/data.txt >/dev/null\n" +
					"exec /usr/bin/app --config /etc/app/app.conf\n"),
				"usr/local/lib/app/common.sh": text("APP=1\n"),
				"usr/local/lib/app/data.txt":  text("x\n"),
			},
			want: []image.PathRef{
				{File: "/usr/local/bin/run.sh", Path: "/etc/app/app.conf", Kind: "file"},
				{File: "/usr/local/bin/run.sh", Path: "/usr/local/lib/app/data.txt", Kind: "file", Bundled: true},
			},
		},
		{
			name:  "a script's payload after a NUL is not text",
			entry: []string{"/usr/local/bin/installer.sh"},
			extra: map[string]node{"usr/local/bin/installer.sh": script("#!/usr/bin/dash\ntail -c +60 \"$0\" | tar x; exit\n\x00\x01/usr/share/app\n")},
		},
		{
			name:    "text config file: its paths count, not those in comments",
			include: []string{"/etc/app/app.conf", "/var/lib/app/db"},
			want:    []image.PathRef{{File: "/etc/app/app.conf", Path: "/var/lib/app/db", Kind: "file", Bundled: true}},
		},
		{
			name:    "a small binary file that is not ELF is not read as text",
			include: []string{"/usr/share/app/table.bin"},
			extra:   map[string]node{"usr/share/app/table.bin": text("\x00\x01/usr/share/app/x.dat\x00")},
		},
		{
			name:  "a path after more candidates than are kept at once is found",
			names: append(manyPaths(5000), "/usr/share/app"),
			want:  []image.PathRef{{File: app, Path: "/usr/share/app", Kind: "dir"}},
		},
		{
			name:  "a path split by the scan's 64 KiB chunks is found",
			names: []string{strings.Repeat("x", 64<<10-len(mkELF(refApp))-1-5) + "\x00/usr/share/app/x.dat"},
			want:  []image.PathRef{{File: app, Path: "/usr/share/app/x.dat", Kind: "file"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := tt.entry
			if entry == nil {
				entry = []string{app}
			}
			im, idx := treeImage(t, refTree(tt.names, tt.debug, tt.extra), v1.Config{Entrypoint: entry, Env: []string{"PATH=/usr/bin:/bin"}}, "linux/amd64")
			var opts []image.ClosureOption
			if tt.include != nil {
				opts = append(opts, image.WithInclude(tt.include...))
			}
			c := mustClosure(t, im, idx, append(opts, image.WithImage(im))...)
			refs, err := image.PathRefs(context.Background(), im, idx, c)
			if err != nil {
				t.Fatalf("PathRefs: %v", err)
			}
			if diff := cmp.Diff(tt.want, refs, cmpEmpty); diff != "" {
				t.Errorf("PathRefs() mismatch (-want +got):\n%s", diff)
			}
			if got, want := image.NeedsOriginalPaths(refs), len(tt.want) > 0; got != want {
				t.Errorf("NeedsOriginalPaths(%v) = %v, want %v", refs, got, want)
			}
		})
	}
}

// manyPaths returns n distinct paths the image lacks.
func manyPaths(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/nope/%d", i)
	}
	return out
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []image.PathRef) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

// TestPathScannerConcurrent scans the closure's files from several
// goroutines, each file twice: with Scan, and through Writer one byte at
// a time as a packager teeing its reads would; it finds what PathRefs
// finds.
func TestPathScannerConcurrent(t *testing.T) {
	im, idx := treeImage(t, refTree([]string{"/usr/share/app", "/usr/lib/app-core/helper"}, nil, nil),
		v1.Config{Entrypoint: []string{"/usr/bin/app"}}, "linux/amd64")
	c := mustClosure(t, im, idx, image.WithImage(im), image.WithInclude("/etc/app/app.conf"))
	want, err := image.PathRefs(context.Background(), im, idx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("PathRefs() = %v, want 3 references", want)
	}
	var files []*image.Entry
	for i := range c.Files {
		files = append(files, &c.Files[i].Entry)
	}
	bodies := map[string][]byte{}
	err = image.Extract(context.Background(), im, idx, files, func(e *image.Entry, r io.Reader) error {
		if r != nil {
			b, err := io.ReadAll(r)
			bodies[e.Path] = b
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One scanner for each way, so that one cannot hide the other's
	// misses.
	scanners := []*image.PathScanner{image.NewPathScanner(idx, c), image.NewPathScanner(idx, c)}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(files))
	for round := 0; round < 2; round++ {
		for _, e := range files {
			wg.Add(1)
			go func(e *image.Entry, round int) {
				defer wg.Done()
				s := scanners[round]
				if round == 0 {
					errs <- s.Scan(e, bytes.NewReader(bodies[e.Path]))
					return
				}
				// A packager copying the file tees it to Writer.
				w := s.Writer(e)
				if _, err := io.Copy(io.Discard, io.TeeReader(iotest.OneByteReader(bytes.NewReader(bodies[e.Path])), w)); err != nil {
					errs <- err
					return
				}
				errs <- w.Close()
			}(e, round)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
	}
	for i, s := range scanners {
		if diff := cmp.Diff(want, s.Refs()); diff != "" {
			t.Errorf("concurrent scan %d refs mismatch (-PathRefs +Scan or Writer):\n%s", i, diff)
		}
	}
}

// TestPathRefsFixtures checks the rule on the Debian fixtures: the
// Fortran showcase has no reference (a zip, as its story is), Perl's @INC
// is handled by PERL5LIB, Python names its compiled-in and configured
// paths.
func TestPathRefsFixtures(t *testing.T) {
	refsOf := func(t *testing.T, fixture string) []image.PathRef {
		im, idx := fixtureImage(t, fixture)
		c := mustClosure(t, im, idx, image.WithImage(im))
		refs, err := image.PathRefs(context.Background(), im, idx, c)
		if err != nil {
			t.Fatalf("PathRefs(%s): %v", fixture, err)
		}
		return refs
	}
	for _, fixture := range []string{"fortran-merged", "fortran-split", "perl", "sh-tools"} {
		t.Run(fixture, func(t *testing.T) {
			if refs := refsOf(t, fixture); len(refs) != 0 {
				t.Errorf("PathRefs(%s) = %v, want none", fixture, refs)
			}
		})
	}
	t.Run("python", func(t *testing.T) {
		refs := refsOf(t, "python")
		got := map[image.PathRef]bool{}
		for _, r := range refs {
			got[r] = true
			if strings.HasPrefix(r.File, "/usr/lib/x86_64-linux-gnu/libc.") || r.Path == "/usr/bin/env" {
				t.Errorf("unexpected reference %+v", r)
			}
		}
		for _, w := range []image.PathRef{
			// OpenSSL's compiled-in module directories.
			{File: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Path: "/usr/lib/x86_64-linux-gnu/ossl-modules", Kind: "dir"},
			{File: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Path: "/usr/lib/x86_64-linux-gnu/engines-3", Kind: "dir"},
			// mimetypes reads /etc/mime.types when it exists.
			{File: "/usr/lib/python3.11/mimetypes.py", Path: "/etc/mime.types", Kind: "file"},
			// Debian's site adds its dist-packages directory.
			{File: "/usr/lib/python3.11/site.py", Path: "/usr/lib/python3/dist-packages", Kind: "dir", Bundled: true},
		} {
			if !got[w] {
				t.Errorf("PathRefs(python) lacks %+v; got %v", w, refs)
			}
		}
		if _, why := image.AutoFormat(nil, refs); !strings.Contains(why, "image paths") {
			t.Errorf("AutoFormat reason = %q", why)
		}
	})
}
