package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// OpenTempDir is a temporary directory any user may enter and write to
// (mode 0o777), removed when the test ends: for files a child running as
// another user (nobody) must reach. t.TempDir's directories are private to
// the test's user, and the repository itself may sit under a directory
// other users cannot enter (a clone in root's home).
func OpenTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "extract-test-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CopyTree copies the directory tree src to dst (which must not exist),
// keeping modes, symbolic and hard links, with cp -a.
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// HostRoot makes a root file system in a temporary directory from this
// host's files: files maps an absolute path in the root to the host file
// copied there (mode 0o755), links an absolute path in the root to the
// target of the symbolic link made there. Parent directories are created.
// A host file that cannot be read skips the test: such tests need a Debian
// x86_64 host, which no install provides.
func HostRoot(t testing.TB, files, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for dst, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("skipping: this machine has no %s (a Debian x86_64 host is needed): %v", src, err)
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		WriteExec(t, p, b)
	}
	for link, target := range links {
		p := filepath.Join(root, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
