package image_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/pkg/image"
)

// TestMissingLibraryError: every missing soname is reported at once, with
// every file needing it and every directory searched, naming no flag (the
// CLI adds its advice: cmd/extract's TestAdviceImage).
func TestMissingLibraryError(t *testing.T) {
	im, idx := treeImage(t, withTree(map[string]node{
		"/app/prog":            mainProg(elfSpec{rpath: "/opt/a", needed: []string{"libmissing1.so", "liby.so.1"}}),
		usrMult + "/liby.so.1": lib(elfSpec{soname: "liby.so.1", runpath: "$ORIGIN/extra", needed: []string{"libmissing2.so.3", "libmissing1.so"}}),
		// Present only for another machine: still missing.
		"/opt/a/libmissing2.so.3": lib(elfSpec{machine: emAArch64, soname: "libmissing2.so.3"}),
	}), v1.Config{Entrypoint: []string{"/app/prog"}, Env: []string{"LD_LIBRARY_PATH=/opt/env"}}, "linux/amd64")
	_, err := closureOf(im, idx)
	var me *image.MissingLibraryError
	if !errors.As(err, &me) {
		t.Fatalf("Closure = %v, want a *MissingLibraryError", err)
	}
	t.Logf("error: %v", err)
	defaults := []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	want := []image.MissingLib{
		{
			Soname:   "libmissing1.so",
			NeededBy: []string{"/app/prog", usrMult + "/liby.so.1"},
			// From /app/prog: its RPATH, LD_LIBRARY_PATH, defaults; from
			// liby (which has a RUNPATH, so no RPATH of the chain): its
			// RUNPATH.
			Searched: append(append([]string{"/opt/a", "/opt/env"}, defaults...), usrMult+"/extra"),
		},
		{
			Soname:   "libmissing2.so.3",
			NeededBy: []string{usrMult + "/liby.so.1"},
			Searched: append([]string{"/opt/env", usrMult + "/extra"}, defaults...),
		},
	}
	if diff := cmp.Diff(want, me.Missing); diff != "" {
		t.Errorf("Missing (-want +got):\n%s", diff)
	}
	msg := err.Error()
	for _, s := range []string{
		"2 shared libraries are missing",
		"libmissing1.so, needed by /app/prog, /usr/lib/x86_64-linux-gnu/liby.so.1; searched /opt/a:/opt/env:/lib/x86_64-linux-gnu",
		"libmissing2.so.3, needed by /usr/lib/x86_64-linux-gnu/liby.so.1; searched /opt/env:/usr/lib/x86_64-linux-gnu/extra:",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error message lacks %q:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "--") {
		t.Errorf("error message names a flag:\n%s", msg)
	}
}

// TestMissingLoader: a missing PT_INTERP is reported like a library.
func TestMissingLoader(t *testing.T) {
	tree := withTree(map[string]node{"/app/prog": mainProg(elfSpec{interp: "/lib/ld-musl-x86_64.so.1"})})
	im, idx := treeImage(t, tree, v1.Config{Entrypoint: []string{"/app/prog"}}, "linux/amd64")
	_, err := closureOf(im, idx)
	var me *image.MissingLibraryError
	if !errors.As(err, &me) || len(me.Missing) != 1 || me.Missing[0].Soname != "/lib/ld-musl-x86_64.so.1" {
		t.Fatalf("Closure = %v, want a *MissingLibraryError for the loader", err)
	}
}

func TestArchError(t *testing.T) {
	err := error(&image.ArchError{Path: "/usr/bin/x", Machine: "aarch64", Platform: "linux/amd64", Want: "x86_64"})
	if !errors.Is(err, image.ErrArchMismatch) {
		t.Errorf("errors.Is(%v, ErrArchMismatch) = false", err)
	}
	want := "/usr/bin/x is built for aarch64 but the image platform is linux/amd64 (x86_64)"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}
