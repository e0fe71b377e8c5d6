package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/comingout/extract/internal/testkit"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// tf is one tar entry of a test layer.
type tf = testkit.File

func file(name, body string) tf      { return tf{Name: name, Body: body} }
func dir(name string) tf             { return tf{Name: name, Type: tar.TypeDir} }
func symlink(name, target string) tf { return tf{Name: name, Type: tar.TypeSymlink, Link: target} }
func hardlink(name, target string) tf {
	return tf{Name: name, Type: tar.TypeLink, Link: target}
}

// tarBytes writes the entries as a tar stream.
func tarBytes(t testing.TB, entries ...tf) []byte {
	t.Helper()
	return testkit.Tar(t, entries...)
}

// mustLayer makes a layer of the entries.
func mustLayer(t testing.TB, entries ...tf) v1.Layer {
	t.Helper()
	return testkit.FilesLayer(t, entries...)
}

// mustV1 builds an image of the layers, bottom first.
func mustV1(t testing.TB, layers ...[]tf) v1.Image {
	t.Helper()
	return testkit.Append(t, empty.Image, layers...)
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
	*testkit.Registry
	blobGets atomic.Int64
	requests atomic.Int64
}

func newRegistry(t testing.TB) *registryServer {
	t.Helper()
	rs := &registryServer{}
	rs.Registry = testkit.NewRegistry(t, func(r *http.Request) {
		rs.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			rs.blobGets.Add(1)
		}
	})
	return rs
}

// host returns "127.0.0.1:PORT".
func (rs *registryServer) host() string { return rs.Host() }

// push writes img to repo:tag on the registry and returns the reference.
func (rs *registryServer) push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	return rs.Push(t, repoTag, img)
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
	img, err := mutate.AppendLayers(empty.Image, testkit.Layer(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}
