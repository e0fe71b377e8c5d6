//go:build linux && (amd64 || arm64)

package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/pkg/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const escapePath = "/usr/local/bin/escape"

// escapeImage is the sh-tools fixture plus testdata/trace/escape.c, linked
// statically, as its entrypoint.
func escapeImage(t *testing.T) (*image.Image, *image.Index) {
	t.Helper()
	base, err := imagebuild.Fixture(fixtures(t), "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	prog := mustGCC(t, "escape.c", "-static")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	h := &tar.Header{Name: strings.TrimPrefix(escapePath, "/"), Mode: 0o755, Size: int64(len(prog)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(prog); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{escapePath}, WorkingDir: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	return openImage(t, img, "linux/amd64")
}

// TestTraceEscape is issue 11's proof of concept: a static program makes a
// child with clone(CLONE_UNTRACED), which ptrace does not follow, and the
// child climbs out of the sandbox's root (chroot into a subdirectory,
// chdir("..") up, chroot(".")), lists the root it reached and creates a
// marker file in a host directory anyone may write to. The marker must not
// appear, the listing must show no host-only entry, and the trace must
// still finish and report what the program opened. TestTraceUnprivileged
// runs it again as nobody.
func TestTraceEscape(t *testing.T) {
	traceable(t)
	ctx := context.Background()
	img, idx := escapeImage(t)
	// Not t.TempDir: the escaped child is not root on the host (as root,
	// the image's root is host ID 1<<30), so the directory must be open
	// to it for the test to see an escape.
	dir, err := os.MkdirTemp("", "extract-escape-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "marker")
	cmd, err := image.ResolveCommand(img, idx, image.Override{Cmd: []string{marker}, CmdSet: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := image.Trace(ctx, img, idx, cmd, mustInput(t, "x\n"), image.WithTraceTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	t.Logf("exit code %d, stderr:\n%s", tr.ExitCode, tr.Stderr)
	if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the untraced child escaped the sandbox and wrote %s on the host (Lstat: %v)", marker, err)
	}
	// What the child listed as "/" must be the sandbox's root, never the
	// host's.
	hostRoot, err := os.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(tr.Stderr, "\n") {
		if name, ok := strings.CutPrefix(line, "root: "); ok {
			listed[name] = true
		}
	}
	// The sandbox adds /dev, /tmp and the WORKDIR to the image.
	sandboxMade := map[string]bool{"dev": true, "tmp": true, "work": true}
	for _, e := range hostRoot {
		if _, _, err := idx.Resolve("/" + e.Name()); err != nil && listed[e.Name()] && !sandboxMade[e.Name()] {
			t.Errorf("the untraced child listed the host's /%s", e.Name())
		}
	}
	if tr.TimedOut {
		t.Errorf("the trace timed out")
	}
	for _, p := range []string{escapePath, "/etc/passwd"} {
		if !slices.Contains(tr.Paths, p) {
			t.Errorf("Trace paths lack %s; got %q", p, tr.Paths)
		}
	}
}
