package lambda

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// runScript is the entrypoint of the dash test image: it prints its
// arguments and input, then where its loader and libc were mapped from.
const runScript = `#!/bin/sh -e
echo "args: $*"
while read -r line; do echo "in: $line"; done
while read -r m; do
	case "$m" in
	*libc.so.6) echo "libc ${m##* }" ;;
	*ld-linux-x86-64.so.2) echo "ld ${m##* }" ;;
	esac
done </proc/self/maps
`

// dashImage is a two-layer image of real host files: dash, its libc and
// loader in a merged-/usr layout with Debian's absolute loader symlink, and
// a script entrypoint.
func dashImage(t testing.TB) v1.Image {
	const gnu = "usr/lib/x86_64-linux-gnu/"
	base := []testkit.File{
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/bin/", Type: tar.TypeDir},
		{Name: "usr/lib/", Type: tar.TypeDir},
		{Name: gnu, Type: tar.TypeDir},
		{Name: "usr/lib64/", Type: tar.TypeDir},
		{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
		{Name: "lib", Type: tar.TypeSymlink, Link: "usr/lib"},
		{Name: "lib64", Type: tar.TypeSymlink, Link: "usr/lib64"},
		{Name: "usr/bin/dash", From: "/usr/bin/dash", Mode: 0o755},
		{Name: "usr/bin/sh", Type: tar.TypeSymlink, Link: "dash"},
		{Name: gnu + "libc.so.6", From: "/lib/x86_64-linux-gnu/libc.so.6", Mode: 0o755},
		{Name: gnu + "ld-linux-x86-64.so.2", From: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Mode: 0o755},
		{Name: "usr/lib64/ld-linux-x86-64.so.2", Type: tar.TypeSymlink, Link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{Name: "usr/share/", Type: tar.TypeDir},
		{Name: "usr/share/unrelated.txt", Body: strings.Repeat("not needed\n", 1000)},
	}
	app := []testkit.File{
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/run.sh", Body: runScript, Mode: 0o700},
		{Name: "app/data.txt", Body: "not needed"},
	}
	return testkit.Image(t, v1.Config{
		Entrypoint: []string{"/app/run.sh"},
		Cmd:        []string{"first", "second"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi"},
		WorkingDir: "/app",
		User:       "nobody",
	}, base, app)
}

func mustPackage(t testing.TB, img *image.Image, opts ...PackageOption) ([]byte, *PackageResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Package(context.Background(), img, &buf, opts...)
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	return buf.Bytes(), res
}

func zipIndex(t testing.TB, b []byte) map[string]zipFile {
	t.Helper()
	m := map[string]zipFile{}
	for _, f := range mustReadZip(t, b) {
		m[f.Name] = f
	}
	return m
}

func TestPackageDash(t *testing.T) {
	img := imagetest.Serve(t, dashImage(t))
	b, res := mustPackage(t, img, WithBootstrap(testBootstrap), WithToolVersion("v1.2.3"))

	if got := mustReadZip(t, b); !isSorted(got) {
		t.Errorf("zip entries are not sorted: %v", names(got))
	}
	files := zipIndex(t, b)
	linkDir := res.Manifest.LinkDir
	if !regexp.MustCompile(`^/tmp/x[0-9a-f]{10}$`).MatchString(linkDir) {
		t.Fatalf("LinkDir = %q, want /tmp/x and 10 hex digits", linkDir)
	}
	const (
		reg = 0o100000
		lnk = 0o120000
	)
	const gnu = "rootfs/usr/lib/x86_64-linux-gnu/"
	want := map[string]struct {
		unix    uint32
		content string // for symlinks and small files; "" skips
	}{
		"bootstrap":                             {reg | 0o755, "bootstrap for amd64\n"},
		"ld.so":                                 {lnk | 0o777, "rootfs/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		"rootfs/bin":                            {lnk | 0o777, "usr/bin"},
		"rootfs/lib":                            {lnk | 0o777, "usr/lib"},
		"rootfs/lib64":                          {lnk | 0o777, "usr/lib64"},
		"rootfs/usr/bin/sh":                     {lnk | 0o777, "dash"},
		"rootfs/usr/lib64/ld-linux-x86-64.so.2": {lnk | 0o777, "../../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		"rootfs/usr/bin/dash":                   {reg | 0o755, ""},
		gnu + "libc.so.6":                       {reg | 0o755, ""},
		gnu + "ld-linux-x86-64.so.2":            {reg | 0o755, ""},
		"rootfs/app/run.sh":                     {reg | 0o755, "#!" + linkDir + "/rootfs/bin/sh -e\n" + strings.SplitN(runScript, "\n", 2)[1]},
		"extract.json":                          {reg | 0o644, ""},
	}
	for name, w := range want {
		f, ok := files[name]
		if !ok {
			t.Errorf("zip has no %q", name)
			continue
		}
		if f.Unix != w.unix {
			t.Errorf("%s: mode %o, want %o", name, f.Unix, w.unix)
		}
		if w.content != "" && f.Content != w.content {
			t.Errorf("%s: content %q, want %q", name, f.Content, w.content)
		}
	}
	for _, absent := range []string{"rootfs/usr/share/unrelated.txt", "rootfs/app/data.txt", "ld1.so"} {
		if _, ok := files[absent]; ok {
			t.Errorf("zip has %q, which is not in the closure", absent)
		}
	}
	for _, dir := range []string{"rootfs/", "rootfs/app/", "rootfs/usr/lib/x86_64-linux-gnu/"} {
		if f := files[dir]; f.Mode != fs.ModeDir|0o755 {
			t.Errorf("directory %q: mode %v, want drwxr-xr-x", dir, f.Mode)
		}
	}

	// Every ELF with a loader now names the bundle's.
	dash, info := mustHostELF(t, "/usr/bin/dash")
	patched := []byte(files["rootfs/usr/bin/dash"].Content)
	if got, _ := progInterp(t, patched); got != linkDir+"/ld.so" {
		t.Errorf("PT_INTERP of dash = %q, want %q", got, linkDir+"/ld.so")
	}
	off, end := info.InterpOffset, info.InterpOffset+info.InterpSize
	if !bytes.Equal(patched[:off], dash[:off]) || !bytes.Equal(patched[end:], dash[end:]) {
		t.Error("dash changed outside PT_INTERP")
	}

	var m xruntime.Manifest
	if err := json.Unmarshal([]byte(files["extract.json"].Content), &m); err != nil {
		t.Fatalf("extract.json: %v", err)
	}
	wantM := xruntime.Manifest{
		Version: 1, Tool: "v1.2.3", Image: img.Ref, Digest: img.Digest, Platform: "linux/amd64",
		Program: "/app/run.sh", Args: []string{"/app/run.sh", "first", "second"},
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi"},
		WorkDir: "/app", User: "nobody",
		LibraryPath: res.Closure.LibraryPath,
		LinkDir:     linkDir,
		Input:       xruntime.Input{Mode: "stdin", Prefix: "input/", Suffix: ".csv"},
		Output:      xruntime.Output{Prefix: "output/", Stdout: "file"},
	}
	if diff := cmp.Diff(wantM, m); diff != "" {
		t.Errorf("extract.json (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantM, res.Manifest); diff != "" {
		t.Errorf("PackageResult.Manifest (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(m.LibraryPath, ":"), "x86_64-linux-gnu") {
		t.Errorf("LibraryPath = %q, want the libc directory", m.LibraryPath)
	}

	sum := sha256.Sum256(b)
	if res.CodeSHA256 != base64.StdEncoding.EncodeToString(sum[:]) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("CodeSHA256, SHA256 = %q, %q; want the zip's digest", res.CodeSHA256, res.SHA256)
	}
	if res.ZippedSize != int64(len(b)) || res.Arch != "x86_64" {
		t.Errorf("ZippedSize, Arch = %d, %q; want %d, x86_64", res.ZippedSize, res.Arch, len(b))
	}
	var unzipped int64
	nfiles := 0
	for _, f := range files {
		unzipped += int64(len(f.Content))
		if !f.Mode.IsDir() {
			nfiles++
		}
	}
	if res.UnzippedSize != unzipped || res.Files != nfiles {
		t.Errorf("UnzippedSize, Files = %d, %d; want %d, %d", res.UnzippedSize, res.Files, unzipped, nfiles)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("Warnings = %q, want none", res.Warnings)
	}
}

// TestPackageRuns unpacks the dash package and runs its script the way the
// bootstrap does (runtime.Setup, Environ, ProgramPath): the kernel must start
// the bundled shell through the bundled loader and libc.
func TestPackageRuns(t *testing.T) {
	img := imagetest.Serve(t, dashImage(t))
	b, res := mustPackage(t, img, WithBootstrap(testBootstrap))
	root := mustUnzip(t, b, t.TempDir())
	m, err := xruntime.LoadManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := xruntime.Setup(m, root); err != nil {
		t.Fatalf("runtime.Setup: %v", err)
	}
	t.Cleanup(func() { os.Remove(res.Manifest.LinkDir) })
	prog, err := xruntime.ProgramPath(m, root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: prog, Args: m.Args, Env: xruntime.Environ(m, root, []string{"HOME=/tmp"}), Dir: root}
	cmd.Stdin = strings.NewReader("mass,velocity\n10,2.5\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %s: %v\n%s", prog, err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if diff := cmp.Diff([]string{"args: first second", "in: mass,velocity", "in: 10,2.5"}, lines[:3]); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	realRoot, _ := filepath.EvalSymlinks(root)
	seen := map[string]bool{}
	for _, l := range lines[3:] {
		kind, file, _ := strings.Cut(l, " ")
		seen[kind] = true
		if !strings.HasPrefix(file, realRoot+"/rootfs/") {
			t.Errorf("%s mapped from %q, want a file under %s/rootfs", kind, file, realRoot)
		}
	}
	if !seen["ld"] || !seen["libc"] {
		t.Errorf("maps show loader %v, libc %v; want both from the bundle:\n%s", seen["ld"], seen["libc"], out)
	}
}

func mustUnzip(t testing.TB, b []byte, dir string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(p, mode.Perm()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if mode&fs.ModeSymlink != 0 {
			err = os.Symlink(string(body), p)
		} else {
			err = os.WriteFile(p, body, mode.Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPackageDeterministic(t *testing.T) {
	img := imagetest.Serve(t, dashImage(t))
	first, r1 := mustPackage(t, img, WithBootstrap(testBootstrap))
	again := imagetest.Serve(t, dashImage(t))
	_, r2 := mustPackage(t, again, WithBootstrap(testBootstrap))
	if r1.Manifest.Digest != r2.Manifest.Digest {
		t.Fatalf("the same image built twice has digests %s and %s", r1.Manifest.Digest, r2.Manifest.Digest)
	}
	// The reference differs (another registry port), so the manifests do;
	// with the same reference the bytes must be the same.
	third, r3 := mustPackage(t, img, WithBootstrap(testBootstrap))
	if !bytes.Equal(first, third) || r1.CodeSHA256 != r3.CodeSHA256 {
		t.Error("two Package runs of the same image gave different zips")
	}
	if r1.Manifest.LinkDir != r2.Manifest.LinkDir {
		t.Errorf("LinkDir depends on the reference: %q vs %q", r1.Manifest.LinkDir, r2.Manifest.LinkDir)
	}

	out := filepath.Join(t.TempDir(), "function.zip")
	res, err := PackageFile(context.Background(), img, out, WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatalf("PackageFile: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) || res.CodeSHA256 != r1.CodeSHA256 {
		t.Error("PackageFile wrote other bytes than Package")
	}

	// Settings change LinkDir: two packages of one image with different
	// settings never share a link.
	_, r4 := mustPackage(t, img, WithBootstrap(testBootstrap), WithSuffix(".tsv"))
	if r4.Manifest.LinkDir == r1.Manifest.LinkDir {
		t.Errorf("LinkDir %q did not change with the input suffix", r4.Manifest.LinkDir)
	}
}

func TestPackageStatic(t *testing.T) {
	prog := testkit.GoProgram(t, `package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	s := bufio.NewScanner(os.Stdin)
	for s.Scan() {
		fmt.Println(strings.ToUpper(s.Text()))
	}
}
`, "amd64")
	img := imagetest.Serve(t, testkit.Image(t, v1.Config{Entrypoint: []string{"upper"}, Env: []string{"PATH=/usr/local/bin"}},
		[]testkit.File{{Name: "usr/local/bin/upper", From: prog, Mode: 0o755}, {Name: "etc/motd", Body: "hi"}}))
	b, res := mustPackage(t, img, WithBootstrap(testBootstrap), WithInput("file"), WithStdout("pipe"), WithOutput("out-bucket", "results/", ".out"), WithWritableWorkDir(true))
	var got []string
	for _, f := range mustReadZip(t, b) {
		got = append(got, f.Name)
	}
	want := []string{"bootstrap", "extract.json", "rootfs/", "rootfs/usr/", "rootfs/usr/local/", "rootfs/usr/local/bin/", "rootfs/usr/local/bin/upper"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zip entries (-want +got):\n%s", diff)
	}
	m := res.Manifest
	if m.LinkDir != "" || m.Program != "/usr/local/bin/upper" || m.Input.Mode != "file" || !m.WritableWorkDir || m.Output != (xruntime.Output{Bucket: "out-bucket", Prefix: "results/", Suffix: ".out", Stdout: "pipe"}) {
		t.Errorf("Manifest = %+v; want no LinkDir, program /usr/local/bin/upper, file input, writable workdir, output out-bucket/results/…​.out through a pipe", m)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "{input}") {
		t.Errorf("Warnings = %q, want one about the missing {input}", res.Warnings)
	}
	orig, _ := os.ReadFile(prog)
	if f := zipIndex(t, b)["rootfs/usr/local/bin/upper"]; f.Content != string(orig) {
		t.Error("the static program was changed")
	}
}

func TestPackageTooBig(t *testing.T) {
	img := imagetest.Serve(t, dashImage(t))
	out := filepath.Join(t.TempDir(), "function.zip")
	_, err := PackageFile(context.Background(), img, out, WithBootstrap(testBootstrap), withMaxUnzipped(1<<20))
	var se *SizeError
	if !errors.As(err, &se) {
		t.Fatalf("Package over the limit = %v, want *SizeError", err)
	}
	if len(se.Biggest) == 0 || se.Biggest[0].Path != "/usr/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("Biggest = %v, want libc.so.6 first", se.Biggest)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("PackageFile left %v behind", entries)
	}
}

func TestPackageOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []PackageOption
		ok   bool
	}{
		{"defaults", nil, true},
		{"input file", []PackageOption{WithInput("file")}, true},
		{"bad input mode", []PackageOption{WithInput("pipe")}, false},
		{"empty output prefix", []PackageOption{WithOutput("", "", "")}, false},
		{"bad bucket", []PackageOption{WithOutput("My_Bucket", "out/", "")}, false},
		{"no input prefix loops", []PackageOption{WithPrefix("")}, false},
		{"no input prefix, other bucket", []PackageOption{WithPrefix(""), WithOutput("other-bucket", "output/", "")}, true},
		{"no input prefix, output suffix leaves the filter", []PackageOption{WithPrefix(""), WithOutput("", "output/", ".out")}, true},
		{"output under the input prefix", []PackageOption{WithOutput("", "input/results/", "")}, false},
		{"output suffix ends in the input suffix", []PackageOption{WithPrefix(""), WithOutput("", "output/", ".out.csv")}, false},
		{"output suffix a tail of the input suffix", []PackageOption{WithPrefix(""), WithOutput("", "output/", "sv")}, true},
		{"no input suffix", []PackageOption{WithPrefix(""), WithSuffix(""), WithOutput("", "output/", ".out")}, false},
		{"nil bootstrap", []PackageOption{WithBootstrap(nil)}, false},
		{"empty tool version", []PackageOption{WithToolVersion("")}, false},
		{"control character", []PackageOption{WithSuffix(".csv\n")}, false},
		{"empty entrypoint", []PackageOption{WithCommandOverride(image.Override{Entrypoint: []string{""}, EntrypointSet: true})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := makePackageOptions(tt.opts...)
			if (err == nil) != tt.ok {
				t.Errorf("makePackageOptions(%s) = %v, want ok %v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestBundleTarget(t *testing.T) {
	tests := []struct{ link, target, want string }{
		{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{"/bin", "usr/bin", "usr/bin"},
		{"/usr/bin/sh", "dash", "dash"},
		{"/usr/lib/libx.so", "../../lib/libx.so.1", "../../lib/libx.so.1"},
		{"/usr/lib/libx.so", "../../../../lib/libx.so.1", "../../lib/libx.so.1"},
		{"/etc/alternatives/awk", "/usr/bin/mawk", "../../usr/bin/mawk"},
		{"/a", "/", "."},
		{"/x/y", "/x/y/z", "y/z"},
		{"/usr/bin/python3", "/usr/bin/python3.11", "python3.11"},
	}
	for _, tt := range tests {
		if got := bundleTarget(tt.link, tt.target); got != tt.want {
			t.Errorf("bundleTarget(%q, %q) = %q, want %q", tt.link, tt.target, got, tt.want)
		}
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		mode int64
		want fs.FileMode
	}{
		{0o755, 0o755}, {0o700, 0o755}, {0o600, 0o644}, {0o644, 0o644}, {0o4755, 0o755}, {0o100, 0o555}, {0o440, 0o444},
	}
	for _, tt := range tests {
		if got := fileMode(tt.mode); got != tt.want {
			t.Errorf("fileMode(%o) = %o, want %o", tt.mode, got, tt.want)
		}
	}
}

func isSorted(files []zipFile) bool {
	for i := 1; i < len(files); i++ {
		if files[i-1].Name >= files[i].Name {
			return false
		}
	}
	return true
}

func names(files []zipFile) []string {
	var n []string
	for _, f := range files {
		n = append(n, f.Name)
	}
	return n
}

func TestPackageIncludeExclude(t *testing.T) {
	img := imagetest.Serve(t, dashImage(t))
	b, res := mustPackage(t, img, WithBootstrap(testBootstrap),
		WithClosureOptions(image.WithInclude("/usr/share"), image.WithInclude("/app/*.txt")))
	files := zipIndex(t, b)
	for _, name := range []string{"rootfs/usr/share/", "rootfs/usr/share/unrelated.txt", "rootfs/app/data.txt"} {
		if _, ok := files[name]; !ok {
			t.Errorf("zip has no %q, included", name)
		}
	}
	if f := files["rootfs/app/data.txt"]; f.Content != "not needed" || f.Unix != 0o100644 {
		t.Errorf("rootfs/app/data.txt = %q mode %o, want its content, 0644", f.Content, f.Unix)
	}
	if res.Closure == nil || len(res.Closure.Files) == 0 {
		t.Fatal("no closure in the result")
	}

	b, _ = mustPackage(t, img, WithBootstrap(testBootstrap), WithClosureOptions(image.WithInclude("/usr/share"), image.WithExclude("/usr/share/unrelated.txt")))
	files = zipIndex(t, b)
	if _, ok := files["rootfs/usr/share/unrelated.txt"]; ok {
		t.Error("zip has the excluded rootfs/usr/share/unrelated.txt")
	}

	// Excluding the loader is refused by the closure, before any zip.
	var buf bytes.Buffer
	if _, err := Package(context.Background(), img, &buf, WithBootstrap(testBootstrap), WithClosureOptions(image.WithExclude("/usr/lib/x86_64-linux-gnu/ld-*"))); err == nil {
		t.Error("Package excluding the loader succeeded, want an error")
	}
	if buf.Len() != 0 {
		t.Errorf("Package wrote %d bytes before failing", buf.Len())
	}
}
