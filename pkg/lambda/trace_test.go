//go:build linux && amd64

package lambda

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
)

// TestChrootTracedPlugin packages a program that dlopens a plugin named by
// an environment variable (testdata/trace/host.c, hello.c) and starts a
// child, with and without --trace. Without it the plugin is left out; with
// it the plugin, its libm and the child's cat are packaged, and the package
// runs through the bootstrap in a poisoned root (the host's libm there is
// garbage). The plugin and the child are named relative to the WORKDIR, so
// the tracer must resolve relative paths against the program's cwd.
func TestChrootTracedPlugin(t *testing.T) {
	testkit.Root(t, "the test traces the program and runs the package in a chroot")
	testkit.Fixtures(t)
	testkit.Tool(t, "gcc", "the test compiles testdata/trace/*.c: install it with `make deps` or apt-get install gcc")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := imagetest.Serve(t, pluginImage(t))
	input := []byte("mass,velocity\n2,3\n4,5\n")
	sample := filepath.Join(t.TempDir(), "sample.csv")
	if err := os.WriteFile(sample, input, 0o644); err != nil {
		t.Fatal(err)
	}

	var static bytes.Buffer
	if _, err := Package(ctx, img, &static); err != nil {
		t.Fatalf("Package: %v", err)
	}
	if names := zipNames(t, static.Bytes()); slices.Contains(names, "rootfs/usr/lib/plugins/libhello.so") {
		t.Fatalf("the package without --trace has the plugin: the test cannot tell what the trace adds")
	}

	var traced bytes.Buffer
	res, err := Package(ctx, img, &traced, WithTrace(sample, image.WithTraceTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("Package(WithTrace): %v", err)
	}
	if res.Trace == nil || res.Trace.Run == nil {
		t.Fatalf("Package(WithTrace).Trace = %+v, want the trace summary", res.Trace)
	}
	for _, p := range []string{"/usr/lib/plugins/libhello.so", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr/bin/cat"} {
		if !slices.Contains(res.Trace.Added, p) {
			t.Errorf("Trace.Added lacks %s; got %q", p, res.Trace.Added)
		}
		if !slices.Contains(zipNames(t, traced.Bytes()), "rootfs"+p) {
			t.Errorf("the traced package lacks rootfs%s", p)
		}
	}
	if res.Trace.Files <= res.Trace.StaticFiles || res.Trace.Bytes <= res.Trace.StaticBytes {
		t.Errorf("Trace sizes: static %d files %d bytes, traced %d files %d bytes; want more with the trace",
			res.Trace.StaticFiles, res.Trace.StaticBytes, res.Trace.Files, res.Trace.Bytes)
	}
	t.Logf("static closure %d files %d bytes; with the trace %d files %d bytes; trace took %s; added %q",
		res.Trace.StaticFiles, res.Trace.StaticBytes, res.Trace.Files, res.Trace.Bytes, res.Trace.Run.Duration, res.Trace.Added)

	root := poisonedRoot(t, traced.Bytes())
	got := runBootstrap(ctx, t, root, input)
	if want := "hello from the plugin, sqrt(16) = 4\n" + string(input); got != want {
		t.Errorf("output of the traced package = %q, want %q", got, want)
	}
}

// pluginImage is the sh-tools fixture plus the plugin host and its plugin,
// run in /usr/lib/plugins with PLUGIN=/usr/lib/plugins/libhello.so (an
// absolute image path the package must point into the bundle) and
// CHILD=../../bin/cat (a path relative to the WORKDIR).
func pluginImage(t *testing.T) v1.Image {
	t.Helper()
	base, _ := testkit.FixtureImage(t, "sh-tools")
	gcc := func(src string, args ...string) string {
		return string(testkit.GCC(t, testkit.Path(t, "testdata/trace/"+src), args...))
	}
	img := testkit.Append(t, base, []testkit.File{
		{Name: "usr/lib/plugins/"},
		{Name: "usr/lib/plugins/libhello.so", Body: gcc("hello.c", "-shared", "-fPIC", "-lm")},
		{Name: "usr/local/bin/host", Mode: 0o755, Body: gcc("host.c")},
	})
	img, err := mutate.Config(img, v1.Config{
		Entrypoint: []string{"/usr/local/bin/host"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PLUGIN=/usr/lib/plugins/libhello.so", "CHILD=../../bin/cat"},
		WorkingDir: "/usr/lib/plugins",
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// zipNames lists the entry names of a zip.
func zipNames(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}
