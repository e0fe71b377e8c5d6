package image_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

// tarLayer makes a layer of regular files (name -> size in bytes, content
// distinct per layer) and directories (names ending in "/").
func tarLayer(t *testing.T, seed byte, entries ...string) v1.Layer {
	t.Helper()
	var files []testkit.File
	for i := 0; i < len(entries); i += 2 {
		files = append(files, testkit.File{Name: entries[i], Body: strings.Repeat(string(seed), len(entries[i+1]))})
	}
	return testkit.FilesLayer(t, files...)
}

func TestLayerReport(t *testing.T) {
	big := string(bytes.Repeat([]byte{'x'}, 1000))
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: tarLayer(t, 'a', "data/", "", "data/big", big, "data/keep", "0123456789"), History: v1.History{CreatedBy: "ADD data /data"}},
		mutate.Addendum{Layer: tarLayer(t, 'b', "data/", "", "data/big", big[:400]), History: v1.History{CreatedBy: "RUN shrink big"}},
		mutate.Addendum{Layer: tarLayer(t, 'c', "data/", "", "data/.wh.keep", ""), History: v1.History{CreatedBy: "RUN rm /data/keep"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := openImage(t, img, "linux/amd64")
	rep, err := image.LayerReport(context.Background(), im)
	if err != nil {
		t.Fatalf("LayerReport: %v", err)
	}
	// dive: /data/big has copies of 1000 and 400 bytes, /data/keep one of
	// 10 bytes and a whiteout (counted as 0): the smallest copies add up to
	// 400 of 1410 bytes.
	if want := 400.0 / 1410.0; math.Abs(rep.Efficiency-want) > 1e-9 {
		t.Errorf("Efficiency = %v, want %v", rep.Efficiency, want)
	}
	if rep.WastedBytes != 1410 {
		t.Errorf("WastedBytes = %d, want 1410", rep.WastedBytes)
	}
	if diff := cmp.Diff([]image.Waste{{Path: "/data/big", Copies: 2, Bytes: 1400}, {Path: "/data/keep", Copies: 2, Bytes: 10}}, rep.Wasted); diff != "" {
		t.Errorf("Wasted (-want +got):\n%s", diff)
	}
	if rep.UserBytes != 400 {
		t.Errorf("UserBytes = %d, want 400", rep.UserBytes)
	}
	var got []string
	for i, l := range rep.Layers {
		got = append(got, l.CreatedBy)
		if l.Index != i || l.Digest != im.Layers[i].Digest || l.Size != im.Layers[i].Size || l.Size <= 0 {
			t.Errorf("layer %d = %+v, want index, digest and size of %+v", i, l, im.Layers[i])
		}
	}
	if diff := cmp.Diff([]string{"ADD data /data", "RUN shrink big", "RUN rm /data/keep"}, got); diff != "" {
		t.Errorf("layer commands (-want +got):\n%s", diff)
	}
	if rep.Layers[0].ContentBytes != 1010 || rep.Layers[0].Files != 3 {
		t.Errorf("layer 0: %d bytes in %d files, want 1010 in 3", rep.Layers[0].ContentBytes, rep.Layers[0].Files)
	}
}

// TestLayerReportEfficientImage: an image without duplicates scores 1.
func TestLayerReportEfficientImage(t *testing.T) {
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: tarLayer(t, 'a', "a", "12345")},
		mutate.Addendum{Layer: tarLayer(t, 'b', "b", "123")},
	)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := openImage(t, img, "linux/amd64")
	rep, err := image.LayerReport(context.Background(), im)
	if err != nil {
		t.Fatalf("LayerReport: %v", err)
	}
	if rep.Efficiency != 1 || rep.WastedBytes != 0 || len(rep.Wasted) != 0 || rep.UserBytes != 3 {
		t.Errorf("LayerReport = efficiency %v, wasted %d %v, user %d; want 1, 0, none, 3", rep.Efficiency, rep.WastedBytes, rep.Wasted, rep.UserBytes)
	}
}

func TestLayerReportCanceled(t *testing.T) {
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: tarLayer(t, 'a', "a", "1")})
	if err != nil {
		t.Fatal(err)
	}
	im, _ := openImage(t, img, "linux/amd64")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := image.LayerReport(ctx, im); err == nil {
		t.Error("LayerReport with a canceled context succeeded")
	}
}

// TestLayerReportTruncatedLayer: dive's filetree panics when a file's
// bytes cannot be read; LayerReport returns an error instead.
func TestLayerReportTruncatedLayer(t *testing.T) {
	b := testkit.Tar(t, testkit.File{Name: "big", Body: strings.Repeat("x", 4096)})[:512+2000] // header and part of the body
	img, err := mutate.AppendLayers(empty.Image, testkit.Layer(t, b))
	if err != nil {
		t.Fatal(err)
	}
	im := pushOpen(t, img, "linux/amd64")
	rep, err := image.LayerReport(context.Background(), im)
	if err == nil {
		t.Fatalf("LayerReport of a truncated layer = %+v, want an error", rep)
	}
	t.Logf("error: %v", err)
}
