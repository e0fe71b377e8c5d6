package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
)

// hostTree lists the files below dir as "rel mode content" and
// "rel/" for directories, failing on symlinks.
func hostTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			t.Errorf("symlink created on the host: %s", rel)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+" "+info.Mode().Perm().String()+" "+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteDir(t *testing.T) {
	layers := usrMerged()
	layers[0] = append(layers[0], tf{Name: "usr/bin/tool", Body: "tool", Mode: 0o4755})
	img, idx := mustIndex(t, layers...)
	out := filepath.Join(t.TempDir(), "out")
	err := WriteDir(context.Background(), img, idx, []string{"/bin/python3", "lib/x86_64-linux-gnu/libm.so.6", "/etc/ld.so.conf.d", "/usr/bin/tool", "/bin/python3"}, out)
	if err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	want := []string{
		"bin/",
		"bin/python3 -rw-r--r-- py",
		"etc/",
		"etc/ld.so.conf.d/",
		"etc/ld.so.conf.d/README -rw-r--r-- not a conf",
		"etc/ld.so.conf.d/libc.conf -rw-r--r-- /usr/local/lib\n",
		"etc/ld.so.conf.d/x86_64-linux-gnu.conf -rw-r--r-- /usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
		"lib/",
		"lib/x86_64-linux-gnu/",
		"lib/x86_64-linux-gnu/libm.so.6 -rw-r--r-- libm",
		"usr/",
		"usr/bin/",
		"usr/bin/tool -rwxr-xr-x tool",
	}
	if diff := cmp.Diff(want, hostTree(t, out)); diff != "" {
		t.Errorf("WriteDir tree (-want +got):\n%s", diff)
	}
	// Re-running over existing output replaces the files.
	if err := WriteDir(context.Background(), img, idx, []string{"/bin/python3"}, out); err != nil {
		t.Errorf("WriteDir again: %v", err)
	}
}

func TestWriteDirRefusesSymlinks(t *testing.T) {
	img, idx := mustIndex(t, usrMerged()...)
	base := t.TempDir()
	out := filepath.Join(base, "out")
	elsewhere := filepath.Join(base, "elsewhere")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(elsewhere, 0o755)
	if err := os.Symlink(elsewhere, filepath.Join(out, "bin")); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(context.Background(), img, idx, []string{"/bin/python3"}, out)
	if err == nil || !strings.Contains(err.Error(), "refusing to write through symlink bin") {
		t.Errorf("WriteDir through a symlink: error = %v", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("WriteDir wrote outside its directory: %v", ents)
	}
}

func TestWriteNotFound(t *testing.T) {
	img, idx := mustIndex(t, usrMerged()...)
	out := t.TempDir()
	err := WriteDir(context.Background(), img, idx, []string{"/usr/bin/pyton3", "/bin/python3", "/nowhere/at/all", "/dangling", "/"}, out)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v, want a *NotFoundError", err)
	}
	if nf.Path != "/usr/bin/pyton3" || nf.Dir != "/usr/bin" {
		t.Errorf("NotFoundError = %+v", nf)
	}
	if diff := cmp.Diff([]string{"python3", "python3.11", "up"}, nf.Nearby); diff != "" {
		t.Errorf("Nearby (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		"/usr/bin/pyton3: not found in the image; /usr/bin has python3, python3.11, up",
		"/nowhere/at/all: not found in the image; / has ",
		"/dangling: not found",
		`"/": refusing to copy the whole image`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("files written despite errors: %v", ents)
	}
}

func TestWriteTar(t *testing.T) {
	img, idx := mustIndex(t, usrMerged()...)
	paths := []string{"/bin/python3", "/usr/bin/python3.11", "/etc/os-release"}
	var a, b bytes.Buffer
	if err := WriteTar(context.Background(), img, idx, paths, &a); err != nil {
		t.Fatalf("WriteTar: %v", err)
	}
	if err := WriteTar(context.Background(), img, idx, paths, &b); err != nil {
		t.Fatalf("WriteTar: %v", err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("WriteTar is not reproducible")
	}
	var got []string
	for _, e := range testkit.ReadTar(t, &a) {
		s := string(e.Header.Typeflag) + " " + e.Header.Name
		if e.Header.Typeflag == tar.TypeLink {
			s += " => " + e.Header.Linkname
		}
		if len(e.Body) > 0 {
			s += " " + string(e.Body)
		}
		got = append(got, s)
	}
	want := []string{
		"5 bin/", "5 etc/", "5 usr/", "5 usr/bin/",
		"0 bin/python3 py", "1 usr/bin/python3.11 => bin/python3",
		"0 etc/os-release ID=debian\n",
	}
	sort.Strings(want[4:])
	sort.Strings(got[4:])
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WriteTar entries (-want +got):\n%s", diff)
	}
}

// countingImage records which layers were opened.
type countingImage struct {
	v1.Image
	opened *[]int
}

type countingLayer struct {
	v1.Layer
	n      int
	opened *[]int
}

func (c countingImage) Layers() ([]v1.Layer, error) {
	ls, err := c.Image.Layers()
	for i := range ls {
		ls[i] = countingLayer{ls[i], i, c.opened}
	}
	return ls, err
}

// countingMu guards the opened lists: BuildIndex opens layers
// concurrently.
var countingMu sync.Mutex

func (l countingLayer) Uncompressed() (io.ReadCloser, error) {
	countingMu.Lock()
	*l.opened = append(*l.opened, l.n)
	countingMu.Unlock()
	return l.Layer.Uncompressed()
}

func TestExtractReadsOnlyNeededLayers(t *testing.T) {
	var opened []int
	base := mustV1(t,
		[]tf{file("a", "A"), file("big", strings.Repeat("x", 1<<20))},
		[]tf{file("b", "B")},
		[]tf{file("c", "C"), hardlink("c2", "c")},
	)
	img := fromV1(t, countingImage{base, &opened})
	img.opts.kept = &[2]int64{} // every file from its layer
	idx, err := BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	opened = nil
	var es []*Entry
	for _, p := range []string{"/c2", "/a", "/c"} {
		e, _ := idx.Lookup(p)
		es = append(es, e)
	}
	dirEntry, _ := idx.Lookup("/")
	es = append(es, dirEntry)
	var calls []string
	err = Extract(context.Background(), img, idx, es, func(e *Entry, r io.Reader) error {
		if r == nil {
			calls = append(calls, e.Path+" nil")
			return nil
		}
		b, err := io.ReadAll(r)
		calls = append(calls, e.Path+" "+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/ nil", "/a A", "/c2 C", "/c C"}, calls); diff != "" {
		t.Errorf("Extract calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 2}, opened); diff != "" {
		t.Errorf("layers opened (-want +got):\n%s", diff)
	}
}

func TestExtractStopsEarly(t *testing.T) {
	good := tarBytes(t, file("first", "1"), file("second", "2"))
	plain := fromV1(t, mustV1(t, []tf{file("first", "1"), file("second", "2")}))
	plain.opts.kept = &[2]int64{} // every file from its layer
	idx, err := BuildIndex(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	// The same layer with its second entry cut off: reading past the
	// first entry fails, so Extract must stop after it.
	cut := append([]byte(nil), good[:1024]...)
	cut = append(cut, bytes.Repeat([]byte{0xff}, 512)...)
	img := fromV1(t, mustV1Raw(t, cut))
	first, _ := idx.Lookup("/first")
	if err := Extract(context.Background(), img, idx, []*Entry{first}, func(*Entry, io.Reader) error { return nil }); err != nil {
		t.Errorf("Extract(first) on a layer broken after it: %v", err)
	}
	second, _ := idx.Lookup("/second")
	if err := Extract(context.Background(), img, idx, []*Entry{second}, func(*Entry, io.Reader) error { return nil }); err == nil {
		t.Errorf("Extract(second) on a broken layer succeeded")
	}
	gone := &Entry{Path: "/x", Kind: Regular, Source: Source{Layer: 0, Name: "nothere"}}
	okImg := fromV1(t, mustV1Raw(t, good))
	if err := Extract(context.Background(), okImg, idx, []*Entry{gone}, func(*Entry, io.Reader) error { return nil }); err == nil || !strings.Contains(err.Error(), `"nothere"`) {
		t.Errorf("Extract(missing source) error = %v", err)
	}
	stop := errors.New("stop")
	if err := Extract(context.Background(), okImg, idx, []*Entry{first}, func(*Entry, io.Reader) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Extract callback error = %v, want %v", err, stop)
	}
}
