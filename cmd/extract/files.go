package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/comingout/extract/pkg/image"
	"github.com/urfave/cli/v2"
)

var filesCommand = &cli.Command{
	Name:      "files",
	Usage:     "copy files out of an image, symlinks resolved inside the image",
	ArgsUsage: "IMAGE PATH...",
	Description: `Copies each PATH out of IMAGE, the way the container would see it: all
layers flattened (whiteouts, opaque directories and hardlinks honored) and
symlinks resolved inside the image, never on this machine. Each PATH is
written under the output directory at the path you gave, as a regular file
with the content its symlinks lead to; a directory is copied with
everything below it. Files are written to a temporary name and renamed,
and nothing is ever written outside the output directory. With -o - a tar
stream goes to stdout instead (reproducible: zero times, root owner).

Only the layers holding the requested files are read a second time;
registry layers are cached (see --cache-dir). Progress goes to stderr.

IMAGE is any of: REF, docker://REF, docker-daemon:NAME[:TAG],
docker-archive:FILE.tar[:REF], oci:DIR[:TAG], oci-archive:FILE.tar[:TAG].

Examples:
  # the program and its loader, out of a registry image
  extract files gcr.io/p/momentum:v1 /usr/local/bin/momentum /lib64/ld-linux-x86-64.so.2 -o out

  # the arm64 variant of a multi-platform image, as a tar on stdout
  extract files --platform linux/arm64 debian:bookworm /bin/ls -o - | tar -tv

  # a whole directory out of a "docker save" archive
  extract files docker-archive:app.tar /etc/ssl/certs -o certs`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "directory to write into, or - for a tar stream on stdout (required)"},
		&cli.StringFlag{Name: "platform", Value: image.DefaultPlatform, Usage: "platform to select from a multi-platform image, os/arch[/variant]"},
		&cli.StringFlag{Name: "cache-dir", Usage: "where registry layers are cached (default: the user cache dir + extract/blobs)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr"},
	},
	Action: func(c *cli.Context) error {
		args, err := positionalArgs(c)
		if errors.Is(err, errHelpShown) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(args) < 2 {
			return usageError{"files: want IMAGE and at least one PATH (see extract files --help)"}
		}
		if c.String("output") == "" {
			return usageError{"files: -o DIR (or -o - for a tar on stdout) is required"}
		}
		opts := []image.Option{image.WithPlatform(c.String("platform")), image.WithLogger(logger(c))}
		if !c.Bool("quiet") {
			opts = append(opts, image.WithProgress(stderr(c)))
		}
		if dir := c.String("cache-dir"); dir != "" {
			opts = append(opts, image.WithCacheDir(dir))
		}
		img, err := image.Open(c.Context, args[0], opts...)
		if err != nil {
			return err
		}
		defer img.Close()
		idx, err := image.BuildIndex(c.Context, img)
		if err != nil {
			return err
		}
		paths := args[1:]
		if out := c.String("output"); out == "-" {
			err = image.WriteTar(c.Context, img, idx, paths, stdout(c))
		} else {
			err = image.WriteDir(c.Context, img, idx, paths, out)
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Wrapped so that main prints it and exits with the code
			// (urfave/cli would exit by itself on a bare ExitCoder).
			return fmt.Errorf("%w", cli.Exit(err, exitNotFound))
		}
		return err
	},
}
