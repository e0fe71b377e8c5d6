package image_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
)

// ---- synthetic ELF files ----

// elfSpec describes a minimal ELF file: the headers, PT_INTERP and a
// dynamic section, all ld.so (and ParseELF) read.
type elfSpec struct {
	class   int    // 32 or 64 (default 64)
	machine uint16 // e_machine (default x86_64)
	exec    bool   // ET_EXEC instead of ET_DYN
	interp  string
	needed  []string
	rpath   string
	runpath string
	soname  string
}

const (
	emX86_64  = 62
	emAArch64 = 183
)

// mkELF writes the ELF file of s: one PT_LOAD mapping the whole file at
// address 0, PT_INTERP when set, PT_DYNAMIC with DT_NEEDED, DT_RPATH,
// DT_RUNPATH, DT_SONAME, DT_STRTAB and DT_STRSZ.
func mkELF(s elfSpec) []byte {
	if s.class == 0 {
		s.class = 64
	}
	if s.machine == 0 {
		s.machine = emX86_64
	}
	ehsize, phsize, word := 64, 56, 8
	if s.class == 32 {
		ehsize, phsize, word = 52, 32, 4
	}
	nph := 2
	if s.interp != "" {
		nph++
	}
	// String table.
	strtab := []byte{0}
	str := func(v string) uint64 {
		off := uint64(len(strtab))
		strtab = append(strtab, v...)
		strtab = append(strtab, 0)
		return off
	}
	type dyn struct{ tag, val uint64 }
	var dyns []dyn
	for _, n := range s.needed {
		dyns = append(dyns, dyn{1, str(n)})
	}
	if s.rpath != "" {
		dyns = append(dyns, dyn{15, str(s.rpath)})
	}
	if s.runpath != "" {
		dyns = append(dyns, dyn{29, str(s.runpath)})
	}
	if s.soname != "" {
		dyns = append(dyns, dyn{14, str(s.soname)})
	}
	interpOff := ehsize + nph*phsize
	interp := []byte(s.interp)
	if s.interp != "" {
		interp = append(interp, 0)
	}
	strOff := interpOff + len(interp)
	dynOff := strOff + len(strtab)
	dynOff += (word - dynOff%word) % word
	dyns = append(dyns, dyn{5, uint64(strOff)}, dyn{10, uint64(len(strtab))}, dyn{0, 0})
	total := dynOff + len(dyns)*2*word

	b := make([]byte, total)
	le := binary.LittleEndian
	put := func(off int, v uint64, size int) {
		switch size {
		case 2:
			le.PutUint16(b[off:], uint16(v))
		case 4:
			le.PutUint32(b[off:], uint32(v))
		case 8:
			le.PutUint64(b[off:], v)
		}
	}
	copy(b, "\x7fELF")
	b[4] = byte(s.class / 32)
	b[5], b[6] = 1, 1
	typ := uint64(3)
	if s.exec {
		typ = 2
	}
	put(16, typ, 2)
	put(18, uint64(s.machine), 2)
	put(20, 1, 4)
	if s.class == 64 {
		put(32, uint64(ehsize), 8) // e_phoff
		put(52, uint64(ehsize), 2)
		put(54, uint64(phsize), 2)
		put(56, uint64(nph), 2)
	} else {
		put(28, uint64(ehsize), 4)
		put(40, uint64(ehsize), 2)
		put(42, uint64(phsize), 2)
		put(44, uint64(nph), 2)
	}
	ph := func(i int, typ uint32, off, size uint64) {
		o := ehsize + i*phsize
		if s.class == 64 {
			put(o, uint64(typ), 4)
			put(o+4, 4, 4) // PF_R
			put(o+8, off, 8)
			put(o+16, off, 8)
			put(o+24, off, 8)
			put(o+32, size, 8)
			put(o+40, size, 8)
			put(o+48, 1, 8)
		} else {
			put(o, uint64(typ), 4)
			put(o+4, off, 4)
			put(o+8, off, 4)
			put(o+12, off, 4)
			put(o+16, size, 4)
			put(o+20, size, 4)
			put(o+24, 4, 4)
			put(o+28, 1, 4)
		}
	}
	i := 0
	ph(i, 1, 0, uint64(total)) // PT_LOAD
	i++
	if s.interp != "" {
		ph(i, 3, uint64(interpOff), uint64(len(interp)))
		i++
	}
	ph(i, 2, uint64(dynOff), uint64(len(dyns)*2*word))
	copy(b[interpOff:], interp)
	copy(b[strOff:], strtab)
	for j, d := range dyns {
		o := dynOff + j*2*word
		put(o, d.tag, word)
		put(o+word, d.val, word)
	}
	return b
}

// ---- building images ----

// node is one path of a hand-made root filesystem: a file (data, mode) or
// a symlink (link).
type node struct {
	data []byte
	mode os.FileMode
	link string
}

func lib(s elfSpec) node   { return node{data: mkELF(s), mode: 0o644} }
func prog(s elfSpec) node  { return node{data: mkELF(s), mode: 0o755} }
func text(s string) node   { return node{data: []byte(s), mode: 0o644} }
func script(s string) node { return node{data: []byte(s), mode: 0o755} }
func link(to string) node  { return node{link: to} }

// writeTree writes the nodes under a new temporary directory.
func writeTree(t *testing.T, tree map[string]node) string {
	t.Helper()
	root := t.TempDir()
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		n := tree[p]
		host := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if n.link != "" {
			if err := os.Symlink(n.link, host); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(host, n.data, n.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(host, n.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// openImage pushes img to the in-process registry, opens it with
// image.Open and indexes it, as the CLI does.
func openImage(t *testing.T, img v1.Image, platform string) (*image.Image, *image.Index) {
	t.Helper()
	im := pushOpen(t, img, platform)
	return im, imagetest.Index(t, im)
}

// pushOpen pushes img to the in-process registry and opens it with
// image.Open.
func pushOpen(t *testing.T, img v1.Image, platform string) *image.Image {
	t.Helper()
	return imagetest.Open(t, testkit.Push(t, img), image.WithPlatform(platform))
}

// treeImage builds, pushes, opens and indexes the image of a hand-made
// root filesystem.
func treeImage(t *testing.T, tree map[string]node, cfg v1.Config, platform string) (*image.Image, *image.Index) {
	t.Helper()
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.FromDir(writeTree(t, tree), cfg, imagebuild.WithPlatform(*plat))
	if err != nil {
		t.Fatalf("FromDir: %v", err)
	}
	return openImage(t, img, platform)
}

// mustClosure resolves the command and computes the closure.
func mustClosure(t *testing.T, im *image.Image, idx *image.Index, opts ...image.ClosureOption) *image.ClosureResult {
	t.Helper()
	res, err := closureOf(im, idx, opts...)
	if err != nil {
		t.Fatalf("Closure: %v", err)
	}
	return res
}

func closureOf(im *image.Image, idx *image.Index, opts ...image.ClosureOption) (*image.ClosureResult, error) {
	cmd, err := image.ResolveCommand(im, idx, image.Override{})
	if err != nil {
		return nil, err
	}
	return image.Closure(context.Background(), idx, cmd, opts...)
}

// ---- Debian fixtures ----

// fixtures returns the directory of the Debian fixtures made by
// testdata/make-fixtures.sh; without them the test is skipped (failed under
// CI), see testkit.Fixtures.
func fixtures(t testing.TB) string {
	t.Helper()
	return testkit.Fixtures(t)
}

// fixtureImage builds the image of a fixture, pushes it to the in-process
// registry, opens and indexes it.
func fixtureImage(t *testing.T, name string) (*image.Image, *image.Index) {
	t.Helper()
	img, platform := testkit.FixtureImage(t, name)
	return openImage(t, img, platform)
}

// inRoot resolves the absolute path p inside the host directory root the
// way the kernel does in a chroot, returning the resolved image path and
// the image paths of the symlinks met.
func inRoot(t *testing.T, root, p string) (string, []string) {
	t.Helper()
	parts := strings.Split(p, "/")
	cur := "/"
	var links []string
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		host := filepath.Join(root, filepath.FromSlash(next))
		fi, err := os.Lstat(host)
		if err != nil {
			t.Fatalf("resolving %s in %s: %v", p, root, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(host)
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, next)
			if len(links) > 40 {
				t.Fatalf("resolving %s in %s: symlink loop", p, root)
			}
			if path.IsAbs(target) {
				cur = "/"
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur, links
}

// lddList runs argv (a loader invoked with --list, through chroot or qemu)
// and returns the library paths it prints, as the loader names them.
func lddList(t *testing.T, argv ...string) []string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	var paths []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.LastIndex(line, " (0x"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "(0x") {
			continue
		}
		lhs, rhs, found := strings.Cut(line, " => ")
		switch {
		case found && strings.HasPrefix(lhs, "/"):
			paths = append(paths, lhs) // the loader itself (qemu prints a host path after =>)
		case found && rhs == "not found":
			t.Fatalf("%s: %s not found\n%s", strings.Join(argv, " "), lhs, out)
		case found:
			paths = append(paths, rhs)
		case strings.HasPrefix(line, "/"):
			paths = append(paths, line)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("%s printed no libraries:\n%s", strings.Join(argv, " "), out)
	}
	return paths
}

// wantFromLdd turns the loader's list into the closure it implies: the
// entrypoint and every listed library as resolved regular files, plus every
// symlink on the way to them.
func wantFromLdd(t *testing.T, root, entry string, listed []string) (regular, links []string) {
	t.Helper()
	reg := map[string]bool{}
	lk := map[string]bool{}
	for _, p := range append([]string{entry}, listed...) {
		real, ls := inRoot(t, root, p)
		reg[real] = true
		for _, l := range ls {
			lk[l] = true
		}
	}
	return keys(reg), keys(lk)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// split returns the closure's regular files and symlinks, excluding files
// added only for reasons of the given kinds.
func split(res *image.ClosureResult, skipKinds ...string) (regular, links []string) {
	for _, f := range res.Files {
		only := true
		for _, r := range f.Why {
			if !contains(skipKinds, r.Kind) {
				only = false
			}
		}
		if only && len(skipKinds) > 0 {
			continue
		}
		switch f.Kind {
		case image.Regular:
			regular = append(regular, f.Path)
		case image.Symlink:
			links = append(links, f.Path)
		}
	}
	return regular, links
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestClosureMatchesLoader compares the closure of the gfortran-built
// momentum program with what the image's own loader lists inside a chroot
// of the same root filesystem.
func TestClosureMatchesLoader(t *testing.T) {
	testkit.Root(t, "the loader's own list is taken in a chroot")
	for _, fixture := range []string{"fortran-merged", "fortran-split"} {
		t.Run(fixture, func(t *testing.T) {
			root := filepath.Join(fixtures(t), fixture)
			im, idx := fixtureImage(t, fixture)
			res := mustClosure(t, im, idx)

			listed := lddList(t, "chroot", root, "/lib64/ld-linux-x86-64.so.2", "--list", "/usr/local/bin/momentum")
			for _, f := range res.Files {
				t.Logf("closure: %s %v", f.Path, f.Why)
			}
			t.Logf("ld.so --list: %q; LibraryPath %q", listed, res.LibraryPath)
			wantReg, wantLinks := wantFromLdd(t, root, "/usr/local/bin/momentum", listed)
			gotReg, gotLinks := split(res)
			if diff := cmp.Diff(wantReg, gotReg); diff != "" {
				t.Errorf("Closure regular files differ from the loader's list (-ldd +closure):\n%s", diff)
			}
			if diff := cmp.Diff(wantLinks, gotLinks); diff != "" {
				t.Errorf("Closure symlinks differ from those on the way to the loader's list (-ldd +closure):\n%s", diff)
			}
			var wantDirs []string
			for _, p := range listed {
				if d := path.Dir(p); !contains(wantDirs, d) && !strings.Contains(p, "ld-linux") {
					wantDirs = append(wantDirs, d)
				}
			}
			gotDirs := append([]string(nil), res.LibraryPath...)
			sort.Strings(wantDirs)
			sort.Strings(gotDirs)
			if diff := cmp.Diff(wantDirs, gotDirs); diff != "" {
				t.Errorf("LibraryPath differs from the loader's directories (-ldd +closure):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"/lib64/ld-linux-x86-64.so.2"}, res.Interpreters); diff != "" {
				t.Errorf("Interpreters (-want +got):\n%s", diff)
			}
			if res.Arch != "x86_64" {
				t.Errorf("Arch = %q, want x86_64", res.Arch)
			}
			// The program comes from the top layer, libc from the base.
			for _, f := range res.Files {
				wantLayer := 0
				if f.Path == "/usr/local/bin/momentum" {
					wantLayer = 1
				}
				if f.Layer != wantLayer {
					t.Errorf("%s: layer %d, want %d", f.Path, f.Layer, wantLayer)
				}
			}
		})
	}
}

// TestClosureArm64 resolves the cross-compiled momentum of the arm64
// fixture on this machine, and compares with the aarch64 loader's own list
// when qemu can run it.
func TestClosureArm64(t *testing.T) {
	dir := fixtures(t)
	fc, err := imagebuild.ReadFixtureConfig(dir, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	entry := fc.Config.Entrypoint[0]
	im, idx := fixtureImage(t, "arm64")
	res := mustClosure(t, im, idx)
	if res.Arch != "aarch64" {
		t.Errorf("Arch = %q, want aarch64", res.Arch)
	}
	if diff := cmp.Diff([]string{"/lib/ld-linux-aarch64.so.1"}, res.Interpreters); diff != "" {
		t.Errorf("Interpreters (-want +got):\n%s", diff)
	}
	reg, links := split(res)
	for _, want := range []string{"/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "/usr/lib/aarch64-linux-gnu/libc.so.6", entry} {
		if !contains(reg, want) {
			t.Errorf("closure files %q lack %s", reg, want)
		}
	}
	for _, want := range []string{"/lib", "/usr/lib/ld-linux-aarch64.so.1"} {
		if !contains(links, want) {
			t.Errorf("closure symlinks %q lack %s", links, want)
		}
	}
	for _, f := range res.Files {
		if f.ELF != nil && f.ELF.Machine != "aarch64" {
			t.Errorf("%s is %s, want aarch64", f.Path, f.ELF.Machine)
		}
	}

	root := filepath.Join(dir, "arm64")
	var listed []string
	switch {
	case os.Geteuid() == 0 && exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):
		listed = lddList(t, "chroot", root, "/lib/ld-linux-aarch64.so.1", "--list", entry)
	case lookPath("qemu-aarch64-static") != "":
		// Without binfmt_misc, qemu's -L prefix makes the loader's absolute
		// paths resolve inside the root, as a chroot would.
		listed = lddList(t, lookPath("qemu-aarch64-static"), "-L", root, filepath.Join(root, "lib/ld-linux-aarch64.so.1"), "--list", entry)
	default:
		testkit.Missing(t, "qemu-aarch64-static not found on PATH: the closure cannot be compared with the aarch64 loader's list",
			"install it with `make deps` or apt-get install qemu-user-static")
	}
	wantReg, wantLinks := wantFromLdd(t, root, entry, listed)
	if diff := cmp.Diff(wantReg, reg); diff != "" {
		t.Errorf("Closure regular files differ from the aarch64 loader's list (-ldd +closure):\n%s", diff)
	}
	if diff := cmp.Diff(wantLinks, links); diff != "" {
		t.Errorf("Closure symlinks differ (-ldd +closure):\n%s", diff)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// TestClosureArm64WrongPlatform: the arm64 program in an image that
// claims linux/amd64 is refused.
func TestClosureArm64WrongPlatform(t *testing.T) {
	dir := fixtures(t)
	fc, err := imagebuild.ReadFixtureConfig(dir, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.FromDir(filepath.Join(dir, "arm64"), fc.Config)
	if err != nil {
		t.Fatal(err)
	}
	im, idx := openImage(t, img, "linux/amd64")
	_, err = closureOf(im, idx)
	var ae *image.ArchError
	if !errors.As(err, &ae) || !errors.Is(err, image.ErrArchMismatch) {
		t.Fatalf("Closure = %v, want an *ArchError", err)
	}
	for _, want := range []string{"aarch64", "linux/amd64", "(x86_64)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestClosureScripts uses dash and coreutils: a "#!/bin/sh" script and a
// "#!/usr/bin/env sh" script.
func TestClosureScripts(t *testing.T) {
	tests := []struct {
		entrypoint string
		want       map[string]string // closure path -> first reason kind
	}{
		{"/usr/local/bin/sorted.sh", map[string]string{
			"/usr/local/bin/sorted.sh":        "entrypoint",
			"/bin":                            "symlink",
			"/usr/bin/sh":                     "symlink",
			"/usr/bin/dash":                   "interpreter",
			"/lib64":                          "symlink",
			"/usr/lib64/ld-linux-x86-64.so.2": "symlink",
			"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "loader",
			"/lib":                                "symlink",
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "needed",
		}},
		{"/usr/local/bin/count", map[string]string{
			"/usr/local/bin/count":            "entrypoint",
			"/usr/bin/env":                    "interpreter",
			"/usr/bin/sh":                     "symlink",
			"/usr/bin/dash":                   "interpreter",
			"/lib64":                          "symlink",
			"/usr/lib64/ld-linux-x86-64.so.2": "symlink",
			"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "loader",
			"/lib":                                "symlink",
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "needed",
		}},
	}
	dir := fixtures(t)
	fc, err := imagebuild.ReadFixtureConfig(dir, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Fixture(dir, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	im, idx := openImage(t, img, fc.Platform)
	for _, tt := range tests {
		t.Run(path.Base(tt.entrypoint), func(t *testing.T) {
			cmd, err := image.ResolveCommand(im, idx, image.Override{Entrypoint: []string{tt.entrypoint}, EntrypointSet: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := image.Closure(context.Background(), idx, cmd)
			if err != nil {
				t.Fatalf("Closure(%q): %v", tt.entrypoint, err)
			}
			got := map[string]string{}
			for _, f := range res.Files {
				got[f.Path] = f.Why[0].Kind
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure(%q) (-want +got):\n%s", tt.entrypoint, diff)
			}
		})
	}
}

// TestClosureGconv: WithGconv(true) adds every file of libc6's gconv
// directory (configuration and modules, with the libraries modules load
// through $ORIGIN); by default none.
func TestClosureGconv(t *testing.T) {
	dir := fixtures(t)
	im, idx := fixtureImage(t, "fortran-merged")
	gconvDir := "/usr/lib/x86_64-linux-gnu/gconv"
	var want []string
	err := filepath.WalkDir(filepath.Join(dir, "fortran-merged", gconvDir), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(dir, "fortran-merged"), p)
			want = append(want, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 100 || !contains(want, gconvDir+"/gconv-modules.d/gconv-modules-extra.conf") {
		t.Fatalf("fixture gconv directory has %d files, want libc6's (over 100, with gconv-modules.d)", len(want))
	}
	inGconv := func(res *image.ClosureResult) []string {
		var out []string
		for _, f := range res.Files {
			if strings.HasPrefix(f.Path, gconvDir+"/") {
				out = append(out, f.Path)
				if f.Why[0].Kind != "runtime" || f.Why[0].Detail != "gconv" {
					t.Errorf("%s: first reason %+v, want runtime gconv", f.Path, f.Why[0])
				}
			}
		}
		return out
	}
	if got := inGconv(mustClosure(t, im, idx)); len(got) != 0 {
		t.Errorf("default closure has %d gconv files, want none", len(got))
	}
	withGconv := mustClosure(t, im, idx, image.WithGconv(true))
	if withGconv.GconvPath != gconvDir {
		t.Errorf("GconvPath = %q, want %q", withGconv.GconvPath, gconvDir)
	}
	got := inGconv(withGconv)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WithGconv(true) gconv files (-want +got):\n%s", diff)
	}
}

// BenchmarkClosure measures ResolveCommand+Closure on the indexed
// fortran-merged image (the index is built once, outside the loop).
func BenchmarkClosure(b *testing.B) {
	img, platform := testkit.FixtureImage(b, "fortran-merged")
	p := testkit.OCILayout(b, img, "layout")
	ctx := context.Background()
	im, err := image.Open(ctx, "oci:"+p, image.WithPlatform(platform))
	if err != nil {
		b.Fatal(err)
	}
	defer im.Close()
	idx, err := image.BuildIndex(ctx, im)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		cmd, err := image.ResolveCommand(im, idx, image.Override{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := image.Closure(ctx, idx, cmd, image.WithGconv(true)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestClosureShellForm: a shell-form command (as Docker stores `ENTRYPOINT
// sort ...`) brings the shell and the programs its command line starts.
func TestClosureShellForm(t *testing.T) {
	dir := fixtures(t)
	fc, err := imagebuild.ReadFixtureConfig(dir, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Fixture(dir, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	im, idx := openImage(t, img, fc.Platform)
	cmd, err := image.ResolveCommand(im, idx, image.Override{
		Entrypoint: []string{"/bin/sh", "-c", `LC_ALL=C sort -t, -k1,1g | tail -n +2 > "$OUT"; exec wc -l "$OUT"; nosuchprogram`}, EntrypointSet: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := image.Closure(context.Background(), idx, cmd)
	if err != nil {
		t.Fatalf("Closure: %v", err)
	}
	got := map[string]string{}
	for _, f := range res.Files {
		if f.Kind == image.Regular {
			got[f.Path] = f.Why[0].Kind + " " + f.Why[0].By + " " + f.Why[0].Detail
		}
	}
	want := map[string]string{
		"/usr/bin/dash": "entrypoint  /bin/sh -c " + cmd.Args[2],
		"/usr/bin/sort": "entrypoint /usr/bin/dash sh -c: sort",
		"/usr/bin/tail": "entrypoint /usr/bin/dash sh -c: tail",
		"/usr/bin/wc":   "entrypoint /usr/bin/dash sh -c: wc",
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "loader /usr/bin/dash /lib64/ld-linux-x86-64.so.2",
		"/usr/lib/x86_64-linux-gnu/libc.so.6":            "needed /usr/bin/dash libc.so.6",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Closure regular files (-want +got):\n%s", diff)
	}
}
