package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

// hostTrueArchive writes a docker-archive of a tiny merged-/usr image made
// of this Debian machine's /usr/bin/true, its loader and libc, with /usr/bin
// in a layer of its own; extra maps more image paths to the host files they
// are copies of.
func hostTrueArchive(t *testing.T, extra ...map[string]string) string {
	t.Helper()
	files := map[string]string{
		"/usr/bin/true":                                  "/usr/bin/true",
		"/usr/lib/x86_64-linux-gnu/libc.so.6":            "/lib/x86_64-linux-gnu/libc.so.6",
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
	}
	for _, m := range extra {
		for dst, src := range m {
			files[dst] = src
		}
	}
	root := testkit.HostRoot(t, files, map[string]string{"/lib": "usr/lib", "/lib64": "usr/lib64", "/bin": "usr/bin",
		"/usr/lib64/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"})
	img, err := imagebuild.FromDir(root, v1.Config{Entrypoint: []string{"true"}, Env: []string{"PATH=/usr/local/bin:/bin"}, WorkingDir: "/"},
		imagebuild.WithLayer(imagebuild.Layer{CreatedBy: "COPY true /usr/bin/", Prefixes: []string{"/usr/bin"}}))
	if err != nil {
		t.Fatal(err)
	}
	return testkit.DockerArchive(t, img, "true")
}

func TestInspectCommand(t *testing.T) {
	archive := hostTrueArchive(t)
	out, stderr, err := runApp(t, "inspect", "docker-archive:"+archive)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"platform:    linux/amd64",
		`entrypoint:  ["true"]`,
		`runs:        ["true"] (/bin/true)`,
		"env:         PATH=/usr/local/bin:/bin",
		"LAYERS (dive efficiency 100.0%, wasted 0 B",
		"COPY true /usr/bin/",
		"CLOSURE (7 files",
		"arch x86_64, loader /lib64/ld-linux-x86-64.so.2",
		"/bin -> usr/bin",
		"/usr/bin/true ",
		"entrypoint",
		"/usr/lib/x86_64-linux-gnu/libc.so.6",
		"needed libc.so.6 by /usr/bin/true",
		"loader of /usr/bin/true",
		"library path: /lib/x86_64-linux-gnu",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "indexing layer") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
}

func TestInspectCommandJSON(t *testing.T) {
	archive := hostTrueArchive(t)
	// Flags before and after IMAGE, as people type them.
	out, stderr, err := runApp(t, "inspect", "--entrypoint", "/usr/bin/true", "docker-archive:"+archive, "--json", "--cmd", `["--version"]`)
	if err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, stderr)
	}
	var doc struct {
		Platform string        `json:"platform"`
		Command  image.Command `json:"command"`
		Report   image.Report  `json:"layer_report"`
		Layers   []image.Layer `json:"layers"`
		Closure  struct {
			Files []image.File `json:"files"`
			Arch  string       `json:"arch"`
		} `json:"closure"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, out)
	}
	if diff := cmp.Diff([]string{"/usr/bin/true", "--version"}, doc.Command.Args); diff != "" {
		t.Errorf("command args (-want +got):\n%s", diff)
	}
	var paths []string
	for _, f := range doc.Closure.Files {
		paths = append(paths, f.Path)
	}
	want := []string{"/lib", "/lib64", "/usr/bin/true", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/usr/lib64/ld-linux-x86-64.so.2"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("closure paths (-want +got):\n%s", diff)
	}
	if doc.Platform != "linux/amd64" || doc.Closure.Arch != "x86_64" || len(doc.Layers) != 2 || len(doc.Report.Layers) != 2 {
		t.Errorf("document: platform %q arch %q, %d layers, %d in the report", doc.Platform, doc.Closure.Arch, len(doc.Layers), len(doc.Report.Layers))
	}
}

func TestInspectCommandErrors(t *testing.T) {
	archive := hostTrueArchive(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		wantOut  string
	}{
		{"missing entrypoint", []string{"--entrypoint", "/usr/bin/ture"}, exitNotFound, `entrypoint "/usr/bin/ture": not found`, "LAYERS"},
		{"exclude the loader", []string{"--exclude", "/usr/lib/x86_64-linux-gnu/ld-*"}, exitFailure, "the program's loader", "LAYERS"},
		{"no image", nil, exitUsage, "want exactly one IMAGE", ""},
		{"bad --cmd", []string{"--cmd", "[1,2]"}, exitUsage, "not a JSON array of strings", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"inspect"}, tt.args...)
			if tt.name != "no image" {
				args = append(args, "docker-archive:"+archive)
			}
			out, _, err := runApp(t, args...)
			if err == nil {
				t.Fatalf("inspect %q succeeded, want an error", tt.args)
			}
			if code := exitCode(err); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (error %v)", code, tt.wantCode, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			var ue usageError
			if tt.wantCode == exitUsage && !errors.As(err, &ue) {
				t.Errorf("error %v is not a usage error", err)
			}
		})
	}
}

// fixtureArchive writes a docker-archive of a Debian fixture (see
// testdata/make-fixtures.sh); without the fixtures the test is skipped
// (failed under CI), see testkit.Fixtures.
func fixtureArchive(t *testing.T, fixture string) string {
	t.Helper()
	img, _ := testkit.FixtureImage(t, fixture)
	return testkit.DockerArchive(t, img, fixture)
}

// TestInspectPaths checks the PATHS section: the Fortran showcase names no
// image path a zip would move (format zip); the Python fixture's OpenSSL
// and standard library do (format image).
func TestInspectPaths(t *testing.T) {
	t.Run("fortran-merged", func(t *testing.T) {
		archive := fixtureArchive(t, "fortran-merged")
		out, stderr, err := runApp(t, "inspect", "--no-layers", "docker-archive:"+archive)
		if err != nil {
			t.Fatalf("inspect: %v\n%s", err, stderr)
		}
		for _, want := range []string{
			"\nPATHS (image paths closure files name, which a zip would move to /var/task/rootfs)\n  none\n",
			"\nan image package with --slim leaves out 2",
			" of the whole image\nformat auto picks: zip\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, out)
			}
		}
		out, stderr, err = runApp(t, "inspect", "--no-layers", "--json", "docker-archive:"+archive)
		if err != nil {
			t.Fatalf("inspect --json: %v\n%s", err, stderr)
		}
		var doc struct {
			PathRefs  []image.PathRef  `json:"path_refs"`
			Format    string           `json:"format"`
			SlimOmits lambda.FileCount `json:"slim_omits"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, out)
		}
		if doc.PathRefs == nil || len(doc.PathRefs) != 0 || doc.Format != "zip" || doc.SlimOmits.Files < 200 || doc.SlimOmits.Bytes == 0 {
			t.Errorf("path_refs %v, format %q, slim_omits %+v; want [], zip, the files outside the closure", doc.PathRefs, doc.Format, doc.SlimOmits)
		}
	})
	t.Run("python", func(t *testing.T) {
		archive := fixtureArchive(t, "python")
		out, stderr, err := runApp(t, "inspect", "--no-layers", "docker-archive:"+archive)
		if err != nil {
			t.Fatalf("inspect: %v\n%s", err, stderr)
		}
		_, section, _ := strings.Cut(out, "\nPATHS ")
		for _, want := range []string{
			"  FILE ",
			"  /usr/lib/python3.11/mimetypes.py  ",
			" /etc/mime.types ",
			" /usr/lib/x86_64-linux-gnu/ossl-modules ",
			"\nformat auto picks: image (files at their original paths: see --format image)\n",
		} {
			if !strings.Contains(section, want) {
				t.Errorf("PATHS section lacks %q:\n%s", want, section)
			}
		}
		out, stderr, err = runApp(t, "inspect", "--no-layers", "--json", "docker-archive:"+archive)
		if err != nil {
			t.Fatalf("inspect --json: %v\n%s", err, stderr)
		}
		var doc struct {
			PathRefs []image.PathRef `json:"path_refs"`
			Format   string          `json:"format"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, out)
		}
		want := image.PathRef{File: "/usr/lib/python3.11/mimetypes.py", Path: "/etc/mime.types", Kind: "file"}
		found := false
		for _, r := range doc.PathRefs {
			found = found || r == want
		}
		if !found || doc.Format != "image" {
			t.Errorf("path_refs %v, format %q; want %+v among them and image", doc.PathRefs, doc.Format, want)
		}
	})
}
