// Package testkit is what the tests of this repository share: the rule for
// what a test does when something it needs is missing (Missing, Root, Tool,
// Fixtures), builders of images, registries and zips, and `go build` of the
// test programs (the bootstrap, pkg/runtime's test program, small static
// programs).
//
// The rule: tests never install anything. When the Debian fixtures,
// moto_server, a tool `make deps` installs, or root are missing, the test is
// skipped with a message saying how to get them, except under CI (the
// environment variable CI set to anything but "", "0" or "false"; .ci/run
// sets CI=true), where it fails: CI must never silently skip a test.
package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI: CI set to anything but "",
// "0" or "false".
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false":
		return false
	}
	return true
}

// Missing skips the test because what is missing, saying how to get it;
// under CI it fails the test instead.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	msg := what + " (" + how + ")"
	if InCI() {
		t.Fatalf("%s; CI is set, so a missing prerequisite is an error, not a skip", msg)
		return
	}
	t.Skip("skipping: " + msg)
}

// Root requires the test to run as root (why says what needs it): skipped
// otherwise, failed under CI.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "not root: "+why, "run the tests as root: sudo make test")
	}
}

// Tool returns the path of the program name on PATH, or skips the test
// (fails it under CI) saying how to install it: how is e.g. "make deps".
func Tool(t testing.TB, name, how string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH", how)
	}
	return p
}

// FixturesEnv names the environment variable holding the fixtures
// directory made by testdata/make-fixtures.sh.
const FixturesEnv = "EXTRACT_FIXTURES"

// Fixtures returns the directory of the Debian fixtures: EXTRACT_FIXTURES
// (set by `make test`), else the repository's testdata/fixtures when `make
// fixtures` has completed there. It never builds them: without them the
// test is skipped (failed under CI) saying to run `make fixtures`.
func Fixtures(t testing.TB) string {
	t.Helper()
	const how = "run `make fixtures`, which builds testdata/fixtures, or set EXTRACT_FIXTURES to a directory testdata/make-fixtures.sh made"
	if d := os.Getenv(FixturesEnv); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			Missing(t, "Debian fixtures not found: "+FixturesEnv+"="+d+" is not a directory", how)
		}
		return d
	}
	root, err := repoRoot()
	if err == nil {
		d := filepath.Join(root, "testdata", "fixtures")
		// make-fixtures.sh writes .stamp once every fixture is complete.
		if _, err := os.Stat(filepath.Join(d, ".stamp")); err == nil {
			return d
		}
	}
	Missing(t, "Debian fixtures not found: "+FixturesEnv+" is not set and testdata/fixtures is not built", how)
	return ""
}

var repo struct {
	once sync.Once
	dir  string
	err  error
}

// RepoRoot returns the repository's root directory (where go.mod is), found
// from the test's working directory (its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Path returns the repository file or directory at the slash-separated
// path rel (e.g. "testdata/trace/host.c").
func Path(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), filepath.FromSlash(rel))
}

func repoRoot() (string, error) {
	repo.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			repo.err = err
			return
		}
		for d := dir; ; d = filepath.Dir(d) {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && strings.HasPrefix(string(b), "module github.com/comingout/extract\n") {
				repo.dir = d
				return
			}
			if filepath.Dir(d) == d {
				repo.err = fmt.Errorf("no go.mod of github.com/comingout/extract above %s", dir)
				return
			}
		}
	})
	return repo.dir, repo.err
}
