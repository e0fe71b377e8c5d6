package demo

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/comingout/extract/internal/testkit"
)

// minimalELF returns the smallest ELF64 file debug/elf accepts: a header
// for machine, no program or section headers.
func minimalELF(t *testing.T, machine elf.Machine) []byte {
	t.Helper()
	h := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Ehsize:    64,
		Phentsize: 56,
		Shentsize: 64,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mustRootfs writes a small rootfs shaped like the fortran-merged fixture:
// merged /usr, a libc, the Fortran runtime with its soname symlinks and doc
// directory, a passwd and group, and an x86-64 ELF program.
func mustRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	prog := minimalELF(t, elf.EM_X86_64)
	files := map[string]string{
		"usr/lib/x86_64-linux-gnu/libc.so.6":               "libc",
		"usr/lib/x86_64-linux-gnu/libgfortran.so.5.0.0":    "gfortran",
		"usr/lib/x86_64-linux-gnu/libquadmath.so.0.0.0":    "quadmath",
		"usr/share/doc/libgfortran5/copyright":             "gpl",
		"usr/share/doc/libc6/copyright":                    "lgpl",
		"etc/passwd":                                       "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":                                        "root:x:0:", // no final newline
		"usr/local/bin/momentum":                           string(prog),
		"usr/local/share/momentum/README":                  "stays in the base",
		"usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/x": "x",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "momentum") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"lib":   "usr/lib",
		"lib64": "usr/lib64",
		"usr/lib/x86_64-linux-gnu/libgfortran.so.5": "libgfortran.so.5.0.0",
		"usr/lib/x86_64-linux-gnu/libquadmath.so.0": "libquadmath.so.0.0.0",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// layerEntries lists a layer's tar entries as "name" (regular), "name/"
// (directory) or "name -> target" (symlink).
func layerEntries(t *testing.T, l v1.Layer) ([]string, map[string]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	headers := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := h.Name
		if h.Typeflag == tar.TypeSymlink {
			n += " -> " + h.Linkname
		}
		names = append(names, n)
		headers[h.Name] = h
		if h.Typeflag == tar.TypeReg && h.Size < 4096 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[h.Name] = string(b)
		}
	}
	return names, headers, contents
}

func TestBuildImage(t *testing.T) {
	root := mustRootfs(t)
	img, err := BuildImage(root)
	if err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != NumLayers {
		t.Fatalf("BuildImage made %d layers, want %d", len(layers), NumLayers)
	}

	base, _, baseFiles := layerEntries(t, layers[LayerBase])
	pkgs, _, _ := layerEntries(t, layers[LayerPackages])
	prog, progHeaders, _ := layerEntries(t, layers[LayerProgram])
	user, _, userFiles := layerEntries(t, layers[LayerUser])
	work, workHeaders, _ := layerEntries(t, layers[LayerWorkDir])

	in := func(list []string, name string) bool {
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		layer string
		list  []string
		name  string
		want  bool
	}{
		{"base", base, "usr/lib/x86_64-linux-gnu/libc.so.6", true},
		{"base", base, "lib -> usr/lib", true},
		{"base", base, "usr/share/doc/libc6/copyright", true},
		{"base", base, "usr/local/share/momentum/README", true},
		{"base", base, "etc/passwd", true},
		{"base", base, "usr/lib/x86_64-linux-gnu/libgfortran.so.5.0.0", false},
		{"base", base, "usr/share/doc/libgfortran5/", false},
		{"base", base, "usr/local/bin/momentum", false},
		{"packages", pkgs, "usr/lib/x86_64-linux-gnu/libgfortran.so.5.0.0", true},
		{"packages", pkgs, "usr/lib/x86_64-linux-gnu/libgfortran.so.5 -> libgfortran.so.5.0.0", true},
		{"packages", pkgs, "usr/lib/x86_64-linux-gnu/libquadmath.so.0 -> libquadmath.so.0.0.0", true},
		{"packages", pkgs, "usr/share/doc/libgfortran5/copyright", true},
		{"packages", pkgs, "usr/lib/x86_64-linux-gnu/", true}, // parent, as docker repeats it
		{"packages", pkgs, "usr/lib/x86_64-linux-gnu/libc.so.6", false},
		{"program", prog, "usr/local/bin/momentum", true},
		{"program", prog, "usr/local/share/momentum/README", false},
	} {
		if got := in(c.list, c.name); got != c.want {
			t.Errorf("%s layer has %q = %v, want %v (layer: %q)", c.layer, c.name, got, c.want, c.list)
		}
	}
	if got, want := user, []string{"etc/", "etc/group", "etc/passwd"}; !cmp.Equal(got, want) {
		t.Errorf("useradd layer = %q, want %q", got, want)
	}
	if got, want := userFiles["etc/passwd"], "root:x:0:0:root:/root:/bin/sh\nmomentum:x:10001:10001::/nonexistent:/usr/sbin/nologin\n"; got != want {
		t.Errorf("useradd layer /etc/passwd = %q, want %q", got, want)
	}
	if got, want := userFiles["etc/group"], "root:x:0:\nmomentum:x:10001:\n"; got != want {
		t.Errorf("useradd layer /etc/group = %q, want %q", got, want)
	}
	if got, want := baseFiles["etc/passwd"], "root:x:0:0:root:/root:/bin/sh\n"; got != want {
		t.Errorf("base layer /etc/passwd = %q, want the rootfs's %q", got, want)
	}
	if got, want := work, []string{"work/"}; !cmp.Equal(got, want) {
		t.Errorf("workdir layer = %q, want %q", got, want)
	}
	if h := workHeaders["work/"]; h.Uid != 10001 || h.Gid != 10001 || h.Mode != 0o755 {
		t.Errorf("workdir /work: uid %d gid %d mode %o, want 10001 10001 755", h.Uid, h.Gid, h.Mode)
	}
	if h := progHeaders["usr/local/bin/momentum"]; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("program: mode %o uid %d, want 755 0", h.Mode, h.Uid)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Env:        []string{"PATH=" + DefaultPath},
		Entrypoint: []string{"/usr/local/bin/momentum"},
		User:       "momentum",
		WorkingDir: "/work",
	}
	got := cf.Config
	got.Labels = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Variant != "" {
		t.Errorf("platform %s/%s/%s, want linux/amd64", cf.OS, cf.Architecture, cf.Variant)
	}
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != NumLayers || len(cf.RootFS.DiffIDs) != NumLayers {
		t.Errorf("history has %d non-empty entries and rootfs %d diff IDs, want %d", nonEmpty, len(cf.RootFS.DiffIDs), NumLayers)
	}
	if last := cf.History[len(cf.History)-1].CreatedBy; last != `ENTRYPOINT ["/usr/local/bin/momentum"]` {
		t.Errorf("last history entry %q, want the ENTRYPOINT", last)
	}

	// The flattened file system is what the container sees.
	flat := map[string]*tar.Header{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		flat[h.Name] = h
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "\nmomentum:x:10001:") {
				t.Errorf("flattened /etc/passwd = %q, want the momentum user", b)
			}
		}
	}
	for _, p := range []string{"etc/passwd", "usr/local/bin/momentum", "usr/lib/x86_64-linux-gnu/libgfortran.so.5", "work"} {
		if flat[p] == nil && flat[p+"/"] == nil {
			t.Errorf("flattened image has no %s", p)
		}
	}

	// Deterministic: the same rootfs gives the same digest.
	again, err := BuildImage(root)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same rootfs: digests %s and %s", d1, d2)
	}
}

func TestBuildImageOptions(t *testing.T) {
	root := mustRootfs(t)
	img, err := BuildImage(root, WithUser("fortran", 2000), WithWorkDir("/srv/data"), WithPackages("libquadmath*"))
	if err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	pkgs, _, _ := layerEntries(t, layers[LayerPackages])
	for _, n := range pkgs {
		if strings.Contains(n, "gfortran") {
			t.Errorf("packages layer has %q with only libquadmath* selected", n)
		}
	}
	work, headers, _ := layerEntries(t, layers[LayerWorkDir])
	if want := []string{"srv/", "srv/data/"}; !cmp.Equal(work, want) {
		t.Errorf("workdir layer = %q, want %q", work, want)
	}
	if h := headers["srv/"]; h.Uid != 0 {
		t.Errorf("/srv owned by %d, want root", h.Uid)
	}
	if h := headers["srv/data/"]; h.Uid != 2000 {
		t.Errorf("/srv/data owned by %d, want 2000", h.Uid)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "fortran" || cf.Config.WorkingDir != "/srv/data" {
		t.Errorf("config user %q workdir %q, want fortran /srv/data", cf.Config.User, cf.Config.WorkingDir)
	}
}

func TestBuildImagePlatform(t *testing.T) {
	for _, c := range []struct {
		machine       elf.Machine
		arch, variant string
		err           string
	}{
		{elf.EM_X86_64, "amd64", "", ""},
		{elf.EM_AARCH64, "arm64", "v8", ""},
		{elf.EM_RISCV, "", "", "want x86_64 or aarch64"},
	} {
		root := mustRootfs(t)
		if err := os.WriteFile(filepath.Join(root, "usr/local/bin/momentum"), minimalELF(t, c.machine), 0o755); err != nil {
			t.Fatal(err)
		}
		img, err := BuildImage(root)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("BuildImage with a %s program = %v, want an error containing %q", c.machine, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("BuildImage with a %s program: %v", c.machine, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != c.arch || cf.Variant != c.variant {
			t.Errorf("BuildImage with a %s program: platform %s/%s, want %s/%s", c.machine, cf.Architecture, cf.Variant, c.arch, c.variant)
		}
	}
}

func TestBuildImageErrors(t *testing.T) {
	root := mustRootfs(t)
	notELF := mustRootfs(t)
	if err := os.WriteFile(filepath.Join(notELF, "usr/local/bin/momentum"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		rootfs string
		opts   []Option
		want   string
	}{
		{"no program", root, []Option{WithProgram("/usr/bin/missing")}, "/usr/bin/missing"},
		{"program not ELF", notELF, nil, "bad magic"},
		{"relative program", root, []Option{WithProgram("usr/local/bin/momentum")}, "clean absolute"},
		{"no package matches", root, []Option{WithPackages("libstdc++*")}, "no path matches"},
		{"bad glob", root, []Option{WithPackages("[")}, "package glob"},
		{"root user", root, []Option{WithUser("root", 0)}, "non-root uid"},
		{"user exists", root, []Option{WithUser("root", 1000)}, "already in /etc/passwd"},
		{"workdir /", root, []Option{WithWorkDir("/")}, "other than /"},
		{"rootfs missing", filepath.Join(root, "nope"), nil, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildImage(c.rootfs, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("BuildImage(%s) = %v, want an error containing %q", c.name, err, c.want)
			}
		})
	}
}

// TestBuildImageFixture builds the demo image from the real fortran-merged
// fixture (Debian packages, gfortran-built momentum).
func TestBuildImageFixture(t *testing.T) {
	root := filepath.Join(testkit.Fixtures(t), "fortran-merged")
	img, err := BuildImage(root)
	if err != nil {
		t.Fatalf("BuildImage(%s): %v", root, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := layerEntries(t, layers[LayerBase])
	pkgs, _, _ := layerEntries(t, layers[LayerPackages])
	joined := func(l []string) string { return "\n" + strings.Join(l, "\n") + "\n" }
	for _, want := range []string{"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libgcc_s.so.1", "lib64 -> usr/lib64"} {
		if !strings.Contains(joined(base), "\n"+want+"\n") {
			t.Errorf("base layer lacks %q", want)
		}
	}
	for _, want := range []string{"usr/lib/x86_64-linux-gnu/libgfortran.so.5.0.0", "usr/lib/x86_64-linux-gnu/libquadmath.so.0.0.0"} {
		if !strings.Contains(joined(pkgs), "\n"+want+"\n") {
			t.Errorf("packages layer lacks %q", want)
		}
	}
	f, err := elf.Open(filepath.Join(root, "usr/local/bin/momentum"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(true, strings.Contains(strings.Join(libs, " "), "libgfortran.so.5")) {
		t.Errorf("fixture momentum needs %q, want libgfortran.so.5 among them", libs)
	}
}
