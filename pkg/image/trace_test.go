//go:build linux && (amd64 || arm64)

package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

const (
	pluginPath = "/usr/lib/plugins/libhello.so"
	hostPath   = "/usr/local/bin/host"
)

// traceable skips the test where Trace cannot run: the fixtures'
// architecture is not the host's. Not root (the tests do not rely on
// unprivileged user namespaces, except under TestTraceUnprivileged) and no
// gcc follow testkit's rule: skipped, failed under CI.
func traceable(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the trace fixtures are amd64: run on an amd64 host")
	}
	if os.Getenv(unprivilegedEnv) == "" {
		testkit.Root(t, "the trace sandbox test runs as root (TestTraceUnprivileged runs it again as nobody)")
	}
	testkit.Tool(t, "gcc", "the trace test compiles testdata/trace/*.c: install it with `make deps` or apt-get install gcc")
}

// mustGCC compiles testdata/trace/src with gcc and the extra arguments and
// returns the output file's bytes.
func mustGCC(t *testing.T, src string, args ...string) []byte {
	t.Helper()
	return testkit.GCC(t, testkit.Path(t, "testdata/trace/"+src), args...)
}

// withLayer is img with one more layer of files and the config cfg.
func withLayer(t *testing.T, img v1.Image, cfg v1.Config, files ...testkit.File) v1.Image {
	t.Helper()
	img = testkit.Append(t, img, files)
	img, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pluginImage is the sh-tools fixture (libc, dash, coreutils) plus a layer
// with the plugin host and its plugin; the host loads the plugin named by
// $PLUGIN and runs $CHILD (/bin/cat) on its stdin.
func pluginImage(t *testing.T) (*image.Image, *image.Index) {
	t.Helper()
	base, _ := testkit.FixtureImage(t, "sh-tools")
	img := withLayer(t, base, v1.Config{
		Entrypoint: []string{hostPath},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"PLUGIN=" + pluginPath,
			"CHILD=/bin/cat",
		},
		WorkingDir: "/work",
	},
		testkit.File{Name: "usr/lib/plugins/"},
		testkit.File{Name: "usr/lib/plugins/libhello.so", Body: string(mustGCC(t, "hello.c", "-shared", "-fPIC", "-lm"))},
		testkit.File{Name: "usr/local/bin/host", Mode: 0o755, Body: string(mustGCC(t, "host.c"))},
	)
	return openImage(t, img, "linux/amd64")
}

func mustInput(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.csv")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func closureSize(res *image.ClosureResult) (files int, bytes int64) {
	for _, f := range res.Files {
		if f.Kind == image.Regular {
			bytes += f.Size
		}
	}
	return len(res.Files), bytes
}

func fileOf(res *image.ClosureResult, p string) (image.File, bool) {
	for _, f := range res.Files {
		if f.Path == p {
			return f, true
		}
	}
	return image.File{}, false
}

func hasReason(f image.File, kind, by string) bool {
	for _, r := range f.Why {
		if r.Kind == kind && (by == "" || r.By == by) {
			return true
		}
	}
	return false
}

// TestTracePlugin is issue 6's test: a program that dlopens a plugin chosen
// by an environment variable. The static closure misses the plugin; the
// trace finds it, the closure then resolves the plugin's own libraries, and
// the child process the program starts is followed.
func TestTracePlugin(t *testing.T) {
	traceable(t)
	ctx := context.Background()
	img, idx := pluginImage(t)
	cmd, err := image.ResolveCommand(img, idx, image.Override{})
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	static, err := image.Closure(ctx, idx, cmd)
	if err != nil {
		t.Fatalf("Closure: %v", err)
	}
	staticTime := time.Since(t0)
	for _, p := range []string{pluginPath, "/usr/bin/cat"} {
		if _, ok := fileOf(static, p); ok {
			t.Fatalf("static Closure has %s: the test cannot tell what the trace adds", p)
		}
	}

	input := "mass,velocity\n2,3\n4,5\n"
	sandboxParent := t.TempDir()
	t0 = time.Now()
	tr, err := image.Trace(ctx, img, idx, cmd, mustInput(t, input), image.WithTraceDir(sandboxParent))
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	traceTime := time.Since(t0)
	if tr.ExitCode != 0 || tr.TimedOut {
		t.Fatalf("Trace: exit code %d (signal %q, timed out %v), stderr:\n%s", tr.ExitCode, tr.Signal, tr.TimedOut, tr.Stderr)
	}
	// The host printed the plugin's line and cat copied the input.
	if want := int64(len("hello from the plugin, sqrt(16) = 4\n") + len(input)); tr.StdoutBytes != want {
		t.Errorf("Trace: stdout %d bytes, want %d (plugin line + input through cat); stderr:\n%s", tr.StdoutBytes, want, tr.Stderr)
	}
	// As named: ld.so found libm in /lib/x86_64-linux-gnu (/lib -> usr/lib).
	for _, p := range []string{hostPath, pluginPath, "/bin/cat", "/lib/x86_64-linux-gnu/libm.so.6"} {
		if !slices.Contains(tr.Paths, p) {
			t.Errorf("Trace paths lack %s; got %q", p, tr.Paths)
		}
	}
	if tr.Processes < 2 {
		t.Errorf("Trace followed %d processes, want at least 2 (host and its cat child)", tr.Processes)
	}
	for _, p := range tr.Paths {
		if strings.HasPrefix(p, "/tmp/") || strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/proc/") {
			t.Errorf("Trace path %s is under an ignored directory", p)
		}
	}
	if left, err := os.ReadDir(sandboxParent); err != nil || len(left) != 0 {
		t.Errorf("the trace sandbox was not removed: %v %v", left, err)
	}

	t0 = time.Now()
	traced, err := image.Closure(ctx, idx, cmd, image.WithTraced(tr.Paths))
	if err != nil {
		t.Fatalf("Closure(WithTraced): %v", err)
	}
	tracedTime := time.Since(t0)
	plugin, ok := fileOf(traced, pluginPath)
	if !ok || !hasReason(plugin, image.TracedReason, "") {
		t.Fatalf("Closure(WithTraced) lacks %s with reason traced: %+v", pluginPath, plugin)
	}
	// The plugin's DT_NEEDED is resolved by the closure, not only seen.
	libm, ok := fileOf(traced, "/usr/lib/x86_64-linux-gnu/libm.so.6")
	if !ok || !hasReason(libm, "needed", pluginPath) {
		t.Errorf("libm.so.6 is not needed by %s in Closure(WithTraced): %+v", pluginPath, libm)
	}
	// cat, run as a child, and the /bin -> usr/bin link on its way.
	if f, ok := fileOf(traced, "/usr/bin/cat"); !ok || !hasReason(f, image.TracedReason, "") {
		t.Errorf("Closure(WithTraced) lacks /usr/bin/cat (the child process): %+v", f)
	}
	if f, ok := fileOf(traced, "/bin"); !ok || f.Kind != image.Symlink {
		t.Errorf("Closure(WithTraced) lacks the /bin symlink on the way to /bin/cat: %+v", f)
	}
	added := image.TraceAdded(static, traced)
	var addedPaths []string
	for _, f := range added {
		addedPaths = append(addedPaths, f.Path)
	}
	for _, p := range []string{pluginPath, "/usr/bin/cat"} {
		if !slices.Contains(addedPaths, p) {
			t.Errorf("TraceAdded lacks %s; got %q", p, addedPaths)
		}
	}
	if slices.Contains(addedPaths, hostPath) {
		t.Errorf("TraceAdded has the entrypoint %s, which the static closure had", hostPath)
	}
	sf, sb := closureSize(static)
	tf, tb := closureSize(traced)
	t.Logf("static closure: %d files, %.2f MB in %s; trace: %s (run %s, %d processes, %d paths); with the trace: %d files, %.2f MB in %s; added by the trace: %q",
		sf, float64(sb)/1e6, staticTime, traceTime, tr.RunDuration, tr.Processes, len(tr.Paths), tf, float64(tb)/1e6, tracedTime, addedPaths)
}

// TestTraceSandbox checks the sandbox's limits with shell command lines in
// the same image: writes land in the sandbox (never on the host), the
// timeout kills a sleeping program with its children, and a program
// calling chroot(2) is killed before the call runs.
func TestTraceSandbox(t *testing.T) {
	traceable(t)
	ctx := context.Background()
	img, idx := pluginImage(t)
	input := mustInput(t, "a,b\n1,2\n")
	cmdOf := func(args ...string) *image.Command {
		t.Helper()
		cmd, err := image.ResolveCommand(img, idx, image.Override{Entrypoint: args, EntrypointSet: true, CmdSet: true})
		if err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	t.Run("writes stay in the sandbox", func(t *testing.T) {
		marker := fmt.Sprintf("/extract-trace-marker-%d", time.Now().UnixNano())
		parent := t.TempDir()
		cmd := cmdOf("/bin/sh", "-c", "echo leaked > "+marker+" && cat "+marker+" /etc/passwd >/dev/null && sort")
		tr, err := image.Trace(ctx, img, idx, cmd, input, image.WithTraceDir(parent))
		if err != nil {
			t.Fatalf("Trace: %v", err)
		}
		if tr.ExitCode != 0 {
			t.Fatalf("exit code %d, stderr:\n%s", tr.ExitCode, tr.Stderr)
		}
		if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
			os.Remove(marker)
			t.Errorf("the traced program wrote %s on the host (Lstat: %v)", marker, err)
		}
		if tr.StdoutBytes != int64(len("a,b\n1,2\n")) {
			t.Errorf("stdout %d bytes, want the sorted input", tr.StdoutBytes)
		}
		// The shell, the programs it ran and the file cat read; the file
		// the program made is not in the image, /dev/null is ignored.
		for _, p := range []string{"/bin/sh", "/usr/bin/sort", "/etc/passwd"} {
			if !slices.Contains(tr.Paths, p) {
				t.Errorf("Trace paths lack %s; got %q", p, tr.Paths)
			}
		}
		if slices.Contains(tr.Paths, marker) {
			t.Errorf("Trace paths have %s, which the program created", marker)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Errorf("the trace sandbox was not removed: %v", left)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		cmd := cmdOf("/bin/sh", "-c", "sleep 60 & sleep 60; wait")
		start := time.Now()
		tr, err := image.Trace(ctx, img, idx, cmd, input, image.WithTraceTimeout(time.Second))
		if err != nil {
			t.Fatalf("Trace: %v", err)
		}
		if !tr.TimedOut || tr.ExitCode != -1 || tr.Signal != "killed" {
			t.Errorf("Trace(sleep 60, 1s) = timed out %v, exit %d, signal %q; want killed at the timeout", tr.TimedOut, tr.ExitCode, tr.Signal)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("Trace(sleep 60, 1s) took %s", d)
		}
		if !slices.Contains(tr.Paths, "/bin/sh") {
			t.Errorf("Trace paths lack /bin/sh; got %q", tr.Paths)
		}
	})

	t.Run("chroot is killed", func(t *testing.T) {
		cmd := cmdOf(hostPath)
		cmd.Env = append(cmd.Env, "ESCAPE=/tmp")
		_, err := image.Trace(ctx, img, idx, cmd, input)
		if err == nil || !strings.Contains(err.Error(), "chroot") {
			t.Errorf("Trace(host calling chroot) = %v, want an error naming chroot", err)
		}
	})
}

// TestTraceArch: the trace runs the program, so an image of another
// architecture is refused.
func TestTraceArch(t *testing.T) {
	if os.Getenv(unprivilegedEnv) != "" {
		t.Skip("run as root only")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the arm64 fixture is foreign only on amd64")
	}
	img, idx := fixtureImage(t, "arm64")
	cmd, err := image.ResolveCommand(img, idx, image.Override{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = image.Trace(context.Background(), img, idx, cmd, mustInput(t, "x\n"))
	if !errors.Is(err, image.ErrTraceUnsupported) {
		t.Errorf("Trace(arm64 image) = %v, want ErrTraceUnsupported", err)
	}
}

// unprivilegedEnv is set for the test binary TestTraceUnprivileged runs as
// nobody.
const unprivilegedEnv = "EXTRACT_TRACE_UNPRIVILEGED"

// TestTraceUnprivileged runs TestTracePlugin, TestTraceEscape and
// TestTraceSandboxProbe again as nobody, where Trace maps the image's user to the caller in an unprivileged
// user namespace (needs unprivileged user namespaces; skipped where they are
// off).
func TestTraceUnprivileged(t *testing.T) {
	traceable(t)
	if os.Getenv(unprivilegedEnv) != "" {
		t.Skip("already unprivileged")
	}
	if err := exec.Command("unshare", "--user", "true").Run(); err != nil {
		t.Skipf("unprivileged user namespaces unavailable (unshare --user: %v)", err)
	}
	dir, wd, fixturesCopy := unprivilegedTree(t)
	bin := testkit.WriteExec(t, filepath.Join(dir, "image.test"), testkit.ReadFile(t, os.Args[0]))
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^(TestTracePlugin|TestTraceEscape|TestTraceSandboxProbe)$", "-test.count", "1", "-test.v")
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+tmp, "HOME="+tmp, "EXTRACT_FIXTURES="+fixturesCopy)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	for _, name := range []string{"TestTracePlugin", "TestTraceEscape", "TestTraceSandboxProbe"} {
		if err != nil || !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Fatalf("%s as nobody: %v\n%s", name, err, out)
		}
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "static closure:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// unprivilegedTree lays out, in a directory nobody can reach, what the
// test binary run as nobody needs: the repository's go.mod and
// testdata/trace (for testkit.Path), the package directory to run in, and a
// copy of the sh-tools fixture. The checkout and the fixtures may sit
// where nobody cannot enter (a clone in root's home, mode 0700).
func unprivilegedTree(t *testing.T) (dir, wd, fixtures string) {
	t.Helper()
	dir = testkit.OpenTempDir(t)
	testkit.WriteFile(t, filepath.Join(dir, "go.mod"), testkit.ReadFile(t, testkit.Path(t, "go.mod")))
	testkit.CopyTree(t, testkit.Path(t, "testdata/trace"), filepath.Join(dir, "testdata", "trace"))
	wd = filepath.Join(dir, "pkg", "image")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	fixtures = filepath.Join(dir, "fixtures")
	src := testkit.Fixtures(t)
	testkit.CopyTree(t, filepath.Join(src, "sh-tools"), filepath.Join(fixtures, "sh-tools"))
	testkit.WriteFile(t, filepath.Join(fixtures, "sh-tools.json"), testkit.ReadFile(t, filepath.Join(src, "sh-tools.json")))
	return dir, wd, fixtures
}
