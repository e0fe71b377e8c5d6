package benchimage

import (
	"archive/tar"
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/comingout/extract/pkg/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func tinyImage(t *testing.T) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, body := range []string{"one", "two"} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "etc/" + body, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
		tw.Close()
		ls = append(ls, static.NewLayer(b.Bytes(), types.DockerUncompressedLayer))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestArchives: the docker save and oci-archive files the benchmark
// packages are archives extract reads: the same layers (diff IDs), and for
// the oci-archive the same digest.
func TestArchives(t *testing.T) {
	img := tinyImage(t)
	dir := t.TempDir()
	save := filepath.Join(dir, "save.tar")
	if err := WriteDockerSave(img, "bench.local/x:v1", save); err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(dir, "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(dir, "oci.tar")
	if err := WriteOCIArchive(lay, oci); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	want, _ := img.Digest()
	for _, ref := range []string{"docker-archive:" + save, "oci-archive:" + oci} {
		got, err := image.Open(context.Background(), ref)
		if err != nil {
			t.Fatalf("Open(%q): %v", ref, err)
		}
		if len(got.Layers) != 2 || got.Layers[1].DiffID != cfg.RootFS.DiffIDs[1].String() {
			t.Errorf("Open(%q) layers = %+v, want the diff IDs %v", ref, got.Layers, cfg.RootFS.DiffIDs)
		}
		if ref[0] == 'o' && got.Digest != want.String() {
			t.Errorf("Open(%q).Digest = %s, want %s", ref, got.Digest, want)
		}
		got.Close()
	}
}
