package image

import (
	"archive/tar"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flatListing describes the tree below dir, one line per path: directories
// with "/" and their mode, symlinks with their target, files with their
// mode, link count and content.
func flatListing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/ "+fi.Mode().String())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			nlink := fi.Sys().(*syscall.Stat_t).Nlink
			out = append(out, rel+" "+fi.Mode().String()+" "+strings.Repeat("+", int(nlink)-1)+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestFlatten(t *testing.T) {
	suid := file("bin/tool", "tool")
	suid.Mode = 0o4755
	sticky := dir("tmp")
	sticky.Mode = 0o1777
	ro := dir("ro")
	ro.Mode = 0o555
	dev := tf{Name: "dev/null", Type: tar.TypeChar}
	img, idx := mustIndex(t,
		[]tf{
			dir("bin"), suid, symlink("bin/sh", "tool"), symlink("bin/abs", "/bin/tool"),
			dir("etc"), file("etc/a", "A"), file("etc/b", "B"),
			dir("opq"), file("opq/old", "old"),
			sticky, ro, file("ro/f", "ro"),
			dir("dev"), dev,
		},
		[]tf{
			dir("etc"), file("etc/.wh.b", ""), hardlink("etc/a2", "etc/a"),
			dir("opq"), file("opq/.wh..wh..opq", ""), file("opq/new", "new"),
		},
	)
	dir := filepath.Join(t.TempDir(), "root")
	if err := Flatten(context.Background(), img, idx, dir); err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	want := []string{
		"./ drwxr-xr-x",
		"bin/ drwxr-xr-x",
		"bin/abs -> /bin/tool",
		"bin/sh -> tool",
		"bin/tool -rwxr-xr-x tool", // setuid dropped
		"dev/ drwxr-xr-x",          // the device left out
		"etc/ drwxr-xr-x",
		"etc/a -rw-r--r-- +A", // hardlinked with etc/a2
		"etc/a2 -rw-r--r-- +A",
		"opq/ drwxr-xr-x",
		"opq/new -rw-r--r-- new",
		"ro/ dr-xr-xr-x",
		"ro/f -rw-r--r-- ro",
		"tmp/ dtrwxrwxrwx",
	}
	if diff := cmp.Diff(want, flatListing(t, dir)); diff != "" {
		t.Errorf("Flatten tree (-want +got):\n%s", diff)
	}
}

// TestFlattenStaysInside feeds Flatten names and symlinks that point out of
// the root: nothing may be written outside dir, and symlinks keep their
// targets verbatim (they resolve inside the chroot).
func TestFlattenStaysInside(t *testing.T) {
	img, idx := mustIndex(t,
		[]tf{
			symlink("up", "../../../.."), symlink("abs", "/"), symlink("dotdot", ".."),
			file("../outside-name", "x"), file("/../../outside-abs", "x"), file("a/../../outside-clean", "x"),
			hardlink("hl", "../outside-target"),
		},
		[]tf{
			// Below a symlink: the index makes these directories.
			file("up/through-up", "x"), file("abs/through-abs", "x"), file("dotdot/through-dotdot", "x"),
		},
	)
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "root")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Flatten(context.Background(), img, idx, dir); err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	var outside []string
	filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if p == dir {
			return filepath.SkipDir
		}
		if p != parent && p != filepath.Join(parent, "a") {
			outside = append(outside, p)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("Flatten wrote outside its directory: %v", outside)
	}
	want := []string{
		"./ drwxr-xr-x",
		"abs/ drwxr-xr-x",
		"abs/through-abs -rw-r--r-- x",
		"dotdot/ drwxr-xr-x",
		"dotdot/through-dotdot -rw-r--r-- x",
		"up/ drwxr-xr-x",
		"up/through-up -rw-r--r-- x",
	}
	if diff := cmp.Diff(want, flatListing(t, dir)); diff != "" {
		t.Errorf("Flatten tree (-want +got):\n%s", diff)
	}
}

// TestFlattenSymlinksVerbatim checks escaping symlink targets are kept as
// written, not resolved on the host.
func TestFlattenSymlinksVerbatim(t *testing.T) {
	img, idx := mustIndex(t, []tf{symlink("up", "../../../etc/passwd"), symlink("abs", "/etc/shadow"), symlink("loop", "loop")})
	dir := filepath.Join(t.TempDir(), "root")
	if err := Flatten(context.Background(), img, idx, dir); err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	want := []string{"./ drwxr-xr-x", "abs -> /etc/shadow", "loop -> loop", "up -> ../../../etc/passwd"}
	if diff := cmp.Diff(want, flatListing(t, dir)); diff != "" {
		t.Errorf("Flatten tree (-want +got):\n%s", diff)
	}
}

func TestFlattenRefusesNonEmptyDir(t *testing.T) {
	img, idx := mustIndex(t, []tf{file("f", "x")})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Flatten(context.Background(), img, idx, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Flatten into a non-empty directory: %v, want a \"not empty\" error", err)
	}
}
