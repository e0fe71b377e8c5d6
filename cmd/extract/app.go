package main

import (
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/comingout/extract/pkg/deploy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitFailure  = 1 // any error
	exitUsage    = 2 // bad flags or arguments
	exitNotFound = 3 // image, entrypoint or library not found
	exitRefused  = 4 // deploy/destroy refused before changing AWS: overlapping or recursive trigger, function or role not made by extract, code too large
)

// usageError marks errors in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	if deploy.IsRefused(err) {
		return exitRefused
	}
	var c cli.ExitCoder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return exitFailure
}

func init() {
	// -v is --verbose: urfave's version flag would also claim -v (and
	// panic with "flag redefined: v"), so it keeps only its long name.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "extract",
		Usage:   "turn a Linux container image into an AWS Lambda function triggered by CSV uploads to S3",
		Version: version,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug details to stderr"},
		},
		Commands: []*cli.Command{
			inspectCommand,
			filesCommand,
			packageCommand,
			invokeCommand,
			deployCommand,
			destroyCommand,
		},
		HideHelpCommand:      true,
		EnableBashCompletion: true,
	}
}

// logger returns the logger the CLI hands to the libraries: text on stderr,
// debug level with -v.
func logger(c *cli.Context) *slog.Logger {
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr(c), &slog.HandlerOptions{Level: level}))
}

func stderr(c *cli.Context) io.Writer {
	if c.App.ErrWriter != nil {
		return c.App.ErrWriter
	}
	return os.Stderr
}

func stdout(c *cli.Context) io.Writer {
	if c.App.Writer != nil {
		return c.App.Writer
	}
	return os.Stdout
}
