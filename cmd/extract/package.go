package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

var packageCommand = &cli.Command{
	Name:      "package",
	Usage:     "write the Lambda package of an image's program: a zip, or a container image",
	ArgsUsage: "IMAGE",
	Description: `Finds the program the image's ENTRYPOINT runs and everything it needs (its
loader, shared libraries, script interpreters, --include files) and writes a
Lambda package with a static bootstrap for the image's architecture and its
manifest, extract.json. The same image and flags always give the same bytes.
The Closure flags are those of inspect and deploy, with the same meaning.

Two formats:
  zip    a deterministic zip (CodeSha256): the files under rootfs/, their
         loader paths and "#!" lines pointed into the bundle. Lambda keeps it
         at /var/task, so a program that opens a path compiled into it
         (/usr/share/tcltk, /etc/fonts, its own /etc/app.conf) finds nothing
         there: package warns, naming the paths.
  image  a single-platform Lambda container image, files at their original
         paths, the bootstrap as ENTRYPOINT: the whole image plus one layer
         (the source's layers reused as they are), or with --slim only the
         closure. -o takes oci:DIR[:TAG], docker-archive:FILE[:REF] or a
         registry reference (docker://REF, or REF with a registry host), pushed.
  auto   a zip unless closure files name image paths a zip would move (see
         extract inspect, PATHS) or the closure exceeds 250 MB; -o must then
         suit the choice.
The format defaults to image when -o is an image destination, else zip.

IMAGE: REF or docker://REF, docker-daemon:NAME:TAG, docker-archive:FILE.tar,
oci:DIR[:TAG], oci-archive:FILE.tar.

Where it wrote, the sizes and CodeSha256 or the image digest go to stdout (a
JSON document with --json); progress and warnings go to stderr.

Examples:
  extract package gcr.io/my-project/momentum:v1 -o momentum.zip
  extract package --platform linux/arm64 docker-archive:momentum.tar -o momentum-arm64.zip
  extract package oci:./layout:v1 --input file --cmd '["--csv","{input}"]' -o fn.zip
  extract package python:3.12-slim --entrypoint /usr/local/bin/python3 \
      --cmd /app/job.py --include '/app/**' --exclude '/usr/share/**' -o job.zip
  extract package my-tcl-app:v1 -o oci:./fn-image                  # a Lambda container image
  extract package my-tcl-app:v1 --slim -o docker-archive:fn.tar    # only the closure, at its paths
  extract package my-tcl-app:v1 -o 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fn:v1
  extract package momentum:v1 --format auto -o momentum.zip        # fails if it needs an image
  extract package momentum:v1 --json | jq -r .code_sha256
  extract package momentum:v1 -o - > fn.zip
  extract package files:v1 --cmd '["-o","{output}"]' -o fn.zip     # uploads the file, not stdout
  extract package files:v1 --cmd '["-o","{output}"]' --stdout-also -o fn.zip   # and stdout as KEY.stdout
  extract package files:v1 --output-dir /out -o fn.zip             # uploads output/KEY/... + _manifest.json

{output} in --cmd or --entrypoint becomes a fresh file under /tmp; after a
successful run that file is the output object, and stdout goes to the log (or,
with --stdout-also, to OUTPUT_KEY.stdout). With --output-dir DIR (an absolute
image path; it need not exist) the program writes files into DIR, and after a
successful run each file is uploaded as OUTPUT_PREFIX + KEY/PATH (KEY the input
key without --prefix and --suffix), then _manifest.json beside them. Both may
be used at once; --stdout-also needs one of them. A failed run leaves no output
objects.`,
	Flags: append(append(imageFlags(), formatFlags("", "zip, or image when -o is an image destination")...),
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "function.zip", TakesFile: true,
			Usage: "write the zip to `DEST` (replaced only once complete; - for stdout, the summary then goes to stderr), or the image to oci:DIR, docker-archive:FILE or a registry reference"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as a JSON document"},
	),
	Action: packageAction,
}

func packageAction(c *cli.Context) error {
	args, err := positionalArgs(c)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usageError{"package: want exactly one IMAGE argument (see extract package --help)"}
	}
	ref, out := args[0], c.String("output")
	format := c.String("format")
	if format == "" {
		format = lambda.FormatZip
		if imageDestination(out) {
			format = lambda.FormatImage
		}
	}
	if format == lambda.FormatZip && imageDestination(out) {
		return usageError{fmt.Sprintf("package: --format zip writes a file, not %q (give -o FILE.zip, or --format image)", out)}
	}
	if format == lambda.FormatImage && !imageDestination(out) {
		return usageError{fmt.Sprintf("package: --format image writes oci:DIR, docker-archive:FILE or a registry reference, not %q", out)}
	}
	if c.Bool("slim") && format == lambda.FormatZip {
		return usageError{"package: --slim shapes a container image: add --format image (a zip holds only the closure anyway)"}
	}
	fmt.Fprintf(stderr(c), "I'm coming out… packaging %s\n", ref)
	img, err := image.Open(c.Context, ref, openOptions(c)...)
	if err != nil {
		return packageExit(err)
	}
	defer img.Close()
	opts := packageOptions(c)
	var prepared *lambda.Prepared
	if format == lambda.FormatAuto {
		if prepared, err = lambda.Prepare(c.Context, img, opts...); err != nil {
			return packageExit(err)
		}
		format = prepared.Format
		fmt.Fprintf(stderr(c), "format: %s (%s)\n", format, prepared.Reason)
		if (format == lambda.FormatImage) != imageDestination(out) {
			want := "a zip FILE"
			if format == lambda.FormatImage {
				want = "oci:DIR, docker-archive:FILE or a registry reference"
			}
			// Wrapped: urfave/cli would exit on an ExitCoder itself.
			return fmt.Errorf("%w", exitCodeError{code: exitRefused, err: fmt.Errorf("package: --format auto chose %s (%s), but -o %q does not take one: give -o %s, or choose with --format", format, prepared.Reason, out, want)})
		}
	}
	if format == lambda.FormatImage {
		return packageImage(c, img, prepared, out, opts)
	}
	return packageZip(c, img, prepared, out, opts)
}

// packageZip writes the zip and reports it.
func packageZip(c *cli.Context, img *image.Image, prepared *lambda.Prepared, out string, opts []lambda.PackageOption) error {
	// With -o - the zip itself is the result on stdout and the summary
	// goes to stderr.
	var res *lambda.PackageResult
	var err error
	w := stdout(c)
	switch {
	case out == "-" && prepared != nil:
		res, err = prepared.Zip(c.Context, w)
		w = stderr(c)
	case out == "-":
		res, err = lambda.Package(c.Context, img, w, opts...)
		w = stderr(c)
	case prepared != nil:
		res, err = prepared.ZipFile(c.Context, out)
	default:
		res, err = lambda.PackageFile(c.Context, img, out, opts...)
	}
	if err != nil {
		return packageExit(err)
	}
	if abs, aerr := filepath.Abs(out); aerr == nil && out != "-" {
		out = abs
	}
	advisedRes := *res
	advisedRes.Warnings = advisedWarnings(res.Warnings)
	if done, err := packageReport(c, w, advisedRes.Warnings, struct {
		Path   string `json:"path"`
		Format string `json:"format"`
		*lambda.PackageResult
	}{out, lambda.FormatZip, &advisedRes}); done {
		return err
	}
	fmt.Fprintln(w, out)
	fmt.Fprintf(w, "zipped:     %d bytes\n", res.ZippedSize)
	fmt.Fprintf(w, "unzipped:   %d bytes\n", res.UnzippedSize)
	fmt.Fprintf(w, "files:      %d\n", res.Files)
	fmt.Fprintf(w, "arch:       %s\n", res.Arch)
	fmt.Fprintf(w, "CodeSha256: %s\n", res.CodeSHA256)
	return nil
}

// packageImage builds the container image, writes it to out and reports it.
func packageImage(c *cli.Context, img *image.Image, prepared *lambda.Prepared, out string, opts []lambda.PackageOption) error {
	var res *lambda.ImageResult
	var err error
	if prepared != nil {
		res, err = prepared.Image(c.Context)
	} else {
		res, err = lambda.PackageImage(c.Context, img, opts...)
	}
	if err != nil {
		return packageExit(err)
	}
	defer res.Close()
	written, err := lambda.WriteImage(c.Context, res.Image, out,
		lambda.WithWriteLogger(logger(c)), lambda.WithWriteProgress(stderr(c)))
	if err != nil {
		return err
	}
	w := stdout(c)
	warnings := advisedWarnings(res.Warnings)
	if done, err := packageReport(c, w, warnings, struct {
		Path     string           `json:"path"`
		Format   string           `json:"format"`
		Warnings []lambda.Warning `json:"warnings,omitempty"`
		*lambda.ImageResult
	}{written, lambda.FormatImage, warnings, res}); done {
		return err
	}
	fmt.Fprintln(w, written)
	fmt.Fprintf(w, "format:     image (%s)\n", res.Shape)
	fmt.Fprintf(w, "layers:     %d\n", res.Layers)
	fmt.Fprintf(w, "compressed: %d bytes\n", res.CompressedSize)
	fmt.Fprintf(w, "size:       %d bytes\n", res.Size)
	fmt.Fprintf(w, "arch:       %s\n", res.Arch)
	if res.Shape == lambda.ShapeWhole {
		fmt.Fprintf(w, "--slim:     would leave out %d files, %d bytes\n", res.SlimOmits.Files, res.SlimOmits.Bytes)
	}
	fmt.Fprintf(w, "digest:     %s\n", res.Digest)
	return nil
}

// packageReport prints the warnings (advised: advisedWarnings) to stderr
// and, with --json, doc to w; done says the JSON document was the report.
func packageReport(c *cli.Context, w io.Writer, warnings []lambda.Warning, doc any) (done bool, err error) {
	for _, msg := range warnings {
		fmt.Fprintf(stderr(c), "warning: %s\n", msg)
	}
	if !c.Bool("json") {
		return false, nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return true, enc.Encode(doc)
}

// imageDestination reports whether -o names a container-image destination
// rather than a zip file: oci:, docker-archive: or docker://, or a
// reference whose first component is a registry host (has a dot or a port,
// or is localhost). A plain path ("out/fn", "fn.zip") is a file.
func imageDestination(out string) bool {
	for _, p := range []string{"oci:", "docker-archive:", "docker://"} {
		if strings.HasPrefix(out, p) {
			return true
		}
	}
	if out == "-" || strings.HasSuffix(out, ".zip") {
		return false
	}
	host, _, ok := strings.Cut(out, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return false
	}
	_, err := name.ParseReference(out)
	return err == nil
}

// packageExit gives the errors the user fixes by pointing at another image,
// program or library the documented "not found" exit code. The code rides
// on a wrapped error so that urfave/cli leaves printing and exiting to main.
func packageExit(err error) error {
	var (
		missing    *image.MissingLibraryError
		entrypoint *image.EntrypointError
	)
	if errors.As(err, &missing) || errors.As(err, &entrypoint) {
		return fmt.Errorf("%w", exitCodeError{err: err, code: exitNotFound})
	}
	return err
}

// exitCodeError attaches an exit code to an error.
type exitCodeError struct {
	err  error
	code int
}

func (e exitCodeError) Error() string { return e.err.Error() }
func (e exitCodeError) Unwrap() error { return e.err }
func (e exitCodeError) ExitCode() int { return e.code }
