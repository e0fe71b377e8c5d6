package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/comingout/extract/internal/testkit"
)

// writeArchive writes a docker-archive with /usr/bin/app, a symlink
// /bin -> usr/bin and /etc/hostname.
func writeArchive(t *testing.T) string {
	t.Helper()
	img := testkit.Append(t, empty.Image, []testkit.File{
		{Name: "usr/"},
		{Name: "usr/bin/"},
		{Name: "usr/bin/app", Body: "hello", Mode: 0o755},
		{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
	})
	return testkit.DockerArchive(t, img, "app")
}

func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	// app.go's -v (verbose) collides with urfave/cli's default --version
	// alias -v; hide the version flag until app.go settles that.
	app.HideVersion = true
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"extract"}, args...))
	return out.String(), errOut.String(), err
}

func TestFilesCommand(t *testing.T) {
	archive := writeArchive(t)
	dir := filepath.Join(t.TempDir(), "out")
	_, stderr, err := runApp(t, "files", "docker-archive:"+archive, "/bin/app", "-o", dir)
	if err != nil {
		t.Fatalf("files: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bin", "app"))
	if err != nil || string(b) != "hello" {
		t.Errorf("bin/app = %q, %v; want hello", b, err)
	}
	if !strings.Contains(stderr, "indexing layer 1/1") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	stdout, _, err := runApp(t, "files", "-q", "docker-archive:"+archive, "/usr/bin/app", "-o", "-")
	if err != nil {
		t.Fatalf("files -o -: %v", err)
	}
	tr := tar.NewReader(strings.NewReader(stdout))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "usr/ usr/bin/ usr/bin/app" {
		t.Errorf("tar names = %v", names)
	}

	_, _, err = runApp(t, "files", "docker-archive:"+archive, "/bin/ap", "-o", dir)
	if err == nil || exitCode(err) != exitNotFound || !strings.Contains(err.Error(), "/bin/ap: not found in the image; /bin has app") {
		t.Errorf("missing path: err = %v (exit %d), want exit %d naming app", err, exitCode(err), exitNotFound)
	}
	_, _, err = runApp(t, "files", "docker-archive:"+archive, "-o", dir)
	var u usageError
	if !errors.As(err, &u) {
		t.Errorf("no PATH: err = %v, want a usage error", err)
	}
}
