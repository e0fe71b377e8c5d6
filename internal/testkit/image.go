package testkit

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one tar entry of a test layer.
type File struct {
	// Name is the entry's path in the layer ("usr/bin/app"); a name ending
	// in "/" is a directory when Type is not set.
	Name string
	// Type is the tar type flag: 0 is a regular file (or a directory, see
	// Name), tar.TypeDir, tar.TypeSymlink, tar.TypeLink (hard link), ...
	Type byte
	// Body is a regular file's content, unless From is set.
	Body string
	// From is a host file whose content is the body.
	From string
	// Link is the target of a symbolic or hard link.
	Link string
	// Mode is the permission bits (with setuid, setgid, sticky). Default:
	// 0o755 for directories and symbolic links, 0o644 otherwise.
	Mode int64
}

// Tar writes the files as an uncompressed tar stream, every entry owned by
// root and dated 1970. A From file that cannot be read fails the test.
func Tar(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h, body := header(t, f)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("writing tar header %q: %v", f.Name, err)
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

// header is the tar header of f and, for a regular file, its body.
func header(t testing.TB, f File) (*tar.Header, []byte) {
	t.Helper()
	h := &tar.Header{Name: f.Name, Typeflag: f.Type, Linkname: f.Link, Mode: f.Mode, ModTime: time.Unix(0, 0)}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
		if strings.HasSuffix(f.Name, "/") {
			h.Typeflag = tar.TypeDir
		}
	}
	if h.Mode == 0 {
		h.Mode = 0o644
		if h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeSymlink {
			h.Mode = 0o755
		}
	}
	if h.Typeflag != tar.TypeReg {
		return h, nil
	}
	body := []byte(f.Body)
	if f.From != "" {
		b, err := os.ReadFile(f.From)
		if err != nil {
			t.Fatalf("reading the host file of %q: %v", f.Name, err)
		}
		body = b
	}
	h.Size = int64(len(body))
	return h, body
}

// Layer is an uncompressed layer of the tar bytes b (which may be broken,
// for tests of broken layers).
func Layer(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatalf("making a layer: %v", err)
	}
	return l
}

// FilesLayer is the layer of the files.
func FilesLayer(t testing.TB, files ...File) v1.Layer {
	t.Helper()
	return Layer(t, Tar(t, files...))
}

// Append stacks a layer of each file list on base (empty.Image for a new
// image), bottom first.
func Append(t testing.TB, base v1.Image, layers ...[]File) v1.Image {
	t.Helper()
	img := base
	for _, files := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, FilesLayer(t, files...)); err != nil {
			t.Fatalf("appending a layer: %v", err)
		}
	}
	return img
}

// Configure sets img's config and its platform ("linux/amd64").
func Configure(t testing.TB, img v1.Image, platform string, cfg v1.Config) v1.Image {
	t.Helper()
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.Config = p.OS, p.Architecture, p.Variant, cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("setting the config: %v", err)
	}
	return img
}

// Image is a linux/amd64 image of a layer per file list with config cfg.
func Image(t testing.TB, cfg v1.Config, layers ...[]File) v1.Image {
	t.Helper()
	return Configure(t, Append(t, empty.Image, layers...), "linux/amd64", cfg)
}

// FixtureImage is the image of the Debian fixture name (see
// testdata/make-fixtures.sh and imagebuild.Fixture), and its platform.
// Without the fixtures the test is skipped (see Fixtures).
func FixtureImage(t testing.TB, name string) (v1.Image, string) {
	t.Helper()
	dir := Fixtures(t)
	fc, err := imagebuild.ReadFixtureConfig(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Fixture(dir, name)
	if err != nil {
		t.Fatalf("building the image of fixture %q: %v", name, err)
	}
	return img, fc.Platform
}

// DockerArchive writes img as `docker save` does, tagged
// example.com/base:v1, to a file base+".tar" in a temporary directory and
// returns its path.
func DockerArchive(t testing.TB, img v1.Image, base string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), base+".tar")
	tag, err := name.NewTag("example.com/" + base + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatalf("writing the docker archive: %v", err)
	}
	return p
}

// OCILayout writes img as an OCI image layout in a directory base of a
// temporary directory and returns the directory.
func OCILayout(t testing.TB, img v1.Image, base string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), base)
	if err := writeLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TempLayout writes img as an OCI image layout in a new temporary
// directory, which the caller removes, and returns it: for examples, which
// have no testing.TB.
func TempLayout(img v1.Image) (string, error) {
	dir, err := os.MkdirTemp("", "extract-example-layout-")
	if err != nil {
		return "", err
	}
	if err := writeLayout(dir, img); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func writeLayout(dir string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	return nil
}

// Registry is an in-process registry (go-containerregistry's) that lets a
// test watch the requests it serves.
type Registry struct {
	*httptest.Server
}

// NewRegistry starts a registry, stopped when the test ends. watch, if not
// nil, sees every request before it is served (it may be called
// concurrently).
func NewRegistry(t testing.TB, watch func(*http.Request)) *Registry {
	t.Helper()
	serving := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if watch != nil {
			watch(req)
		}
		serving.ServeHTTP(w, req)
	}))}
	t.Cleanup(r.Close)
	return r
}

// Host returns the registry's "127.0.0.1:PORT".
func (r *Registry) Host() string {
	return strings.TrimPrefix(r.URL, "http://")
}

// Push writes img as repoTag ("test/app:v1") and returns the full reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := fmt.Sprintf("%s/%s", r.Host(), repoTag)
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(parsed, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

var shared struct {
	once sync.Once
	srv  *httptest.Server
}

// Push writes img to a registry shared by the whole test binary, as
// REPO:latest with REPO named after its digest, and returns the reference.
func Push(t testing.TB, img v1.Image) string {
	t.Helper()
	shared.once.Do(func() {
		shared.srv = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	})
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	r := &Registry{Server: shared.srv}
	return r.Push(t, "test/"+d.Hex[:16]+":latest", img)
}

// ProgramImage is a two-layer linux/amd64 image whose ENTRYPOINT is a
// static Go program, /app/run (doing nothing), with a 4 KiB data file in
// the second layer.
func ProgramImage(t testing.TB) v1.Image {
	t.Helper()
	prog := GoProgram(t, "package main\nfunc main() {}\n", "amd64")
	return Image(t, v1.Config{
		Entrypoint: []string{"/app/run"},
		Env:        []string{"PATH=/usr/bin:/bin", "APP=1"},
		WorkingDir: "/work",
	}, []File{
		{Name: "app/"},
		{Name: "app/run", From: prog, Mode: 0o755},
	}, []File{
		{Name: "usr/"},
		{Name: "usr/share/"},
		{Name: "usr/share/big.dat", Body: strings.Repeat("x", 4096)},
	})
}

// TarEntry is one entry read back from a tar stream.
type TarEntry struct {
	Header *tar.Header
	Body   []byte
}

// ReadTar reads every entry of the tar stream r, in order.
func ReadTar(t testing.TB, r io.Reader) []TarEntry {
	t.Helper()
	var out []TarEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %q from the tar stream: %v", h.Name, err)
		}
		out = append(out, TarEntry{Header: h, Body: b})
	}
}
