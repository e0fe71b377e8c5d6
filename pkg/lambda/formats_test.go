package lambda

import (
	"archive/tar"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/local"
)

// TestImageFormatFixtures runs every fixture's program as a container-image
// package, the way Lambda runs one (local.Invoke: the image's root read-only, a
// fresh /tmp, uid 65534, the real bootstrap as ENTRYPOINT), and compares
// its output byte for byte with the program run in its own root — the
// container. Whole images must always match; slim ones (only the closure)
// must match for a program whose closure is complete, and a program that
// reads compiled-in paths the closure does not hold (shapp) is expected to
// differ as a slim image: that is what --slim trades.
func TestImageFormatFixtures(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	momentum := testkit.ReadFile(t, filepath.Join("..", "..", "examples", "fortran-momentum", "data", "sample.csv"))
	words := []byte("name,n\nTen,1\nten,2\nfive,3\nTEN,4\nFive,5\none,6\n")
	masses := []byte("mass,velocity\n70.5,3\n10,2.5\n1200,27.8\n70.5,4\n0.145,40.2\n10,9\n")
	golden := filepath.Join("..", "..", "testdata", "originalpaths")
	// Each case runs the shapes it says (whole, slim or both): every
	// program as a whole image, and a slim one for the closures of each
	// kind (ELF, script, NSS), to keep the race-detector run short.
	// fortran-merged as a whole image is TestInvokeImageFortran's.
	whole, slim, both := []bool{false}, []bool{true}, []bool{false, true}
	tests := []struct {
		fixture string
		input   []byte
		opts    []PackageOption
		shapes  []bool
		// slimDiffers: the program reads files outside its closure.
		slimDiffers bool
		platform    string
	}{
		{fixture: "fortran-merged", input: momentum, shapes: slim},
		{fixture: "fortran-split", input: momentum, shapes: whole},
		{fixture: "arm64", input: momentum, shapes: whole, platform: "linux/arm64"}, // qemu through binfmt_misc
		{fixture: "sh-tools", input: words, shapes: whole},
		{fixture: "sh-tools", input: words, shapes: both, opts: []PackageOption{
			WithCommandOverride(image.Override{Entrypoint: []string{"/usr/local/bin/tally.sh"}, EntrypointSet: true}),
		}},
		{fixture: "busybox", input: words, shapes: whole},
		{fixture: "python", input: masses, shapes: whole},
		{fixture: "perl", input: masses, shapes: whole},
		{fixture: "c-nss", input: []byte("epoch\n0\n1700000000\n1720000000\n1729990000\n"), shapes: both},
		{fixture: "tcl", input: testkit.ReadFile(t, filepath.Join(golden, "tcl.csv")), shapes: whole},
		{fixture: "fontconfig", input: testkit.ReadFile(t, filepath.Join(golden, "fontconfig.csv")), shapes: whole},
		{fixture: "shapp", input: testkit.ReadFile(t, filepath.Join(golden, "shapp.csv")), shapes: both, slimDiffers: true},
	}
	for _, tt := range tests {
		name := tt.fixture
		if tt.opts != nil {
			name += "-override"
		}
		t.Run(name, func(t *testing.T) {
			v1img, err := imagebuild.Fixture(fixtures, tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			platform := tt.platform
			if platform == "" {
				platform = "linux/amd64"
			}
			img := imagetest.Serve(t, v1img, image.WithPlatform(platform))
			for _, slim := range tt.shapes {
				res, err := PackageImage(ctx, img, append([]PackageOption{WithSlim(slim)}, tt.opts...)...)
				if err != nil {
					t.Fatalf("PackageImage(slim %v): %v", slim, err)
				}
				want := containerOutput(ctx, t, filepath.Join(fixtures, tt.fixture), res, tt.input)
				dest := "oci:" + filepath.Join(t.TempDir(), "image")
				if _, err := WriteImage(ctx, res.Image, dest); err != nil {
					t.Fatal(err)
				}
				res.Close()
				in := filepath.Join(t.TempDir(), "in.csv")
				mustWrite(t, in, tt.input, 0o644)
				var log strings.Builder
				// Under qemu (arm64) the bootstrap and the program are
				// translated as they run: ~3 s alone, but a CI run under
				// -race, sharing 2 cores with other packages, hit the
				// default 30 s. Lambda's own limit is 15 min.
				timeout := local.DefaultTimeout
				if platform != "linux/"+goruntime.GOARCH {
					timeout = 3 * time.Minute
				}
				got, err := local.Invoke(ctx, dest, local.WithCSV(in), local.WithLogWriter(&log), local.WithPlatform(platform),
					local.WithTimeout(timeout), local.WithImageOptions(image.WithCacheDir(t.TempDir())))
				if slim && tt.slimDiffers {
					if err == nil && string(got.Output) == want {
						t.Errorf("the slim image of %s printed the container's output: its closure now holds what it reads; drop slimDiffers", tt.fixture)
					}
					continue
				}
				if err != nil {
					t.Fatalf("local.Invoke of the image (slim %v): %v\nlog:\n%s", slim, err, log.String())
				}
				if diff := cmp.Diff(want, string(got.Output)); diff != "" {
					t.Errorf("image (slim %v) output differs from the container's (-want +got):\n%s\nlog:\n%s", slim, diff, log.String())
				}
			}
		})
	}
}

// containerOutput runs the program of the package res in its own root dir as
// Docker would run the source image — its ENV and HOME, its WORKDIR — with
// the root read-only and /tmp writable, as uid 65534.
func containerOutput(ctx context.Context, t *testing.T, dir string, res *ImageResult, input []byte) string {
	t.Helper()
	m := res.Manifest
	devNull(t, dir, true) // perl -e opens /dev/null; Lambda has one
	direct := exec.CommandContext(ctx, m.Program)
	direct.Args = m.Args
	direct.SysProcAttr = &syscall.SysProcAttr{Chroot: readOnlyRoot(t, dir), Credential: nobody}
	direct.Dir = m.WorkDir
	if direct.Dir == "" {
		direct.Dir = "/"
	}
	direct.Env = m.Env
	direct.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	direct.Stderr = &stderr
	out, err := direct.Output()
	if err != nil {
		t.Fatalf("%s in its own root: %v\n%s", m.Program, err, stderr.Bytes())
	}
	if strings.Count(string(out), "\n") < 2 {
		t.Fatalf("%s in its own root printed too little to compare: %q", m.Program, out)
	}
	return string(out)
}

// workdirProbe writes a file into its working directory, reads it back and
// says what its stdout is and which environment it has.
const workdirProbe = `package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	wd, _ := os.Getwd()
	if err := os.WriteFile("scratch", []byte("ok"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(3)
	}
	b, _ := os.ReadFile("scratch")
	seed, _ := os.ReadFile("seed.txt")
	fi, _ := os.Stdout.Stat()
	kind := "pipe"
	if fi.Mode().IsRegular() {
		kind = "regular file"
	}
	var env []string
	for _, kv := range os.Environ() {
		env = append(env, strings.SplitN(kv, "=", 2)[0])
	}
	sort.Strings(env)
	fmt.Printf("wd under /tmp: %v\nscratch: %s\nseed: %s\nstdout: %s\nuid 0: %v\nenv: %s\n",
		strings.HasPrefix(wd, "/tmp/"), b, seed, kind, os.Getuid() == 0, strings.Join(env, ","))
}
`

// TestImageWritableWorkDir: in an image package, --writable-workdir gives the
// program a writable copy of its WORKDIR (the root is read-only), stdout is
// a followed file, and the environment is the image's, not Lambda's.
func TestImageWritableWorkDir(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prog := testkit.GoProgram(t, workdirProbe, "amd64")
	src := testkit.Image(t, v1.Config{Entrypoint: []string{"/app/probe"}, WorkingDir: "/data", Env: []string{"PATH=/usr/bin:/bin", "APP_MODE=batch"}},
		[]testkit.File{
			{Name: "app/", Type: tar.TypeDir},
			{Name: "app/probe", From: prog, Mode: 0o755},
			{Name: "data/", Type: tar.TypeDir},
			{Name: "data/seed.txt", Body: "from the image"},
		})
	img := imagetest.Serve(t, src)
	in := filepath.Join(t.TempDir(), "in.csv")
	mustWrite(t, in, []byte("a,b\n"), 0o644)
	for _, writable := range []bool{true, false} {
		res, err := PackageImage(ctx, img, WithWritableWorkDir(writable))
		if err != nil {
			t.Fatal(err)
		}
		dest := "oci:" + filepath.Join(t.TempDir(), "image")
		if _, err := WriteImage(ctx, res.Image, dest); err != nil {
			t.Fatal(err)
		}
		res.Close()
		var log strings.Builder
		got, err := local.Invoke(ctx, dest, local.WithCSV(in), local.WithLogWriter(&log), local.WithImageOptions(image.WithCacheDir(t.TempDir())))
		if !writable {
			if err == nil || !strings.Contains(log.String(), "read-only file system") {
				t.Errorf("without --writable-workdir the program wrote into its WORKDIR of a read-only root: %v\n%s", err, log.String())
			}
			continue
		}
		if err != nil {
			t.Fatalf("local.Invoke: %v\n%s", err, log.String())
		}
		want := "wd under /tmp: true\nscratch: ok\nseed: from the image\nstdout: regular file\nuid 0: false\nenv: APP_MODE,HOME,PATH\n"
		if diff := cmp.Diff(want, string(got.Output)); diff != "" {
			t.Errorf("probe output (-want +got):\n%s\nlog:\n%s", diff, log.String())
		}
	}
}
