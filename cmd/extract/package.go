package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	"github.com/urfave/cli/v2"
)

var packageCommand = &cli.Command{
	Name:      "package",
	Usage:     "write the self-contained Lambda zip of an image's program",
	ArgsUsage: "IMAGE",
	Description: `Finds the program the image's ENTRYPOINT runs and everything it needs (its
loader, shared libraries, script interpreters, --include files) and writes a
deterministic Lambda zip: a static bootstrap for the image's architecture,
extract.json, and the files under rootfs/ with their loader paths pointed into
the bundle. The same image and flags always give the same bytes (CodeSha256).

IMAGE: REF or docker://REF, docker-daemon:NAME:TAG, docker-archive:FILE.tar,
oci:DIR[:TAG], oci-archive:FILE.tar.

The zip path, its sizes and CodeSha256 go to stdout (a JSON document with
--json); progress and warnings go to stderr.

Examples:
  extract package gcr.io/my-project/momentum:v1 -o momentum.zip
  extract package --platform linux/arm64 docker-archive:momentum.tar -o momentum-arm64.zip
  extract package oci:./layout:v1 --input file --cmd '["--csv","{input}"]' -o fn.zip
  extract package python:3.12-slim --entrypoint /usr/local/bin/python3 \
      --cmd /app/job.py --include '/app/**' --exclude '/usr/share/**' -o job.zip
  extract package momentum:v1 --json | jq -r .code_sha256
  extract package momentum:v1 -o - > fn.zip`,
	Flags: append(imageFlags(),
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "function.zip", TakesFile: true,
			Usage: "write the zip to `FILE` (replaced only once complete); - for stdout, the summary then goes to stderr"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as a JSON document"},
	),
	Action: func(c *cli.Context) error {
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
		fmt.Fprintf(stderr(c), "I'm coming out… packaging %s\n", ref)
		img, err := image.Open(c.Context, ref, openOptions(c)...)
		if err != nil {
			return packageExit(err)
		}
		defer img.Close()
		// With -o - the zip itself is the result on stdout and the
		// summary goes to stderr.
		var res *lambda.PackageResult
		w := stdout(c)
		if out == "-" {
			res, err = lambda.Package(c.Context, img, w, packageOptions(c)...)
			w = stderr(c)
		} else {
			res, err = lambda.PackageFile(c.Context, img, out, packageOptions(c)...)
			if abs, aerr := filepath.Abs(out); aerr == nil {
				out = abs
			}
		}
		if err != nil {
			return packageExit(err)
		}
		for _, msg := range res.Warnings {
			fmt.Fprintf(stderr(c), "warning: %s\n", msg)
		}
		if c.Bool("json") {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Path string `json:"path"`
				*lambda.PackageResult
			}{out, res})
		}
		fmt.Fprintln(w, out)
		fmt.Fprintf(w, "zipped:     %d bytes\n", res.ZippedSize)
		fmt.Fprintf(w, "unzipped:   %d bytes\n", res.UnzippedSize)
		fmt.Fprintf(w, "files:      %d\n", res.Files)
		fmt.Fprintf(w, "arch:       %s\n", res.Arch)
		fmt.Fprintf(w, "CodeSha256: %s\n", res.CodeSHA256)
		return nil
	},
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
