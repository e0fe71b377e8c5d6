package demo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/comingout/extract/internal/testkit"
)

// runDemo runs examples/fortran-momentum/demo.sh with env added, TMPDIR set
// to a fresh directory (returned), and returns its combined output and error.
// On timeout the script gets SIGTERM, so its trap stops what it started.
func runDemo(t *testing.T, timeout time.Duration, env ...string) (string, string, error) {
	t.Helper()
	repo := testkit.RepoRoot(t)
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "examples", "fortran-momentum", "demo.sh"))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), append([]string{"TMPDIR=" + tmp, "NO_COLOR=1"}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// Whatever happened, nothing of the demo may survive it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return out.String(), tmp, err
}

// assertCleanedUp checks that the demo removed its work directory.
func assertCleanedUp(t *testing.T, tmp string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(tmp, "extract-demo.*"))
	if len(left) > 0 {
		t.Errorf("demo left its work directory behind: %q", left)
	}
}

// TestDemo runs `make demo`'s script end to end: image built without Docker
// and pushed to a local registry, extract inspect, package, deploy (twice)
// to moto, upload, invoke on the S3 event, output checked against
// data/expected.csv. It needs the fixtures (EXTRACT_FIXTURES, `make
// fixtures`) and moto_server; it tests EXTRACT when set, else a fresh build
// of ./cmd/extract.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a minute; skipped with -short")
	}
	fixtures := testkit.Fixtures(t)
	testkit.Tool(t, "moto_server", "install it with `make deps` or pip install 'moto[server]'")
	// The extract under test: EXTRACT, or a fresh build of this tree (its
	// bootstrap is built with the local toolchain on first use).
	bin := os.Getenv("EXTRACT")
	if bin == "" {
		bin = testkit.GoBuildHost(t, "cmd/extract")
	}

	start := time.Now()
	out, tmp, err := runDemo(t, 6*time.Minute, "EXTRACT="+bin, "EXTRACT_FIXTURES="+fixtures)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("demo.sh: %v after %s\n%s", err, elapsed.Round(time.Second), out)
	}
	t.Logf("demo.sh ran in %s", elapsed.Round(100*time.Millisecond))
	for _, want := range []string{
		"pushed 127.0.0.1:",
		"I'm coming out",
		"second deploy: no changes",
		"output/sample.csv == data/expected.csv",
		"== Summary",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q\n%s", want, out)
		}
	}
	// The output printed is the program's.
	expected, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "examples", "fortran-momentum", "data", "expected.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, string(expected)) {
		t.Errorf("demo output lacks the expected CSV %q", expected)
	}

	// Everything it started is stopped: the registry and moto no longer
	// listen, and the work directory is gone.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`pkg/registry on http://(127\.0\.0\.1:\d+)`),
		regexp.MustCompile(`moto_server on http://(127\.0\.0\.1:\d+)`),
	} {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("demo output has no line matching %s", re)
			continue
		}
		if c, err := net.DialTimeout("tcp", m[1], time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after the demo", m[1])
		}
	}
	assertCleanedUp(t, tmp)
}

// TestDemoFailsEarly checks the demo stops with a non-zero status and a
// hint when a prerequisite is missing, and still cleans up.
func TestDemoFailsEarly(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"no extract", []string{"EXTRACT=" + filepath.Join(t.TempDir(), "extract"), "EXTRACT_FIXTURES=" + t.TempDir()}, "run 'make build'"},
		{"no fixtures", []string{"EXTRACT=" + exe, "EXTRACT_FIXTURES=" + t.TempDir()}, "run 'make fixtures'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, tmp, err := runDemo(t, time.Minute, c.env...)
			var exit *exec.ExitError
			if err == nil || !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("demo.sh with %s = %v, want a non-zero exit\n%s", c.name, err, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("demo.sh with %s printed %q, want it to say %q", c.name, out, c.want)
			}
			assertCleanedUp(t, tmp)
		})
	}
}
