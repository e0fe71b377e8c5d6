package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The programs Build made, by package and architecture: each is built once
// per test binary.
var builds struct {
	mu   sync.Mutex
	done map[string]*build
}

type build struct {
	once sync.Once
	bin  []byte
	err  error
}

// Bootstrap is the package of the Lambda bootstrap, for Build.
const Bootstrap = "cmd/bootstrap"

// TestProg is the package of pkg/runtime's static test program (cat, echo,
// exit codes, ...; see pkg/runtime/testdata/testprog), for Build.
const TestProg = "pkg/runtime/testdata/testprog"

// Build returns the static linux/goarch program (CGO_ENABLED=0, -trimpath,
// stripped) of the repository's package pkg, a slash-separated path from
// the repository root ("cmd/bootstrap"); goarch "" is the host's. Each is
// built once per test binary. For TestMain, which has no testing.TB.
func Build(pkg, goarch string) ([]byte, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]*build{}
	}
	b := builds.done[pkg+" "+goarch]
	if b == nil {
		b = &build{}
		builds.done[pkg+" "+goarch] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.bin, b.err = goBuild(root, "./"+pkg, staticFlags, linux(goarch)) })
	return b.bin, b.err
}

// GoBuild is Build, failing the test on an error.
func GoBuild(t testing.TB, pkg, goarch string) []byte {
	t.Helper()
	b, err := Build(pkg, goarch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GoBuildFile is GoBuild written to an executable file in a temporary
// directory, named after the package's last element; it returns the path.
func GoBuildFile(t testing.TB, pkg, goarch string) string {
	t.Helper()
	return WriteExec(t, filepath.Join(t.TempDir(), filepath.Base(pkg)), GoBuild(t, pkg, goarch))
}

// GoProgram builds a static linux/goarch program from the Go source of one
// main package (standard library only) and returns its path in a temporary
// directory.
func GoProgram(t testing.TB, src, goarch string) string {
	t.Helper()
	dir := t.TempDir()
	WriteFile(t, filepath.Join(dir, "main.go"), []byte(src))
	WriteFile(t, filepath.Join(dir, "go.mod"), []byte("module prog\n\ngo 1.21\n"))
	b, err := goBuild(dir, ".", staticFlags, append(linux(goarch), "GOFLAGS=-mod=mod"))
	if err != nil {
		t.Fatal(err)
	}
	return WriteExec(t, filepath.Join(dir, "prog"), b)
}

// GoBuildHost builds the repository's package pkg for this host the way a
// developer's plain `go build` does (not trimmed: a CLI built so finds its
// own sources, as bin/extract does) and returns its path in a temporary
// directory.
func GoBuildHost(t testing.TB, pkg string) string {
	t.Helper()
	b, err := goBuild(RepoRoot(t), "./"+pkg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return WriteExec(t, filepath.Join(t.TempDir(), filepath.Base(pkg)), b)
}

// staticFlags are the go build flags of a test program: reproducible paths,
// stripped.
var staticFlags = []string{"-trimpath", "-ldflags", "-s -w"}

// linux is the environment of a static build for linux/goarch ("" is the
// host's architecture).
func linux(goarch string) []string {
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch}
}

// goBuild runs `go build` with flags of pkg in dir, with env added to the
// environment, and returns the program.
func goBuild(dir, pkg string, flags, env []string) ([]byte, error) {
	out, err := os.MkdirTemp("", "extract-test-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	bin := filepath.Join(out, "prog")
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s %s: %v\n%s", strings.Join(args, " "), strings.Join(env, " "), err, b)
	}
	return os.ReadFile(bin)
}

// GCC compiles the C source src (a path) with gcc -O2 and the extra
// arguments and returns the output file. Without gcc the test is skipped
// (failed under CI).
func GCC(t testing.TB, src string, args ...string) []byte {
	t.Helper()
	gcc := Tool(t, "gcc", "install it with `make deps` or apt-get install gcc")
	out := filepath.Join(t.TempDir(), "out")
	argv := append([]string{"-O2", "-o", out, src}, args...)
	if b, err := exec.Command(gcc, argv...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(argv, " "), err, b)
	}
	return ReadFile(t, out)
}

// WriteFile writes b to p (mode 0o644), failing the test on an error.
func WriteFile(t testing.TB, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteExec writes b to p as an executable (mode 0o755) and returns p.
func WriteExec(t testing.TB, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// ReadFile reads p, failing the test on an error.
func ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TempFile writes b to a file name in a temporary directory and returns
// its path.
func TempFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	return WriteFile(t, filepath.Join(t.TempDir(), name), b)
}
