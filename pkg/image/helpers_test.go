package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tf is one tar entry of a test layer. typ: 0 regular (default), '5' dir,
// '2' symlink, '1' hardlink.
type tf struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func file(name, body string) tf      { return tf{name: name, body: body} }
func dir(name string) tf             { return tf{name: name, typ: tar.TypeDir} }
func symlink(name, target string) tf { return tf{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) tf {
	return tf{name: name, typ: tar.TypeLink, link: target}
}

// tarBytes writes the entries as a tar stream.
func tarBytes(t testing.TB, entries ...tf) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(0, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("writing tar header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mustLayer makes a gzip layer of the entries.
func mustLayer(t testing.TB, entries ...tf) v1.Layer {
	t.Helper()
	b := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatalf("tarball.LayerFromOpener: %v", err)
	}
	return l
}

// mustV1 builds an image of the layers, bottom first.
func mustV1(t testing.TB, layers ...[]tf) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, es := range layers {
		ls = append(ls, mustLayer(t, es...))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatalf("mutate.AppendLayers: %v", err)
	}
	return img
}

// withPlatform sets the config platform of img.
func withPlatform(t testing.TB, img v1.Image, os, arch, variant string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = os, arch, variant
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fromV1 wraps an in-memory image as an *Image, as Open does for local
// sources.
func fromV1(t testing.TB, img v1.Image) *Image {
	t.Helper()
	o, err := makeOptions(WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	i := &Image{Ref: "test", img: img, opts: o}
	if err := i.describe(); err != nil {
		t.Fatalf("describe: %v", err)
	}
	return i
}

// mustIndex builds the index of the layers.
func mustIndex(t testing.TB, layers ...[]tf) (*Image, *Index) {
	t.Helper()
	img := fromV1(t, mustV1(t, layers...))
	idx, err := BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatalf("BuildIndex: %v", err)
	}
	return img, idx
}

// registryServer is an in-process registry counting requests by method and
// path kind.
type registryServer struct {
	*httptest.Server
	blobGets atomic.Int64
	requests atomic.Int64
}

func newRegistry(t testing.TB) *registryServer {
	t.Helper()
	rs := &registryServer{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			rs.blobGets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rs.Close)
	return rs
}

// host returns "127.0.0.1:PORT".
func (rs *registryServer) host() string {
	return strings.TrimPrefix(rs.URL, "http://")
}

// push writes img to repo:tag on the registry and returns the reference.
func (rs *registryServer) push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := fmt.Sprintf("%s/%s", rs.host(), repoTag)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// listing renders the index as one line per entry, for comparisons.
func listing(t testing.TB, idx *Index) []string {
	t.Helper()
	var out []string
	err := idx.Walk(func(e *Entry) error {
		s := e.Path
		switch e.Kind {
		case Dir:
			s += "/"
		case Symlink:
			s += " -> " + e.Target
		case Regular:
			s += fmt.Sprintf(" [%d:%s]", e.Source.Layer, e.Source.Name)
		case Other:
			s += " (other)"
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contents extracts the regular files of idx and returns path → content.
func contents(t testing.TB, img *Image, idx *Index) map[string]string {
	t.Helper()
	var es []*Entry
	idx.Walk(func(e *Entry) error {
		if e.Kind == Regular {
			es = append(es, e)
		}
		return nil
	})
	out := map[string]string{}
	err := Extract(context.Background(), img, idx, es, func(e *Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		out[e.Path] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return out
}

// mustV1Raw builds a one-layer image from raw (possibly broken) tar bytes.
func mustV1Raw(t testing.TB, b []byte) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
