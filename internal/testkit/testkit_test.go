package testkit

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// recorder is a testing.TB that records Skip and Fatal instead of ending
// the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                          {}
func (r *recorder) Skip(args ...any)                 { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatal(args ...any)                { r.failed = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		ci   string
		fail bool
	}{{"", false}, {"false", false}, {"0", false}, {"true", true}, {"1", true}} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			Missing(r, "moto_server not found on PATH", "run make deps")
			got, other := r.skipped, r.failed
			if tt.fail {
				got, other = other, got
			}
			if !strings.Contains(got, "moto_server not found on PATH (run make deps)") || other != "" {
				t.Errorf("skipped %q, failed %q; want the message in the %s",
					r.skipped, r.failed, map[bool]string{true: "failure", false: "skip"}[tt.fail])
			}
		})
	}
}

func TestRoot(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	Root(r, "chroot")
	if root := os.Geteuid() == 0; root != (r.failed == "") {
		t.Errorf("as uid %d: failed %q", os.Geteuid(), r.failed)
	}
}

func TestTool(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	if p := Tool(r, "sh", "-"); r.skipped != "" || !filepath.IsAbs(p) {
		t.Errorf("Tool(sh) = %q, skipped %q", p, r.skipped)
	}
	Tool(r, "no-such-tool-extract", "install it")
	if !strings.Contains(r.skipped, "no-such-tool-extract not found on PATH (install it)") {
		t.Errorf("Tool(missing) skipped %q", r.skipped)
	}
}

func TestFixtures(t *testing.T) {
	t.Setenv("CI", "")
	dir := t.TempDir()
	t.Setenv(FixturesEnv, dir)
	if got := Fixtures(t); got != dir {
		t.Errorf("Fixtures = %q, want %q", got, dir)
	}
	t.Setenv(FixturesEnv, filepath.Join(dir, "missing"))
	r := &recorder{TB: t}
	Fixtures(r)
	if !strings.Contains(r.skipped, "make fixtures") {
		t.Errorf("Fixtures with a missing directory skipped %q, want advice to run make fixtures", r.skipped)
	}
}

// TestFixturesNeverBuilds: without EXTRACT_FIXTURES and a built
// testdata/fixtures, Fixtures skips; it does not run make-fixtures.sh.
func TestFixturesNeverBuilds(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(FixturesEnv, "")
	stamp := filepath.Join(RepoRoot(t), "testdata", "fixtures", ".stamp")
	if _, err := os.Stat(stamp); err == nil {
		t.Skip("testdata/fixtures is built here")
	}
	r := &recorder{TB: t}
	Fixtures(r)
	if !strings.Contains(r.skipped, "EXTRACT_FIXTURES is not set") {
		t.Errorf("skipped %q", r.skipped)
	}
	if _, err := os.Stat(stamp); err == nil {
		t.Error("Fixtures built testdata/fixtures")
	}
}

func TestTar(t *testing.T) {
	host := WriteFile(t, filepath.Join(t.TempDir(), "h"), []byte("from host"))
	b := Tar(t,
		File{Name: "d/"},
		File{Name: "d/f", Body: "body", Mode: 0o4755},
		File{Name: "d/h", From: host},
		File{Name: "l", Type: tar.TypeSymlink, Link: "d/f"},
		File{Name: "hl", Type: tar.TypeLink, Link: "d/f"},
	)
	var got []string
	for _, e := range ReadTar(t, bytes.NewReader(b)) {
		h := e.Header
		got = append(got, fmt.Sprintf("%s %c %o %q %s", h.Name, h.Typeflag, h.Mode, e.Body, h.Linkname))
	}
	want := []string{
		`d/ 5 755 "" `,
		`d/f 0 4755 "body" `,
		`d/h 0 644 "from host" `,
		`l 2 755 "" d/f`,
		`hl 1 644 "" d/f`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Tar entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestZip(t *testing.T) {
	b := Zip(t, ZipFile{Name: "bootstrap", Mode: 0o755, Body: []byte("#!/bin/sh\n")}, ZipFile{Name: "data", Body: []byte("x"), Store: true})
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		got = append(got, fmt.Sprintf("%s %o %d", f.Name, f.Mode().Perm(), f.Method))
	}
	if want := "bootstrap 755 8,data 644 0"; strings.Join(got, ",") != want {
		t.Errorf("Zip entries %q, want %q", strings.Join(got, ","), want)
	}
}

func TestImagePushed(t *testing.T) {
	img := Image(t, v1.Config{Entrypoint: []string{"run"}}, []File{{Name: "run", Body: "x", Mode: 0o755}})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Entrypoint[0] != "run" {
		t.Errorf("config %s/%s %v", cf.OS, cf.Architecture, cf.Config.Entrypoint)
	}
	var gets atomic.Int64
	reg := NewRegistry(t, func(*http.Request) { gets.Add(1) })
	if ref := reg.Push(t, "test/app:v1", img); !strings.HasPrefix(ref, reg.Host()+"/test/app:v1") || gets.Load() == 0 {
		t.Errorf("Push = %q after %d requests", ref, gets.Load())
	}
}

func TestGoProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	p := GoProgram(t, "package main\n\nfunc main() { println(\"built\") }\n", "")
	out, err := exec.Command(p).CombinedOutput()
	if err != nil || string(out) != "built\n" {
		t.Errorf("running the program: %v, %q", err, out)
	}
}

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(dir, "top"), []byte("1"))
	WriteFile(t, filepath.Join(dir, "a", "b", "deep"), []byte("2"))
	got := ReadTree(t, dir)
	if len(got) != 2 || got["top"] != "1" || got["a/b/deep"] != "2" {
		t.Errorf("ReadTree = %q", got)
	}
}

// TestBuildOnce: the bootstrap is built once per test binary and
// architecture, as a static linux program.
func TestBuildOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	a := GoBuild(t, Bootstrap, "arm64")
	b := GoBuild(t, Bootstrap, "arm64")
	if len(a) == 0 || &a[0] != &b[0] {
		t.Error("the second GoBuild of the same package and architecture built again")
	}
	if a[0] != 0x7f || string(a[1:4]) != "ELF" || a[18] != 0xb7 { // e_machine EM_AARCH64
		t.Errorf("GoBuild(%s, arm64) is not an aarch64 ELF file", Bootstrap)
	}
}
