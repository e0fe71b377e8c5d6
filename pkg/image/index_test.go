package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildIndexFlattening(t *testing.T) {
	tests := []struct {
		name     string
		layers   [][]tf
		want     []string
		contents map[string]string
	}{{
		name: "whiteout file",
		layers: [][]tf{
			{dir("a"), file("a/f", "F"), file("a/g", "G")},
			{dir("a"), file("a/.wh.f", "")},
		},
		want:     []string{"/a/", "/a/g [0:a/g]"},
		contents: map[string]string{"/a/g": "G"},
	}, {
		name: "whiteout dir",
		layers: [][]tf{
			{dir("d"), file("d/x", "X"), dir("d/sub"), file("d/sub/y", "Y"), file("keep", "K")},
			{file(".wh.d", "")},
		},
		want: []string{"/keep [0:keep]"},
	}, {
		name: "whiteout then same name in a later layer",
		layers: [][]tf{
			{dir("d"), file("d/x", "old")},
			{file(".wh.d", "")},
			{dir("d"), file("d/y", "new")},
		},
		want:     []string{"/d/", "/d/y [2:d/y]"},
		contents: map[string]string{"/d/y": "new"},
	}, {
		name: "opaque marker before entries",
		layers: [][]tf{
			{dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o2"), file("other", "x")},
			{dir("d"), file("d/.wh..wh..opq", ""), file("d/new", "n")},
		},
		want: []string{"/d/", "/d/new [1:d/new]", "/other [0:other]"},
	}, {
		name: "opaque marker after entries of the same layer",
		layers: [][]tf{
			{dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o2")},
			{dir("d"), file("d/new", "n"), dir("d/sub"), file("d/sub/n2", "n2"), file("d/.wh..wh..opq", "")},
		},
		want: []string{"/d/", "/d/new [1:d/new]", "/d/sub/", "/d/sub/n2 [1:d/sub/n2]"},
	}, {
		name: "opaque dir keeps lower content of its siblings",
		layers: [][]tf{
			{dir("a"), dir("a/b"), file("a/b/x", "x"), dir("a/c"), file("a/c/y", "y")},
			{file("a/b/.wh..wh..opq", "")},
		},
		want: []string{"/a/", "/a/b/", "/a/c/", "/a/c/y [0:a/c/y]"},
	}, {
		name: "hardlink within a layer",
		layers: [][]tf{
			{file("a", "A"), hardlink("b", "a")},
		},
		want:     []string{"/a [0:a]", "/b [0:a]"},
		contents: map[string]string{"/a": "A", "/b": "A"},
	}, {
		name: "hardlink to a lower layer file",
		layers: [][]tf{
			{dir("usr"), file("usr/a", "A")},
			{hardlink("b", "usr/a")},
		},
		want:     []string{"/b [0:usr/a]", "/usr/", "/usr/a [0:usr/a]"},
		contents: map[string]string{"/b": "A", "/usr/a": "A"},
	}, {
		name: "hardlink whose target is deleted later",
		layers: [][]tf{
			{file("a", "A"), hardlink("b", "a")},
			{file(".wh.a", "")},
		},
		want:     []string{"/b [0:a]"},
		contents: map[string]string{"/b": "A"},
	}, {
		name: "hardlink chain across layers",
		layers: [][]tf{
			{file("a", "A"), hardlink("b", "a")},
			{hardlink("c", "b"), file(".wh.a", "")},
		},
		want:     []string{"/b [0:a]", "/c [0:a]"},
		contents: map[string]string{"/b": "A", "/c": "A"},
	}, {
		name: "hardlink to a missing file is skipped",
		layers: [][]tf{
			{hardlink("b", "nowhere"), file("c", "C")},
		},
		want: []string{"/c [0:c]"},
	}, {
		name: "dir replaced by file and back",
		layers: [][]tf{
			{dir("x"), file("x/child", "c")},
			{file("x", "file")},
			{dir("x"), file("x/new", "n")},
		},
		want:     []string{"/x/", "/x/new [2:x/new]"},
		contents: map[string]string{"/x/new": "n"},
	}, {
		name: "file replaced by symlink",
		layers: [][]tf{
			{file("bin/sh", "dash")},
			{symlink("bin/sh", "bash")},
		},
		want: []string{"/bin/", "/bin/sh -> bash"},
	}, {
		name: "path below a symlink replaces it with a directory",
		layers: [][]tf{
			{symlink("lib", "usr/lib"), dir("usr"), dir("usr/lib"), file("usr/lib/libc.so", "c")},
			{file("lib/foo", "f")},
		},
		want: []string{"/lib/", "/lib/foo [1:lib/foo]", "/usr/", "/usr/lib/", "/usr/lib/libc.so [0:usr/lib/libc.so]"},
	}, {
		name: "escaping and odd names",
		layers: [][]tf{
			{file("../../etc/evil", "e"), file("a/../../b", "e"), file("./c/./d/../e", "E"), file("/abs/x", "X"), dir("./"), file(strings.Repeat("n", 300), "z"), symlink("s", strings.Repeat("t/", 3000))},
		},
		want:     []string{"/abs/", "/abs/x [0:/abs/x]", "/c/", "/c/e [0:./c/./d/../e]"},
		contents: map[string]string{"/c/e": "E", "/abs/x": "X"},
	}, {
		name: "same name twice in one layer: the last wins",
		layers: [][]tf{
			{file("a", "first"), file("a", "second")},
		},
		want:     []string{"/a [0:a]"},
		contents: map[string]string{"/a": "second"},
	}, {
		name: "implicit parents",
		layers: [][]tf{
			{file("usr/local/bin/x", "x")},
		},
		want: []string{"/usr/", "/usr/local/", "/usr/local/bin/", "/usr/local/bin/x [0:usr/local/bin/x]"},
	}, {
		name: "devices and fifos",
		layers: [][]tf{
			{{Name: "dev/null", Type: tar.TypeChar}, {Name: "run/fifo", Type: tar.TypeFifo}},
		},
		want: []string{"/dev/", "/dev/null (other)", "/run/", "/run/fifo (other)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, idx := mustIndex(t, tt.layers...)
			if diff := cmp.Diff(tt.want, listing(t, idx)); diff != "" {
				t.Errorf("BuildIndex listing (-want +got):\n%s", diff)
			}
			if got := idx.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
			if tt.contents != nil {
				got := contents(t, img, idx)
				for p, want := range tt.contents {
					if got[p] != want {
						t.Errorf("content of %s = %q, want %q", p, got[p], want)
					}
				}
			}
		})
	}
}

// usrMerged is a Debian-like merged-/usr tree with symlinks of every kind.
func usrMerged() [][]tf {
	return [][]tf{{
		symlink("lib", "usr/lib"),
		symlink("lib64", "usr/lib64"),
		symlink("bin", "usr/bin"),
		dir("usr"), dir("usr/lib"), dir("usr/lib/x86_64-linux-gnu"), dir("usr/lib64"), dir("usr/bin"),
		file("usr/lib/x86_64-linux-gnu/libc.so.6", "libc"),
		symlink("usr/lib/x86_64-linux-gnu/libm.so.6", "libm-2.36.so"),
		file("usr/lib/x86_64-linux-gnu/libm-2.36.so", "libm"),
		symlink("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "ld"),
		file("usr/bin/python3.11", "py"),
		symlink("usr/bin/python3", "python3.11"),
		symlink("usr/bin/up", "../../../../../usr/bin/python3"),
		symlink("loop1", "loop2"),
		symlink("loop2", "/loop1"),
		symlink("self", "self"),
		symlink("dangling", "usr/nothing"),
		symlink("empty", "."),
		dir("etc"), dir("etc/ld.so.conf.d"),
		file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
		file("etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n"),
		file("etc/ld.so.conf.d/libc.conf", "/usr/local/lib\n"),
		file("etc/ld.so.conf.d/README", "not a conf"),
		symlink("etc/os-release", "../usr/lib/os-release"),
		file("usr/lib/os-release", "ID=debian\n"),
		file("etc/hostname", "not kept"),
	}}
}

func TestResolve(t *testing.T) {
	_, idx := mustIndex(t, usrMerged()...)
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "/lib/x86_64-linux-gnu/libc.so.6", want: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{in: "lib/x86_64-linux-gnu/libm.so.6", want: "/usr/lib/x86_64-linux-gnu/libm-2.36.so"},
		{in: "/lib64/ld-linux-x86-64.so.2", want: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{in: "/bin/python3", want: "/usr/bin/python3.11"},
		{in: "/usr/bin/up", want: "/usr/bin/python3.11"},
		{in: "/../../bin/../bin/python3", want: "/usr/bin/python3.11"},
		{in: "/lib/..", want: "/usr"},
		{in: "/empty", want: "/"},
		{in: "/", want: "/"},
		{in: "/loop1", err: ErrSymlinkLoop},
		{in: "/self/x", err: ErrSymlinkLoop},
		{in: "/dangling", err: fs.ErrNotExist},
		{in: "/bin/python3/x", err: fs.ErrNotExist},
		{in: "/nope", err: fs.ErrNotExist},
	}
	for _, tt := range tests {
		got, e, err := idx.Resolve(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Resolve(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%q) error = %v", tt.in, err)
			continue
		}
		if got != tt.want || e.Path != tt.want {
			t.Errorf("Resolve(%q) = %q (entry %q), want %q", tt.in, got, e.Path, tt.want)
		}
	}
}

func TestResolveParent(t *testing.T) {
	_, idx := mustIndex(t, usrMerged()...)
	got, e, err := idx.ResolveParent("/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		t.Fatal(err)
	}
	if got != "/usr/lib64/ld-linux-x86-64.so.2" || e.Kind != Symlink || e.Target != "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" {
		t.Errorf("ResolveParent = %q %+v, want the symlink /usr/lib64/ld-linux-x86-64.so.2", got, e)
	}
	if got, _, err := idx.ResolveParent("/lib/"); err != nil || got != "/usr/lib" {
		t.Errorf("ResolveParent(/lib/) = %q, %v; want /usr/lib", got, err)
	}
	if _, _, err := idx.ResolveParent("/loop1"); err != nil {
		t.Errorf("ResolveParent(/loop1) error = %v, want nil (final link not followed)", err)
	}
	e, ok := idx.Lookup("/lib")
	if !ok || e.Kind != Symlink {
		t.Errorf("Lookup(/lib) = %+v, %v; want the symlink", e, ok)
	}
	if _, ok := idx.Lookup("/lib/x86_64-linux-gnu/libc.so.6"); ok {
		t.Errorf("Lookup followed a symlink")
	}
}

func TestSplitUsr(t *testing.T) {
	_, idx := mustIndex(t, []tf{
		dir("lib"), dir("lib/x86_64-linux-gnu"), file("lib/x86_64-linux-gnu/libc.so.6", "c"),
		dir("lib64"), symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-2.31.so"),
		file("lib/x86_64-linux-gnu/ld-2.31.so", "ld"),
		dir("usr"), dir("usr/lib"), file("usr/lib/other.so", "o"),
	})
	for in, want := range map[string]string{
		"/lib64/ld-linux-x86-64.so.2":     "/lib/x86_64-linux-gnu/ld-2.31.so",
		"/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
	} {
		got, _, err := idx.Resolve(in)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, _, err := idx.Resolve("/usr/lib/x86_64-linux-gnu/libc.so.6"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("split /usr: libc found under /usr/lib: err = %v", err)
	}
}

func TestGlobReadDirContent(t *testing.T) {
	_, idx := mustIndex(t, usrMerged()...)
	if diff := cmp.Diff([]string{"/etc/ld.so.conf.d/libc.conf", "/etc/ld.so.conf.d/x86_64-linux-gnu.conf"}, idx.Glob("/etc/ld.so.conf.d/*.conf")); diff != "" {
		t.Errorf("Glob conf (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/lib/x86_64-linux-gnu/libm-2.36.so", "/lib/x86_64-linux-gnu/libm.so.6"}, idx.Glob("/lib/*/libm*")); diff != "" {
		t.Errorf("Glob through symlink (-want +got):\n%s", diff)
	}
	if got := idx.Glob("/etc/[z"); got != nil {
		t.Errorf("Glob(bad pattern) = %v, want nil", got)
	}
	var names []string
	for _, e := range idx.ReadDir("/lib64") {
		names = append(names, e.Path)
	}
	if diff := cmp.Diff([]string{"/usr/lib64/ld-linux-x86-64.so.2"}, names); diff != "" {
		t.Errorf("ReadDir(/lib64) (-want +got):\n%s", diff)
	}
	for p, want := range map[string]string{
		"/etc/ld.so.conf":                         "include /etc/ld.so.conf.d/*.conf\n",
		"/etc/ld.so.conf.d/libc.conf":             "/usr/local/lib\n",
		"/etc/ld.so.conf.d/README":                "not a conf",
		"/etc/os-release":                         "ID=debian\n",
		"/etc/ld.so.conf.d/x86_64-linux-gnu.conf": "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
	} {
		got, ok := idx.Content(p)
		if !ok || string(got) != want {
			t.Errorf("Content(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
	if got, ok := idx.Content("/etc/hostname"); ok {
		t.Errorf("Content(/etc/hostname) = %q, want not kept", got)
	}
}

func TestBuildIndexParsesFiles(t *testing.T) {
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	_, idx := mustIndex(t, []tf{
		file("bin/ls", string(ls)),
		file("usr/bin/script", "#!/usr/bin/env python3 -u\nprint(1)\n"),
		file("usr/bin/notelf", "\x7fELF but not really"),
		file("tiny", "#"),
	})
	e, _ := idx.Lookup("/bin/ls")
	f, err := elf.Open("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	if e.ELF == nil {
		t.Fatalf("/bin/ls has no ELF info")
	}
	if diff := cmp.Diff(libs, e.ELF.Needed); diff != "" {
		t.Errorf("indexed /bin/ls Needed (-debug/elf +got):\n%s", diff)
	}
	s, _ := idx.Lookup("/usr/bin/script")
	if diff := cmp.Diff(&ScriptInfo{Interpreter: "/usr/bin/env", Arg: "python3 -u"}, s.Script); diff != "" {
		t.Errorf("script (-want +got):\n%s", diff)
	}
	if n, _ := idx.Lookup("/usr/bin/notelf"); n.ELF != nil {
		t.Errorf("notelf parsed as ELF: %+v", n.ELF)
	}
}

func TestBuildIndexLimits(t *testing.T) {
	img := fromV1(t, mustV1(t, []tf{file("a", "x")}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := BuildIndex(ctx, img); !errors.Is(err, context.Canceled) {
		t.Errorf("BuildIndex(canceled) error = %v, want context.Canceled", err)
	}

	// A header declaring a 9 GiB file (no data follows: the error must come
	// from the header alone).
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 9 << 30, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	huge := fromV1(t, mustV1Raw(t, buf.Bytes()))
	_, err := BuildIndex(context.Background(), huge)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), `entry "huge"`) {
		t.Errorf("BuildIndex(9 GiB file) error = %v, want ErrLimit naming the entry", err)
	}
}

func FuzzBuildIndex(f *testing.F) {
	for _, es := range [][]tf{
		{dir("a"), file("a/f", "F"), file("a/.wh.g", ""), file("a/.wh..wh..opq", ""), hardlink("a/h", "a/f")},
		{symlink("lib", "usr/lib"), file("lib/x", "x"), file("usr/lib/y", "\x7fELF\x02\x01\x01")},
		{file("../../etc/passwd", "evil"), symlink("up", "../../.."), file("up/x", "x"), hardlink("z", "../up")},
		{file("x", "#!/bin/sh\n"), dir("x"), file("x/y", ""), file(".wh.x", ""), symlink("l1", "l2"), symlink("l2", "/l1")},
		{file("etc/ld.so.conf.d/a.conf", "/usr/lib\n"), file("etc/passwd", "root:x:0:0\n")},
	} {
		f.Add(tarBytes(f, es...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img := fromV1(t, mustV1Raw(t, b))
		start := time.Now()
		idx, err := BuildIndex(context.Background(), img)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("BuildIndex of %d bytes took %s", len(b), d)
		}
		if err != nil {
			return
		}
		n := 0
		var regular []*Entry
		err = idx.Walk(func(e *Entry) error {
			n++
			if e.Path != path.Clean(e.Path) || !strings.HasPrefix(e.Path, "/") || e.Path == "/" {
				t.Errorf("unclean path %q", e.Path)
			}
			if e.Kind == Regular && e.Size <= 1<<20 {
				// Bigger ones are sparse files tar expands from nothing.
				regular = append(regular, e)
			}
			for _, follow := range []bool{true, false} {
				rp, _, err := idx.resolve(e.Path, follow)
				if err == nil && (rp != path.Clean(rp) || !strings.HasPrefix(rp, "/")) {
					t.Errorf("Resolve(%q) = %q", e.Path, rp)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != idx.Len() {
			t.Errorf("Walk saw %d entries, Len() = %d", n, idx.Len())
		}
		if got, want := idx.bytes, heldBytes(idx); got != want {
			t.Errorf("index counts %d bytes, its nodes hold %d", got, want)
		}
		err = Extract(context.Background(), img, idx, regular, func(e *Entry, r io.Reader) error {
			got, err := io.Copy(io.Discard, r)
			if err == nil && got != e.Size {
				t.Errorf("Extract(%s) gave %d bytes, want %d", e.Path, got, e.Size)
			}
			return err
		})
		if err != nil {
			t.Errorf("Extract after a successful BuildIndex: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("BuildIndex+Walk+Extract of %d bytes took %s", len(b), d)
		}
	})
}

func ExampleBuildIndex() {
	// A one-layer image in an OCI layout: a merged-/usr tree with a symlink.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "usr/bin/momentum", Typeflag: tar.TypeReg, Mode: 0o755, Size: 3})
	tw.Write([]byte("hi\n"))
	tw.WriteHeader(&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"})
	tw.Close()
	layer, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	base, _ := mutate.AppendLayers(empty.Image, layer)
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	p, _ := layout.Write(dir, empty.Index)
	p.AppendImage(base)

	ctx := context.Background()
	img, err := Open(ctx, "oci:"+dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	idx, err := BuildIndex(ctx, img)
	if err != nil {
		fmt.Println(err)
		return
	}
	resolved, e, _ := idx.Resolve("/bin/momentum")
	fmt.Println(resolved, e.Size, idx.Len())
	Extract(ctx, img, idx, []*Entry{e}, func(e *Entry, r io.Reader) error {
		b, _ := io.ReadAll(r)
		fmt.Printf("%s: %q\n", e.Path, b)
		return nil
	})
	// Output:
	// /usr/bin/momentum 3 4
	// /usr/bin/momentum: "hi\n"
}
