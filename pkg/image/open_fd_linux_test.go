package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fewFilesArchive is the environment variable that makes
// TestDockerArchiveManyLayersFewDescriptors run as the child process: it
// names the archive to read under a lowered descriptor limit.
const fewFilesArchive = "EXTRACT_TEST_FEW_FILES_ARCHIVE"

// TestDockerArchiveManyLayersFewDescriptors opens, indexes and extracts a
// docker-archive of 300 (gzip) layers in a child process whose
// RLIMIT_NOFILE is 256: layers must not each hold a descriptor.
func TestDockerArchiveManyLayersFewDescriptors(t *testing.T) {
	const layers, limit = 300, 256
	if archive := os.Getenv(fewFilesArchive); archive != "" {
		manyLayersChild(t, archive, layers, limit)
		return
	}
	var ls [][]tf
	for n := range layers {
		ls = append(ls, []tf{file(fmt.Sprintf("layer/%03d", n), fmt.Sprint(n))})
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("example.com/many:v1")
	if err := tarball.WriteToFile(archive, tag, mustV1(t, ls...)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDockerArchiveManyLayersFewDescriptors$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fewFilesArchive+"="+archive)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child with RLIMIT_NOFILE %d: %v\n%s", limit, err, out)
	}
}

// manyLayersChild lowers the soft descriptor limit of this (child) process
// and reads the archive.
func manyLayersChild(t *testing.T, archive string, layers int, limit uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("setting RLIMIT_NOFILE to %d: %v", limit, err)
	}
	ctx := context.Background()
	img, err := Open(ctx, "docker-archive:"+archive)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer img.Close()
	if len(img.Layers) != layers {
		t.Fatalf("Open: %d layers, want %d", len(img.Layers), layers)
	}
	idx, err := BuildIndex(ctx, img)
	if err != nil {
		t.Fatalf("BuildIndex: %v", err)
	}
	got := contents(t, img, idx)
	if len(got) != layers {
		t.Errorf("Extract gave %d files, want %d", len(got), layers)
	}
	for n := range layers {
		p := fmt.Sprintf("/layer/%03d", n)
		if got[p] != fmt.Sprint(n) {
			t.Errorf("%s = %q, want %q", p, got[p], fmt.Sprint(n))
		}
	}
	if err := img.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// After Close the archive is not opened again (nothing would close it).
	v1ls, err := img.V1().Layers()
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := v1ls[0].Compressed(); err == nil {
		rc.Close()
		t.Errorf("reading a layer after Close: no error")
	}
}
