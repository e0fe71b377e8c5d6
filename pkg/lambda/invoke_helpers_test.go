package lambda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Helpers of the tests that run packages with local.Invoke.

var invBuilt struct {
	once                sync.Once
	dir                 string
	bootstrap, testProg string
	err                 error
}

// mustInvBuilt builds the real bootstrap (./cmd/bootstrap) and the static test
// program once per test binary.
func mustInvBuilt(t testing.TB) (bootstrap, testProg string) {
	t.Helper()
	invBuilt.once.Do(func() {
		invBuilt.dir, invBuilt.err = os.MkdirTemp("", "lambda-invoke-test-")
		if invBuilt.err != nil {
			return
		}
		invBuilt.bootstrap = filepath.Join(invBuilt.dir, "bootstrap")
		invBuilt.testProg = filepath.Join(invBuilt.dir, "testprog")
		for out, pkg := range map[string]string{invBuilt.bootstrap: "../../cmd/bootstrap", invBuilt.testProg: "../runtime/testdata/testprog"} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				invBuilt.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if invBuilt.err != nil {
		t.Fatal(invBuilt.err)
	}
	return invBuilt.bootstrap, invBuilt.testProg
}

func mustCSV(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running an image package needs root (mount namespace, chroot): run the tests as root (make test)")
	}
}

// savedFiles reads the files under dir, by slash path relative to it.
func savedFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(mustRead(t, p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
