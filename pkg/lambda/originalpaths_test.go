package lambda

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
)

// TestOriginalPaths is the zip side of programs that open files at absolute
// paths compiled into them (testdata/originalpaths): tclsh8.6 and its
// library home /usr/share/tcltk/tcl8.6, fc-match and /etc/fonts, a shell
// app reading /etc/report/report.conf with sed. Each runs in its own root
// (read-only, a tmpfs on /tmp) as nobody and must print the golden output;
// then the fixture image is packaged as a zip and run through the real
// bootstrap in a poisoned root, as on Lambda, where those paths do not
// exist: the zip moved the files under /var/task. Its output must differ
// from the golden one, or the invocation fail, for that reason; and
// Package must have warned, naming --format image. The image format, which
// keeps the files at their original paths, is what fixes this.
func TestOriginalPaths(t *testing.T) {
	testkit.Root(t, "the test runs the package in a chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	golden := filepath.Join("..", "..", "testdata", "originalpaths")
	tests := []struct {
		fixture string
		program string
		// file is the compiled-in path the program reads.
		file string
		// symptom is what the program says, as a zip, about the missing
		// file: the failure must be that one.
		symptom string
	}{
		{"tcl", "/usr/local/bin/colsum.tcl", "/usr/share/tcltk/tcl8.6/init.tcl", "Can't find a usable init.tcl"},
		{"fontconfig", "/usr/local/bin/fontmatch", "/etc/fonts/fonts.conf", "Fontconfig error: Cannot load default config file"},
		{"shapp", "/usr/local/bin/report", "/etc/report/report.conf", "sed: can't read /etc/report/report.conf: No such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			input := testkit.ReadFile(t, filepath.Join(golden, tt.fixture+".csv"))
			want := string(testkit.ReadFile(t, filepath.Join(golden, tt.fixture+".expected")))

			// The container: the program in its own root, as Lambda runs
			// an image.
			fixture := filepath.Join(fixtures, tt.fixture)
			direct := exec.CommandContext(ctx, tt.program)
			direct.SysProcAttr = &syscall.SysProcAttr{Chroot: readOnlyRoot(t, fixture), Credential: nobody}
			direct.Dir = "/"
			direct.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			direct.Stdin = bytes.NewReader(input)
			var stderr bytes.Buffer
			direct.Stderr = &stderr
			out, err := direct.Output()
			if err != nil {
				t.Fatalf("%s in its own root: %v\n%s", tt.program, err, stderr.Bytes())
			}
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Fatalf("%s in its own root differs from %s.expected (-want +got):\n%s", tt.program, tt.fixture, diff)
			}

			// The zip.
			v1img, err := imagebuild.Fixture(fixtures, tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			var zipped bytes.Buffer
			res, err := Package(ctx, imagetest.Serve(t, v1img), &zipped)
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			if res.Manifest.Program != tt.program {
				t.Fatalf("Program = %q, want %q", res.Manifest.Program, tt.program)
			}
			files, bundled := 0, false
			for _, f := range res.Closure.Files {
				if f.Kind == image.Regular {
					files++
				}
				bundled = bundled || f.Path == tt.file
			}
			t.Logf("%s.zip: %d bytes zipped, %d unzipped, %d files; closure %d regular files (%d paths); %s bundled: %v; warnings %q",
				tt.fixture, res.ZippedSize, res.UnzippedSize, res.Files, files, len(res.Closure.Files), tt.file, bundled, res.Warnings)

			// Never a silent zip that cannot work: Package says so
			// (WarnOriginalPaths, which the CLI advises on with the
			// format that works).
			if !hasWarning(res.Warnings, WarnOriginalPaths) {
				t.Errorf("Warnings = %q, want a WarnOriginalPaths one", res.Warnings)
			}

			got, logs, err := invokeInRoot(ctx, t, poisonedRoot(t, zipped.Bytes()), input)
			if err == nil && got == want {
				// The image format fixes what the zip cannot: if the zip
				// ever reproduces the container's output, this fixture no
				// longer tells them apart.
				t.Fatalf("the zip printed the container's output: %s is no longer a program a zip breaks", tt.program)
			}
			if err != nil {
				t.Logf("%s as a zip: %v", tt.fixture, err)
			} else {
				t.Logf("%s as a zip: wrong output (-container +zip):\n%s\nlast lines of the log: %s",
					tt.fixture, cmp.Diff(want, got), logTail(logs, 3))
			}
			if !strings.Contains(logs, tt.symptom) {
				t.Errorf("the zip's log does not say %q: it failed for another reason than %s", tt.symptom, tt.file)
			}
		})
	}
}

// TestOriginalPathsShowcase: the Fortran showcase, whose files are all
// found by the loader, packages as a zip without the warning that sends
// TestOriginalPaths' programs to --format image.
func TestOriginalPathsShowcase(t *testing.T) {
	fixtures := testkit.Fixtures(t)
	v1img, err := imagebuild.Fixture(fixtures, "fortran-merged")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Package(context.Background(), imagetest.Serve(t, v1img), io.Discard, WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	if hasWarning(res.Warnings, WarnOriginalPaths) {
		t.Errorf("Warnings = %q, want no WarnOriginalPaths one", res.Warnings)
	}
}

// mentions reports whether one of msgs contains s.
// hasWarning reports whether ws holds a warning of kind.
func hasWarning(ws []Warning, kind WarningKind) bool {
	for _, w := range ws {
		if w.Kind == kind {
			return true
		}
	}
	return false
}

// readOnlyRoot bind-mounts dir read-only at a new directory, with a tmpfs
// on its /tmp: the root as Lambda gives an image's program, only /tmp
// writable. Where mounting is not allowed, it returns dir itself (nobody,
// who owns none of its files, can then write only its /tmp).
func readOnlyRoot(t *testing.T, dir string) string {
	t.Helper()
	mnt, err := os.MkdirTemp("", "extract-ro-")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(dir, mnt, "", syscall.MS_BIND, ""); err != nil {
		os.Remove(mnt)
		t.Logf("bind mount of %s: %v; the program runs in the fixture itself", dir, err)
		return dir
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
			return
		}
		os.Remove(mnt)
	})
	if err := syscall.Mount("", mnt, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting %s read-only: %v", mnt, err)
	}
	if err := syscall.Mount("tmpfs", filepath.Join(mnt, "tmp"), "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777,size=64m"); err != nil {
		t.Fatalf("tmpfs on %s/tmp: %v", mnt, err)
	}
	return mnt
}

// logTail returns the last n lines of logs, joined by " / ".
func logTail(logs string, n int) string {
	lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
