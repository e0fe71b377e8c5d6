package lambda

import (
	"bytes"
	"context"
	"errors"
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

// TestChrootRulesBeyondELF packages programs whose needs only the rules
// beyond ELF find (image.WithImage, on by default in Package) and runs
// each through the real bootstrap in a poisoned root as nobody: a
// "#!/bin/sh" script piping through tail, cut, sort, uniq -c and awk and
// sourcing a helper (nothing added with --include), the same pipeline
// with busybox's sh and applets, a "#!/usr/bin/env
// python3" script using csv, statistics, json, a local module and one
// found through a .pth file, a Perl one-liner using List::Util (XS), and a
// C program calling localtime and getpwuid. The output must equal the
// program's output in its own root.
//
// The C program's user and group columns are the exception, by design:
// glibc reads /etc/passwd and /etc/group at fixed paths, so the bundled
// program sees the host's (here the poisoned root's, which maps uid 65534
// to "lambdauser"), as it would on Lambda; the test checks exactly that.
func TestChrootRulesBeyondELF(t *testing.T) {
	testkit.Root(t, "the test runs the package in a chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	csv := []byte("mass,velocity\n70.5,3\n10,2.5\n1200,27.8\n70.5,4\n0.145,40.2\n10,9\n")
	tests := []struct {
		fixture string
		opts    []PackageOption
		input   []byte
		// hostFiles are written into the poisoned root: what the "host"
		// has where the bundle must not look, or must (passwd).
		hostFiles map[string][]byte
		// fix turns the output in the program's own root into the
		// expected output in the poisoned root.
		fix func(string) string
		// args is the argv of the reference run when it differs from the
		// manifest's (whose paths point into the bundle).
		args []string
	}{
		{fixture: "sh-tools", input: []byte("name,n\nTen,1\nten,2\nfive,3\nTEN,4\nFive,5\none,6\n"), opts: []PackageOption{
			WithCommandOverride(image.Override{Entrypoint: []string{"/usr/local/bin/tally.sh"}, EntrypointSet: true}),
		}},
		{fixture: "busybox", input: []byte("name,n\nTen,1\nten,2\nfive,3\nTEN,4\nFive,5\none,6\n")},
		{fixture: "python", input: csv},
		// Exec form with an absolute script path: the manifest's argument
		// must point into the bundle, not at the host's /app/main.py.
		{fixture: "python", input: csv, args: []string{"python3", "/app/main.py"}, opts: []PackageOption{
			WithCommandOverride(image.Override{Entrypoint: []string{"python3", "/app/main.py"}, EntrypointSet: true}),
		}},
		{fixture: "perl", input: csv},
		{
			fixture: "c-nss",
			input:   []byte("epoch\n0\n1700000000\n1720000000\n1729990000\n"),
			hostFiles: map[string][]byte{
				"etc/passwd":    []byte("root:x:0:0:root:/root:/bin/sh\nlambdauser:x:65534:65534::/tmp:/sbin/nologin\n"),
				"etc/group":     []byte("root:x:0:\nlambdagroup:x:65534:\n"),
				"etc/localtime": testkit.ReadFile(t, filepath.Join(fixtures, "c-nss", "usr", "share", "zoneinfo", "Asia", "Tokyo")),
			},
			fix: func(s string) string {
				s = strings.ReplaceAll(s, ",appuser,", ",lambdauser,")
				return strings.ReplaceAll(s, ",appgroup\n", ",lambdagroup\n")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			v1img, err := imagebuild.Fixture(fixtures, tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			img := imagetest.Serve(t, v1img)
			start := time.Now()
			var zipped bytes.Buffer
			res, err := Package(ctx, img, &zipped, tt.opts...)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			var files int
			var size int64
			for _, f := range res.Closure.Files {
				if f.Kind == image.Regular {
					files++
					size += f.Size
				}
			}
			t.Logf("%s: closure %d files (%d paths), %.2f MB; zip %.2f MB unzipped, %.2f MB zipped; Package took %v; env %q",
				tt.fixture, files, len(res.Closure.Files), float64(size)/(1<<20), float64(res.UnzippedSize)/(1<<20),
				float64(res.ZippedSize)/(1<<20), took.Round(time.Millisecond), res.Manifest.Env)

			// The reference: the program in its own root.
			m := res.Manifest
			direct := exec.CommandContext(ctx, m.Program)
			direct.Args = m.Args
			if tt.args != nil {
				direct.Args = tt.args
			}
			direct.SysProcAttr = &syscall.SysProcAttr{Chroot: filepath.Join(fixtures, tt.fixture), Credential: nobody}
			direct.Dir = m.WorkDir
			if direct.Dir == "" {
				direct.Dir = "/"
			}
			direct.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"}
			// perl -e opens /dev/null as its script file; the fixtures
			// have no /dev (Lambda has).
			devNull(t, filepath.Join(fixtures, tt.fixture), true)
			direct.Stdin = bytes.NewReader(tt.input)
			var stderr bytes.Buffer
			direct.Stderr = &stderr
			out, err := direct.Output()
			if err != nil {
				t.Fatalf("%s in its own root: %v\n%s", m.Program, err, stderr.Bytes())
			}
			want := string(out)
			if strings.Count(want, "\n") < 3 {
				t.Fatalf("%s in its own root printed too little to compare: %q", m.Program, want)
			}
			if tt.fix != nil {
				want = tt.fix(want)
			}

			root := poisonedRoot(t, zipped.Bytes())
			devNull(t, root, false)
			for _, p := range []string{"usr/bin/python3", "usr/bin/python3.11", "usr/bin/perl", "usr/bin/awk", "usr/bin/mawk", "usr/bin/uniq", "usr/bin/cut", "usr/bin/tr", "usr/bin/busybox"} {
				mustWrite(t, filepath.Join(root, p), testkit.ReadFile(t, filepath.Join(root, "bin", "sh")), 0o755)
			}
			for p, b := range tt.hostFiles {
				mustWrite(t, filepath.Join(root, p), b, 0o644)
			}
			got := runBootstrap(ctx, t, root, tt.input)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("output through the bootstrap (-want +got):\n%s", diff)
			}
		})
	}
}

// devNull makes root/dev/null, the character device 1:3, unless there is
// one; with cleanup it is removed at the end of the test.
func devNull(t *testing.T, root string, cleanup bool) {
	t.Helper()
	p := filepath.Join(root, "dev", "null")
	if _, err := os.Lstat(p); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
	mustChmod(t, p, 0o666)
	if cleanup {
		t.Cleanup(func() { os.Remove(p); os.Remove(filepath.Dir(p)) })
	}
}

// TestPackageTooBigNamesRule: over the unzipped limit, the *SizeError says
// which closure rule added the most (the CLI says how to leave it out).
func TestPackageTooBigNamesRule(t *testing.T) {
	fixtures := testkit.Fixtures(t)
	v1img, err := imagebuild.Fixture(fixtures, "python")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img)
	_, err = Package(context.Background(), img, io.Discard, WithBootstrap(testBootstrap), withMaxUnzipped(20<<20))
	var se *SizeError
	if !errors.As(err, &se) {
		t.Fatalf("Package over the limit = %v, want *SizeError", err)
	}
	if se.Rule == nil || se.Rule.Rule != "python" {
		t.Errorf("SizeError.Rule = %+v, want the python rule", se.Rule)
	}
	for _, want := range []string{"rule python added the most", "/usr/lib/python3.11"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Package over the limit: %q, want it to contain %q", err, want)
		}
	}
}
