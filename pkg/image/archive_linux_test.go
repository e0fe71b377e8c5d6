package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(fds)
}

// TestArchiveDescriptors: an archive source holds no descriptor once Open
// returns, one per layer being read, and none after the readers close.
func TestArchiveDescriptors(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("example.com/app:v1")
	if err := tarball.WriteToFile(archive, tag, testImage(t, "fd")); err != nil {
		t.Fatal(err)
	}
	base := openFDs(t)
	img, err := Open(context.Background(), "docker-archive:"+archive)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if n := openFDs(t); n != base {
		t.Errorf("after Open: %d descriptors open, want %d (as before)", n, base)
	}
	ls, err := img.V1().Layers()
	if err != nil {
		t.Fatal(err)
	}
	r0, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	r1, err := ls[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t); n != base+2 {
		t.Errorf("reading 2 layers: %d descriptors open, want %d", n, base+2)
	}
	r0.Close()
	r1.Close()
	if n := openFDs(t); n != base {
		t.Errorf("after the readers closed: %d descriptors open, want %d", n, base)
	}
}
