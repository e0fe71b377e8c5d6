package lambda

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

func TestWithOutputDir(t *testing.T) {
	for _, tt := range []struct {
		dir  string
		want string // "" accepted, else a part of the error
	}{
		{"/out", ""},
		{"/work/results", ""},
		{"/tmp/out", ""},
		{"/devices", ""},
		{"out", "not an absolute image path"},
		{"/out/", "not a clean path"},
		{"/work/../out", "not a clean path"},
		{"/", "root cannot be"},
		{"/proc/self", "belongs to the kernel"},
		{"/sys", "belongs to the kernel"},
		{"/dev/shm", "belongs to the kernel"},
		{"/out\nx", "control character"},
	} {
		_, err := makePackageOptions(WithOutputDir(tt.dir))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("WithOutputDir(%q) = %v, want accepted", tt.dir, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("WithOutputDir(%q) = %v, want an error with %q", tt.dir, err, tt.want)
		}
	}
}

func TestCheckOutput(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		out  xruntime.Output
		want bool // refused
	}{
		{"stdout", []string{"/p"}, xruntime.Output{}, false},
		{"{output}", []string{"/p", "-o", "{output}"}, xruntime.Output{}, false},
		{"{output} in an argument", []string{"/p", "--out={output}"}, xruntime.Output{StdoutAlso: true}, false},
		{"dir", []string{"/p"}, xruntime.Output{Dir: "/out", StdoutAlso: true}, false},
		{"{output} and a dir", []string{"/p", "{output}"}, xruntime.Output{Dir: "/out", StdoutAlso: true}, false},
		{"stdout also without a file", []string{"/p", "{input}"}, xruntime.Output{StdoutAlso: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOutput(xruntime.Manifest{Args: tt.args, Output: tt.out})
			var oe *OutputSettingsError
			if got := errors.As(err, &oe); got != tt.want {
				t.Fatalf("checkOutput(%q, %+v) = %v, want refused %v", tt.args, tt.out, err, tt.want)
			}
		})
	}
}

// TestCheckRecursionOutputFiles: an output directory's keys end in any
// name, so only disjoint prefixes or another bucket keep them from the
// trigger; the stdout kept beside a file output ends in ".stdout".
func TestCheckRecursionOutputFiles(t *testing.T) {
	csv := xruntime.Input{Prefix: "input/", Suffix: ".csv"}
	for _, tt := range []struct {
		name string
		in   xruntime.Input
		out  xruntime.Output
		want string // RecursionError.What, "" accepted
	}{
		{"dir, defaults", csv, xruntime.Output{Prefix: "output/", Dir: "/out"}, ""},
		{"dir, output under the trigger prefix", csv, xruntime.Output{Prefix: "input/results/", Dir: "/out"}, RecursiveDirKeys},
		{"dir, trigger under the output prefix", xruntime.Input{Prefix: "data/in/", Suffix: ".csv"}, xruntime.Output{Prefix: "data/", Dir: "/out"}, RecursiveDirKeys},
		{"dir, no trigger prefix, output suffix", xruntime.Input{Suffix: ".csv"}, xruntime.Output{Prefix: "output/", Suffix: ".out", Dir: "/out"}, RecursiveDirKeys},
		{"dir, another bucket", xruntime.Input{Suffix: ".csv"}, xruntime.Output{Bucket: "results", Prefix: "output/", Dir: "/out"}, ""},
		{"file, output suffix .out", xruntime.Input{Suffix: ".csv"}, xruntime.Output{Prefix: "output/", Suffix: ".out"}, ""},
		{"stdout also, output suffix .out", xruntime.Input{Suffix: ".csv"}, xruntime.Output{Prefix: "output/", Suffix: ".out", StdoutAlso: true}, ""},
		{"stdout also, trigger on .stdout", xruntime.Input{Suffix: ".stdout"}, xruntime.Output{Prefix: "output/", Suffix: ".out", StdoutAlso: true}, RecursiveStdoutKeys},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRecursion("uploads", &xruntime.Manifest{Input: tt.in, Output: tt.out})
			var re *RecursionError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckRecursion(%+v, %+v) = %v, want accepted", tt.in, tt.out, err)
			case tt.want != "" && (!errors.As(err, &re) || re.What != tt.want):
				t.Fatalf("CheckRecursion(%+v, %+v) = %v, want a *RecursionError for %s", tt.in, tt.out, err, tt.want)
			}
			// Packaging refuses the same settings.
			_, perr := makePackageOptions(WithPrefix(tt.in.Prefix), WithSuffix(tt.in.Suffix),
				WithOutput(tt.out.Bucket, tt.out.Prefix, tt.out.Suffix), WithStdoutAlso(tt.out.StdoutAlso), WithOutputDir(tt.out.Dir))
			if (perr != nil) != (tt.want != "" && tt.out.Bucket == "") {
				t.Errorf("makePackageOptions(%+v, %+v) = %v, want refused %v", tt.in, tt.out, perr, tt.want != "")
			}
		})
	}
	err := CheckRecursion("uploads", &xruntime.Manifest{Input: csv, Output: xruntime.Output{Prefix: "input/results/", Dir: "/out"}})
	for _, s := range []string{`bucket "uploads"`, `under "input/results/"`, "_manifest.json", `fires on keys under "input/"`, "so no suffix keeps them apart"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("CheckRecursion error %v lacks %q", err, s)
		}
	}
}

// TestPackageOutputSettings packages a small image with the output
// settings: they reach the manifest of a zip and of an image, and
// StdoutAlso with stdout as the output is refused.
func TestPackageOutputSettings(t *testing.T) {
	prog := testkit.GoProgram(t, "package main\n\nfunc main() {}\n", "amd64")
	img := imagetest.Serve(t, testkit.Image(t, v1.Config{Entrypoint: []string{"/bin/prog"}},
		[]testkit.File{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/prog", From: prog, Mode: 0o755}}))
	ctx := context.Background()
	cmd := func(args ...string) PackageOption {
		return WithCommandOverride(image.Override{Cmd: args, CmdSet: true})
	}

	res, err := Package(ctx, img, io.Discard, WithBootstrap(testBootstrap), cmd("-o", "{output}"), WithStdoutAlso(true))
	if err != nil {
		t.Fatalf("Package with {output}: %v", err)
	}
	if m := res.Manifest; strings.Join(m.Args, " ") != "/bin/prog -o {output}" || !m.Output.StdoutAlso || m.Output.Dir != "" {
		t.Errorf("manifest args %q, output %+v; want {output} kept and stdout_also", m.Args, m.Output)
	}
	ires, err := PackageImage(ctx, img, WithBootstrap(testBootstrap), WithOutputDir("/out"), WithStdoutAlso(true))
	if err != nil {
		t.Fatalf("PackageImage with an output directory: %v", err)
	}
	ires.Close()
	if o := ires.Manifest.Output; o.Dir != "/out" || !o.StdoutAlso {
		t.Errorf("image manifest output %+v, want dir /out and stdout_also", o)
	}

	_, err = Package(ctx, img, io.Discard, WithBootstrap(testBootstrap), WithStdoutAlso(true))
	var oe *OutputSettingsError
	if !errors.As(err, &oe) {
		t.Errorf("Package with stdout also and no output file = %v, want an *OutputSettingsError", err)
	}
	_, err = PackageImage(ctx, img, WithBootstrap(testBootstrap), WithStdoutAlso(true))
	if !errors.As(err, &oe) {
		t.Errorf("PackageImage with stdout also and no output file = %v, want an *OutputSettingsError", err)
	}
}

// TestPackageShellOutput packages a shell-form command of the sh-tools
// fixture holding {output} in its code: the zip's relocation points the
// bundled program into the bundle and leaves {output} as it is, and
// package warns about {output} in shell code, recommending the "$1" form.
func TestPackageShellOutput(t *testing.T) {
	fixtures := testkit.Fixtures(t)
	v1img, err := imagebuild.Fixture(fixtures, "sh-tools")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img)
	res, err := Package(context.Background(), img, io.Discard, WithBootstrap(testBootstrap),
		WithCommandOverride(image.Override{Entrypoint: []string{"/bin/sh", "-c", "/usr/bin/sort -o {output}"}, EntrypointSet: true}))
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	m := res.Manifest
	want := m.LinkDir + "/" + xruntime.RootDir + "/usr/bin/sort -o {output}"
	if m.LinkDir == "" || len(m.Args) != 3 || m.Args[2] != want {
		t.Errorf("manifest args %q, want the code %q", m.Args, want)
	}
	var warned bool
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, `{output} stands inside the shell code "/usr/bin/sort -o {output}"`) &&
			strings.Contains(w.Message, `["/bin/sh","-c","/usr/bin/sort -o \"$1\"","sh","{output}"]`) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("warnings %q lack the {output} shell-code warning", res.Warnings)
	}
}

// TestTraceOutputPlaceholder: a traced run gets a writable file for
// {output}, as the bootstrap gives one: the program below fails unless its
// argument is an absolute path it can write.
func TestTraceOutputPlaceholder(t *testing.T) {
	testkit.Root(t, "the trace sandbox runs as root")
	prog := testkit.GoProgram(t, `package main

import (
	"os"
	"path/filepath"
)

func main() {
	if !filepath.IsAbs(os.Args[2]) || os.WriteFile(os.Args[2], []byte("x"), 0o644) != nil {
		os.Exit(3)
	}
}
`, "amd64")
	img := imagetest.Serve(t, testkit.Image(t, v1.Config{Entrypoint: []string{"/bin/prog"}, WorkingDir: "/work"},
		[]testkit.File{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/prog", From: prog, Mode: 0o755}}))
	sample := filepath.Join(t.TempDir(), "sample.csv")
	if err := os.WriteFile(sample, []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Package(context.Background(), img, io.Discard, WithBootstrap(testBootstrap),
		WithCommandOverride(image.Override{Cmd: []string{"-o", "{output}"}, CmdSet: true}), WithTrace(sample, image.WithTraceTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("Package(WithTrace): %v", err)
	}
	if res.Trace == nil || res.Trace.Run == nil || res.Trace.Run.ExitCode != 0 {
		t.Fatalf("traced run %+v, want exit 0", res.Trace)
	}
	if got := res.Manifest.Args; strings.Join(got, " ") != "/bin/prog -o {output}" {
		t.Errorf("manifest args %q, want {output} kept", got)
	}
}
