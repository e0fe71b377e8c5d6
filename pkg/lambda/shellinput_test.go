package lambda

import (
	"archive/tar"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
)

func TestShellInputArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // nil: no {input} in shell code
	}{
		{"shell form", []string{"/bin/sh", "-c", "tool {input}"},
			[]string{"/bin/sh", "-c", `tool "$1"`, "sh", "{input}"}},
		{"quoted, combined flags", []string{"/bin/bash", "-ec", "tool '{input}' > /dev/null"},
			[]string{"/bin/bash", "-ec", `tool "$1" > /dev/null`, "sh", "{input}"}},
		{"operands already given", []string{"/bin/sh", "-c", `tool {input} "$1"`, "sh", "x"},
			[]string{"/bin/sh", "-c", `tool "$2" "$1"`, "sh", "x", "{input}"}},
		{"busybox, -o option", []string{"busybox", "sh", "-o", "pipefail", "-c", "cat {input} | wc -l"},
			[]string{"busybox", "sh", "-o", "pipefail", "-c", `cat "$1" | wc -l`, "sh", "{input}"}},
		{"the safe form", []string{"/bin/sh", "-c", `tool "$1"`, "sh", "{input}"}, nil},
		{"not a shell", []string{"/usr/bin/tool", "-c", "{input}"}, nil},
		{"a shell running a script file", []string{"/bin/sh", "/app/run.sh", "{input}"}, nil},
		{"no -c string", []string{"/bin/sh", "-c"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := shellInputArgs(tt.args)
			if ok != (tt.want != nil) {
				t.Fatalf("shellInputArgs(%q) = %q, %v; want %v", tt.args, got, ok, tt.want != nil)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shellInputArgs(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

// TestPackageWarnsShellInput: with --input file, a shell-form command with
// {input} in its code is packaged with a warning recommending the "$1"
// form; the safe form, and stdin mode, give none.
func TestPackageWarnsShellInput(t *testing.T) {
	sh := testkit.GoProgram(t, "package main\n\nfunc main() {}\n", "amd64")
	files := []testkit.File{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/sh", From: sh, Mode: 0o755}}
	mk := func(entrypoint ...string) v1.Config {
		return v1.Config{Entrypoint: entrypoint, Env: []string{"PATH=/bin"}}
	}
	const want = `{input} stands inside the shell code "cat {input}"`
	for _, tt := range []struct {
		name  string
		cfg   v1.Config
		mode  string
		warns bool
	}{
		{"shell form, input file", mk("/bin/sh", "-c", "cat {input}"), "file", true},
		{"safe form", mk("/bin/sh", "-c", `cat "$1"`, "sh", "{input}"), "file", false},
		{"stdin", mk("/bin/sh", "-c", "cat {input}"), "stdin", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := imagetest.Serve(t, testkit.Image(t, tt.cfg, files))
			res, err := Package(context.Background(), img, io.Discard, WithBootstrap(testBootstrap), WithInput(tt.mode))
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			var found string
			for _, w := range res.Warnings {
				if strings.Contains(w.Message, "stands inside the shell code") {
					found = w.Message
				}
			}
			switch {
			case tt.warns && !strings.Contains(found, want):
				t.Errorf("warnings %q lack %q", res.Warnings, want)
			case tt.warns && !strings.Contains(found, `["/bin/sh","-c","cat \"$1\"","sh","{input}"]`):
				t.Errorf("warning %q does not recommend the \"$1\" form", found)
			case !tt.warns && found != "":
				t.Errorf("unexpected warning %q", found)
			}
		})
	}
}
