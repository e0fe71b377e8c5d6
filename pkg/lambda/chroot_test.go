package lambda

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/local"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// poisonSource is the program planted where a bundle must never look: the
// host's loader and /bin/sh. Whatever runs it fails loudly.
const poisonSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "POISON")
	os.Exit(99)
}
`

// nobody is the unprivileged user the chrooted programs run as, like
// Lambda's sandbox user that owns none of the files.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// TestChrootFortran is the end-to-end test of self-containment: the
// momentum program (gfortran-built, from Debian packages) is packaged,
// unpacked at /var/task of an otherwise poisoned root (the host loader,
// ld.so.cache, libc and /bin/sh replaced by programs that print POISON and
// fail) and run there by the real bootstrap as an unprivileged user, against
// the local Runtime API and S3. Its output must equal the program's own
// output in its own root and the example's expected.csv.
func TestChrootFortran(t *testing.T) {
	testkit.Root(t, "the test runs the package in a chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fixture := filepath.Join(fixtures, "fortran-merged")
	example := filepath.Join("..", "..", "examples", "fortran-momentum", "data")
	sample := testkit.ReadFile(t, filepath.Join(example, "sample.csv"))
	expected := testkit.ReadFile(t, filepath.Join(example, "expected.csv"))

	// The reference: momentum run in its own root.
	direct := exec.CommandContext(ctx, "/usr/local/bin/momentum")
	direct.SysProcAttr = &syscall.SysProcAttr{Chroot: fixture, Credential: nobody}
	direct.Dir = "/"
	direct.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	direct.Stdin = bytes.NewReader(sample)
	want, err := direct.Output()
	if err != nil {
		t.Fatalf("momentum in its own root: %v", err)
	}
	if diff := cmp.Diff(string(expected), string(want)); diff != "" {
		t.Fatalf("momentum in its own root differs from expected.csv (-want +got):\n%s", diff)
	}

	v1img, err := imagebuild.Fixture(fixtures, "fortran-merged")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img)
	zipPath := filepath.Join(t.TempDir(), "momentum.zip")
	res, err := PackageFile(ctx, img, zipPath)
	if err != nil {
		t.Fatalf("PackageFile: %v", err)
	}
	var layers int64
	for _, l := range img.Layers {
		layers += l.Size
	}
	t.Logf("momentum.zip: %d bytes zipped, %d unzipped, %d files; image layers: %d bytes compressed in %d layers; closure %d paths",
		res.ZippedSize, res.UnzippedSize, res.Files, layers, len(img.Layers), len(res.Closure.Files))

	root := poisonedRoot(t, testkit.ReadFile(t, zipPath))
	// The control: the unpatched program in the poisoned root starts the
	// poisoned loader. Without this, the test could not tell.
	mustWrite(t, filepath.Join(root, "tmp", "momentum-unpatched"), testkit.ReadFile(t, filepath.Join(fixture, "usr", "local", "bin", "momentum")), 0o755)
	control := exec.CommandContext(ctx, "/tmp/momentum-unpatched")
	control.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: nobody}
	control.Dir = "/"
	var controlErr bytes.Buffer
	control.Stderr = &controlErr
	if err := control.Run(); err == nil || !strings.Contains(controlErr.String(), "POISON") {
		t.Fatalf("unpatched momentum in the poisoned root: %v, stderr %q; want the POISON loader to run", err, controlErr.String())
	}

	t.Run("bootstrap", func(t *testing.T) {
		got := runBootstrap(ctx, t, root, sample)
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("output through the bootstrap (-want +got):\n%s", diff)
		}
	})

	// Without the bootstrap: the program started directly in the chroot,
	// through the LinkDir symlink the bootstrap makes, with the environment
	// it sets.
	t.Run("direct", func(t *testing.T) {
		m := res.Manifest
		link := filepath.Join(root, m.LinkDir)
		os.Remove(link)
		if err := os.Symlink("/var/task", link); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, m.LinkDir+"/"+xruntime.RootDir+m.Program)
		cmd.Args = m.Args
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: nobody}
		cmd.Dir = "/"
		cmd.Env = xruntime.Environ(&m, "/var/task", []string{"PATH=/usr/bin:/bin"})
		cmd.Stdin = bytes.NewReader(sample)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("momentum from the bundle: %v\n%s", err, stderr.Bytes())
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("output of the bundled momentum (-want +got):\n%s", diff)
		}
		if strings.Contains(stderr.String(), "POISON") {
			t.Errorf("the bundled momentum ran a poisoned host file:\n%s", stderr.String())
		}
	})
}

// poisonedRoot makes a root for chroot with the package unpacked at
// /var/task, a world-writable /tmp, and POISON where a bundle must never
// look: the host's loader paths and /bin/sh are a static program that prints
// POISON and exits 99, ld.so.cache and libraries are garbage.
func poisonedRoot(t *testing.T, zipped []byte) string {
	t.Helper()
	root := t.TempDir()
	mustChmod(t, root, 0o755)
	mustUnzip(t, zipped, filepath.Join(root, "var", "task"))
	mustMkdir(t, filepath.Join(root, "tmp"), 0o1777)
	poison := testkit.ReadFile(t, testkit.GoProgram(t, poisonSource, "amd64"))
	for _, p := range []string{"lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "bin/sh", "usr/bin/sh", "usr/bin/env", "usr/bin/sort", "usr/bin/tail", "usr/bin/wc"} {
		mustWrite(t, filepath.Join(root, p), poison, 0o755)
	}
	garbage := bytes.Repeat([]byte("POISON\x00\xff"), 512)
	for _, p := range []string{"etc/ld.so.cache", "lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libgfortran.so.5", "lib/x86_64-linux-gnu/libm.so.6"} {
		mustWrite(t, filepath.Join(root, p), garbage, 0o755)
	}
	return root
}

// runBootstrap runs the package's real bootstrap in root as nobody against
// a local Runtime API and S3, uploads input as input/day1.csv, invokes the
// function with the S3 event and returns the output object. The bootstrap's
// stderr (the program's too) must not mention POISON.
func runBootstrap(ctx context.Context, t *testing.T, root string, input []byte) string {
	t.Helper()
	got, logs, err := invokeInRoot(ctx, t, root, input)
	if err != nil {
		t.Fatalf("%v\nbootstrap output:\n%s", err, logs)
	}
	return got
}

// invokeInRoot is runBootstrap for invocations that may fail: it returns
// the output object, the bootstrap's output (its log, with the program's
// stderr lines) and the function's error, if the invocation failed.
func invokeInRoot(ctx context.Context, t *testing.T, root string, input []byte) (output, logs string, err error) {
	t.Helper()
	s3, err := local.NewS3("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if err := s3.CreateBucket("uploads"); err != nil {
		t.Fatal(err)
	}
	const key = "input/day1.csv"
	if err := s3.PutObject("uploads", key, bytes.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	api, err := local.NewRuntimeAPI(local.RuntimeAPIOptions{FunctionName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()

	boot := exec.Command("/var/task/bootstrap")
	boot.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: nobody}
	boot.Dir = "/"
	boot.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"LAMBDA_TASK_ROOT=/var/task",
		"AWS_ENDPOINT_URL_S3=" + s3.URL(),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/tmp",
	}
	var stderr testkit.SyncBuffer
	boot.Stdout, boot.Stderr = &stderr, &stderr
	if err := boot.Start(); err != nil {
		t.Fatalf("starting the bootstrap: %v", err)
	}
	// stop ends the bootstrap and waits until its output is copied: only
	// then does the log hold every line it wrote for the invocation.
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			boot.Process.Kill()
			boot.Wait()
		})
		return stderr.String()
	}
	defer func() {
		if out := stop(); t.Failed() {
			t.Logf("bootstrap output:\n%s", out)
		}
	}()

	event, err := json.Marshal(events.S3Event{Records: []events.S3EventRecord{{
		EventSource: "aws:s3", AWSRegion: "us-east-1", EventName: "ObjectCreated:Put",
		S3: events.S3Entity{Bucket: events.S3Bucket{Name: "uploads"}, Object: events.S3Object{Key: key, Size: int64(len(input))}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := api.Invoke(ctx, event, 2*time.Minute)
	if err != nil {
		t.Fatalf("RuntimeAPI.Invoke: %v", err)
	}
	logs = stop()
	if strings.Contains(logs, "POISON") {
		t.Errorf("something bundled ran a poisoned host file:\n%s", logs)
	}
	if inv.Error != nil {
		return "", logs, fmt.Errorf("invocation failed: %w", inv.Error)
	}
	var result xruntime.Result
	if err := json.Unmarshal(inv.Response, &result); err != nil || len(result.Records) != 1 || result.Records[0].OutputKey == "" {
		t.Fatalf("response %s: %v; want one processed record", inv.Response, err)
	}
	rec := result.Records[0]
	obj, err := s3.Object(rec.OutputBucket, rec.OutputKey)
	if err != nil {
		t.Fatalf("output s3://%s/%s: %v", rec.OutputBucket, rec.OutputKey, err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(got), logs, nil
}

// TestChrootScripts packages the sh-tools fixture's script entrypoints
// ("#!/bin/sh" running sort, "#!/usr/bin/env sh" running tail and wc, the
// tools added with --include) and runs them through the bootstrap in a
// poisoned root: the rewritten "#!" lines must start the bundled shell, and
// the children it starts by name must be the bundled ones, with the bundled
// loader.
func TestChrootScripts(t *testing.T) {
	testkit.Root(t, "the test runs the package in a chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fixture := filepath.Join(fixtures, "sh-tools")
	input := []byte("mass,velocity\n70.5,3\n10,2.5\n1200,27.8\n0.145,40.2\n")
	v1img, err := imagebuild.Fixture(fixtures, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img)

	tests := []struct {
		name    string
		program string
		opts    []PackageOption
	}{
		{"sh and sort", "/usr/local/bin/sorted.sh", []PackageOption{WithClosureOptions(image.WithInclude("/usr/bin/sort"))}},
		{"env sh, tail and wc", "/usr/local/bin/count", []PackageOption{
			WithCommandOverride(image.Override{Entrypoint: []string{"/usr/local/bin/count"}, EntrypointSet: true}),
			WithClosureOptions(image.WithInclude("/usr/bin/tail", "/usr/bin/wc")),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct := exec.CommandContext(ctx, tt.program)
			direct.SysProcAttr = &syscall.SysProcAttr{Chroot: fixture, Credential: nobody}
			direct.Dir = "/"
			direct.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
			direct.Stdin = bytes.NewReader(input)
			want, err := direct.Output()
			if err != nil {
				t.Fatalf("%s in its own root: %v", tt.program, err)
			}
			var zipped bytes.Buffer
			res, err := Package(ctx, img, &zipped, tt.opts...)
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			if res.Manifest.Program != tt.program {
				t.Errorf("Program = %q, want %q", res.Manifest.Program, tt.program)
			}
			got := runBootstrap(ctx, t, poisonedRoot(t, zipped.Bytes()), input)
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output through the bootstrap (-want +got):\n%s", diff)
			}
		})
	}
}

func mustWrite(t testing.TB, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, p, mode)
}

func mustMkdir(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, p, mode)
}

func mustChmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if mode&0o1000 != 0 {
		mode = mode&^0o1000 | os.ModeSticky
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestChrootFortranARM64 packages the arm64 momentum fixture and runs the
// bundled program under qemu-user in a poisoned root: qemu loads the
// PT_INTERP the package rewrote, so the bundled aarch64 loader and libraries
// must be the ones used. Then it runs the whole function, arm64 bootstrap
// included, with local.Invoke: the kernel hands the bootstrap and the program it
// starts to qemu through binfmt_misc (scripts/install-deps.sh registers
// the handler).
func TestChrootFortranARM64(t *testing.T) {
	testkit.Root(t, "the test runs the package in a chroot")
	fixtures := testkit.Fixtures(t)
	qemu := testkit.Tool(t, "qemu-aarch64-static", "install it with `make deps` or apt-get install qemu-user-static")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fixture := filepath.Join(fixtures, "arm64")
	example := filepath.Join("..", "..", "examples", "fortran-momentum", "data")
	sample := testkit.ReadFile(t, filepath.Join(example, "sample.csv"))
	expected := testkit.ReadFile(t, filepath.Join(example, "expected.csv"))

	v1img, err := imagebuild.Fixture(fixtures, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img, image.WithPlatform("linux/arm64"))
	var zipped bytes.Buffer
	res, err := Package(ctx, img, &zipped)
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	if res.Arch != "arm64" {
		t.Errorf("Arch = %q, want arm64", res.Arch)
	}
	t.Logf("arm64 momentum.zip: %d bytes zipped, %d unzipped, %d files", res.ZippedSize, res.UnzippedSize, res.Files)

	root := t.TempDir()
	mustChmod(t, root, 0o755)
	mustUnzip(t, zipped.Bytes(), filepath.Join(root, "var", "task"))
	boot, err := elf.Open(filepath.Join(root, "var", "task", "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if boot.Machine != elf.EM_AARCH64 {
		t.Errorf("bootstrap machine = %v, want EM_AARCH64", boot.Machine)
	}
	boot.Close()
	mustMkdir(t, filepath.Join(root, "tmp"), 0o1777)
	mustWrite(t, filepath.Join(root, "qemu"), testkit.ReadFile(t, qemu), 0o755)
	poison := testkit.ReadFile(t, testkit.GoProgram(t, poisonSource, "arm64"))
	for _, p := range []string{"lib/ld-linux-aarch64.so.1", "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "bin/sh"} {
		mustWrite(t, filepath.Join(root, p), poison, 0o755)
	}
	garbage := bytes.Repeat([]byte("POISON\x00\xff"), 512)
	for _, p := range []string{"etc/ld.so.cache", "lib/aarch64-linux-gnu/libc.so.6", "lib/aarch64-linux-gnu/libgfortran.so.5"} {
		mustWrite(t, filepath.Join(root, p), garbage, 0o755)
	}

	run := func(prog string, env []string) (string, string, error) {
		cmd := exec.CommandContext(ctx, "/qemu", prog)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: nobody}
		cmd.Dir = "/"
		cmd.Env = env
		cmd.Stdin = bytes.NewReader(sample)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	// The control: the unpatched program starts the poisoned loader.
	mustWrite(t, filepath.Join(root, "tmp", "momentum-unpatched"), testkit.ReadFile(t, filepath.Join(fixture, "usr", "local", "bin", "momentum")), 0o755)
	if _, stderr, err := run("/tmp/momentum-unpatched", nil); err == nil || !strings.Contains(stderr, "POISON") {
		t.Fatalf("unpatched arm64 momentum in the poisoned root: %v, stderr %q; want the POISON loader to run", err, stderr)
	}

	m := res.Manifest
	if err := os.Symlink("/var/task", filepath.Join(root, m.LinkDir)); err != nil {
		t.Fatal(err)
	}
	got, stderr, err := run(m.LinkDir+"/"+xruntime.RootDir+m.Program, xruntime.Environ(&m, "/var/task", []string{"PATH=/usr/bin:/bin"}))
	if err != nil {
		t.Fatalf("bundled arm64 momentum: %v\n%s", err, stderr)
	}
	if diff := cmp.Diff(string(expected), got); diff != "" {
		t.Errorf("bundled arm64 momentum output (-want +got):\n%s", diff)
	}
	if strings.Contains(stderr, "POISON") {
		t.Errorf("the bundled arm64 momentum ran a poisoned host file:\n%s", stderr)
	}

	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		testkit.Missing(t, "no qemu-aarch64 binfmt_misc handler: the arm64 bootstrap cannot run",
			"`make deps` (scripts/install-deps.sh) registers it, as root where the kernel allows")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	zipPath := filepath.Join(t.TempDir(), "momentum-arm64.zip")
	mustWrite(t, zipPath, zipped.Bytes(), 0o644)
	var logs bytes.Buffer
	inv, err := local.Invoke(ctx, zipPath, local.WithCSV(testkit.TempFile(t, "sample.csv", sample)), local.WithLogWriter(&logs), local.WithTimeout(3*time.Minute))
	if err != nil {
		t.Fatalf("local.Invoke of the arm64 function: %v\nlogs:\n%s", err, logs.String())
	}
	if diff := cmp.Diff(string(expected), string(inv.Output)); diff != "" {
		t.Errorf("arm64 function's output object (-want +got):\n%s", diff)
	}
	t.Logf("arm64 function under qemu: %v, bootstrap start → first /next %v", inv.Duration.Round(time.Millisecond), inv.InitDuration.Round(time.Millisecond))
}
