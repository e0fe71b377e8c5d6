package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/pkg/image"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerFile is one tar entry of a test layer: a regular file (body, or the
// host file at from), a directory (dir) or a symlink (link).
type layerFile struct {
	name string
	body string
	from string
	link string
	dir  bool
	mode int64
}

// mustTar writes the entries as a tar stream.
func mustTar(t testing.TB, files ...layerFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		body := []byte(f.body)
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		case f.from != "":
			b, err := os.ReadFile(f.from)
			if err != nil {
				t.Skipf("host file for the test image: %v", err)
			}
			body = b
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if f.dir || f.link != "" {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", f.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mustImage builds an image from layers of files with the given config.
func mustImage(t testing.TB, cfg v1.Config, layers ...[]layerFile) v1.Image {
	t.Helper()
	img := empty.Image
	for _, files := range layers {
		b := mustTar(t, files...)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatalf("LayerFromOpener: %v", err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatalf("AppendLayers: %v", err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("ConfigFile: %v", err)
	}
	return img
}

// mustServe pushes img to an in-process registry and opens it with
// image.Open, as the CLI would.
func mustServe(t testing.TB, img v1.Image, opts ...image.Option) *image.Image {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/test/app:v1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing the test image: %v", err)
	}
	return mustOpen(t, ref, opts...)
}

func mustOpen(t testing.TB, ref string, opts ...image.Option) *image.Image {
	t.Helper()
	i, err := image.Open(context.Background(), ref, append([]image.Option{image.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatalf("image.Open(%q): %v", ref, err)
	}
	t.Cleanup(func() { i.Close() })
	return i
}

// mustGoBuild builds a static linux/amd64 program from one Go source file.
func mustGoBuild(t testing.TB, src string) string {
	t.Helper()
	return mustGoBuildArch(t, src, "amd64")
}

// mustGoBuildArch builds a static linux/goarch program from one Go source
// file.
func mustGoBuildArch(t testing.TB, src, goarch string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module prog\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prog")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// testBootstrap is a bootstrap provider for tests that need no real one: a
// recognizable body per architecture.
func testBootstrap(arch string) ([]byte, error) {
	return []byte("bootstrap for " + arch + "\n"), nil
}

// imageTestSource is a two-layer image whose ENTRYPOINT is a static Go
// program.
func imageTestSource(t *testing.T) v1.Image {
	t.Helper()
	prog := mustGoBuild(t, "package main\nfunc main() {}\n")
	return mustImage(t, v1.Config{
		Entrypoint: []string{"/app/run"},
		Env:        []string{"PATH=/usr/bin:/bin", "APP=1"},
		WorkingDir: "/work",
	}, []layerFile{
		{name: "app/", dir: true},
		{name: "app/run", from: prog, mode: 0o755},
	}, []layerFile{
		{name: "usr/", dir: true},
		{name: "usr/share/", dir: true},
		{name: "usr/share/big.dat", body: strings.Repeat("x", 4096)},
	})
}
