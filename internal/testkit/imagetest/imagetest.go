// Package imagetest opens test images with pkg/image, for the tests of the
// packages built on it (pkg/image's own internal tests cannot import it).
// The images themselves come from testkit.
package imagetest

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

// Open opens ref with image.Open and a fresh cache directory, as the CLI
// would; the image is closed when the test ends.
func Open(t testing.TB, ref string, opts ...image.Option) *image.Image {
	t.Helper()
	i, err := image.Open(context.Background(), ref, append([]image.Option{image.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatalf("image.Open(%q): %v", ref, err)
	}
	t.Cleanup(func() { i.Close() })
	return i
}

// Serve pushes img to a new in-process registry as test/app:v1 and opens
// it.
func Serve(t testing.TB, img v1.Image, opts ...image.Option) *image.Image {
	t.Helper()
	return Open(t, testkit.NewRegistry(t, nil).Push(t, "test/app:v1", img), opts...)
}

// Index builds the index of an opened image.
func Index(t testing.TB, img *image.Image) *image.Index {
	t.Helper()
	idx, err := image.BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatalf("BuildIndex(%q): %v", img.Ref, err)
	}
	return idx
}
