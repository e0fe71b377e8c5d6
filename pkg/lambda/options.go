package lambda

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// PackageOption configures Package.
type PackageOption func(*packageOptions) error

type packageOptions struct {
	override        image.Override
	closure         []image.ClosureOption
	input           xruntime.Input
	output          xruntime.Output
	writableWorkDir bool
	// passAWSCredentials is set by WithPassAWSCredentials.
	passAWSCredentials bool
	// slim is set by WithSlim (imagepkg.go).
	slim      bool
	bootstrap func(arch string) ([]byte, error)
	logger    *slog.Logger
	tool      string
	// trace is set by WithTrace (trace.go).
	trace *traceSettings
	// maxUnzipped is Lambda's unzipped limit and maxImage its image
	// size limit; tests lower them.
	maxUnzipped, maxImage int64
}

// Defaults of the package options, as recorded in the manifest.
const (
	DefaultInputPrefix  = "input/"
	DefaultInputSuffix  = xruntime.DefaultInputSuffix
	DefaultOutputPrefix = xruntime.DefaultOutputPrefix
)

func makePackageOptions(opts ...PackageOption) (*packageOptions, error) {
	o := &packageOptions{
		input:       xruntime.Input{Mode: xruntime.InputStdin, Prefix: DefaultInputPrefix, Suffix: DefaultInputSuffix},
		output:      xruntime.Output{Prefix: DefaultOutputPrefix, Stdout: xruntime.StdoutFile},
		logger:      slog.New(slog.DiscardHandler),
		tool:        "dev",
		maxUnzipped: MaxUnzippedSize,
		maxImage:    MaxImageSize,
	}
	var errs []error
	for _, opt := range opts {
		if err := opt(o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := checkKeys(o.input, o.output); err != nil {
		return nil, err
	}
	return o, nil
}

// checkKeys refuses an output location that can match the trigger's filter:
// every output written would run the function again.
func checkKeys(in xruntime.Input, out xruntime.Output) error {
	if out.Bucket != "" {
		return nil
	}
	if what := outputsMatchTrigger(in, out); what != "" {
		// No bucket: package refuses it as an invalid setting, not as a
		// deploy refusal (see RecursionError.Bucket).
		return &RecursionError{TriggerPrefix: in.Prefix, TriggerSuffix: in.Suffix,
			OutputPrefix: out.Prefix, OutputSuffix: out.Suffix, What: what}
	}
	return nil
}

// WithCommandOverride replaces the image's ENTRYPOINT and/or CMD, as `docker
// run --entrypoint` and arguments do. Default: the image config's.
func WithCommandOverride(ov image.Override) PackageOption {
	return func(o *packageOptions) error {
		if ov.EntrypointSet && len(ov.Entrypoint) > 0 && ov.Entrypoint[0] == "" {
			return errors.New("entrypoint override: empty program name")
		}
		o.override = ov
		return nil
	}
}

// WithClosureOptions passes options to image.Closure through image.Resolve
// (image.WithInclude and image.WithExclude globs, image.WithGconv, ...).
// Options accumulate over calls. Default: none.
func WithClosureOptions(opts ...image.ClosureOption) PackageOption {
	return func(o *packageOptions) error {
		for _, c := range opts {
			if c == nil {
				return errors.New("nil closure option")
			}
		}
		o.closure = append(o.closure, opts...)
		return nil
	}
}

// WithInput sets how an S3 object reaches the program: "stdin" (default:
// streamed to its standard input) or "file" (downloaded under /tmp; its path
// replaces "{input}" in the arguments).
func WithInput(mode string) PackageOption {
	return func(o *packageOptions) error {
		if mode != xruntime.InputStdin && mode != xruntime.InputFile {
			return fmt.Errorf("input mode %q: want %q or %q", mode, xruntime.InputStdin, xruntime.InputFile)
		}
		o.input.Mode = mode
		return nil
	}
}

// WithPrefix sets the key prefix of the objects that trigger the function
// (default "input/"); it is removed from the key to form the output key. ""
// means every key.
func WithPrefix(prefix string) PackageOption {
	return func(o *packageOptions) error {
		if err := checkKeyPart("input prefix", prefix); err != nil {
			return err
		}
		o.input.Prefix = prefix
		return nil
	}
}

// WithSuffix sets the key suffix of the objects that trigger the function
// (default ".csv"). "" means every key.
func WithSuffix(suffix string) PackageOption {
	return func(o *packageOptions) error {
		if err := checkKeyPart("input suffix", suffix); err != nil {
			return err
		}
		o.input.Suffix = suffix
		return nil
	}
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// WithOutput sets where the program's standard output goes: the object
// bucket/prefix+(input key without the input prefix)+suffix. Defaults: the
// input object's bucket (bucket ""), prefix "output/", no suffix. The prefix
// must not be empty.
func WithOutput(bucket, prefix, suffix string) PackageOption {
	return func(o *packageOptions) error {
		var errs []error
		if bucket != "" && !validBucketName(bucket) {
			errs = append(errs, fmt.Errorf("output bucket %q is not a valid S3 bucket name", bucket))
		}
		if prefix == "" {
			errs = append(errs, errors.New("output prefix must not be empty"))
		}
		errs = append(errs, checkKeyPart("output prefix", prefix), checkKeyPart("output suffix", suffix))
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.output.Bucket, o.output.Prefix, o.output.Suffix = bucket, prefix, suffix
		return nil
	}
}

// WithStdout sets what the program writes its standard output to on
// Lambda: xruntime.StdoutFile (default), a file under /tmp uploaded as it
// grows — some runtimes, libgfortran's among them, buffer their output
// only on regular files — or xruntime.StdoutPipe, for a program that must
// see a pipe.
func WithStdout(mode string) PackageOption {
	return func(o *packageOptions) error {
		if mode != xruntime.StdoutFile && mode != xruntime.StdoutPipe {
			return fmt.Errorf("stdout mode %q: want %q or %q", mode, xruntime.StdoutFile, xruntime.StdoutPipe)
		}
		o.output.Stdout = mode
		return nil
	}
}

// WithStdoutAlso keeps the program's standard output as <output key>.stdout
// when its output is a file ("{output}" in the arguments) or a directory
// (WithOutputDir); without it that stdout goes to the log. Packaging fails
// when the program has neither. Default: false.
func WithStdoutAlso(keep bool) PackageOption {
	return func(o *packageOptions) error {
		o.output.StdoutAlso = keep
		return nil
	}
}

// WithOutputDir sets the directory the program writes its output files
// into: an absolute, clean image path other than "/" and not under /proc,
// /sys or /dev. It need not exist in the image: the bootstrap makes it a
// writable directory under /tmp. After a successful run every file the run
// created or changed there is uploaded to output prefix + (input key
// without the trigger prefix and suffix) + "/" + its path in dir, then
// xruntime.OutputDirManifest beside them (with "{output}" in the
// arguments too, that file is the output object). Default (or ""): none,
// the output is stdout or "{output}".
func WithOutputDir(dir string) PackageOption {
	return func(o *packageOptions) error {
		if dir == "" {
			o.output.Dir = ""
			return nil
		}
		if err := checkOutputDir(dir); err != nil {
			return err
		}
		o.output.Dir = dir
		return nil
	}
}

// checkOutputDir checks an output directory's image path.
func checkOutputDir(dir string) error {
	switch {
	case !path.IsAbs(dir):
		return fmt.Errorf("output directory %q: not an absolute image path", dir)
	case path.Clean(dir) != dir:
		return fmt.Errorf("output directory %q: not a clean path (want %q)", dir, path.Clean(dir))
	case dir == "/":
		return errors.New("output directory \"/\": the image's root cannot be the output directory")
	case strings.ContainsAny(dir, "\x00\n\r"):
		return fmt.Errorf("output directory %q holds a control character", dir)
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if dir == sys || strings.HasPrefix(dir, sys+"/") {
			return fmt.Errorf("output directory %q: %s belongs to the kernel, not the program's files", dir, sys)
		}
	}
	return nil
}

func checkKeyPart(what, s string) error {
	if len(s) > 512 {
		return fmt.Errorf("%s is %d bytes long, S3 keys are at most 1024", what, len(s))
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		return fmt.Errorf("%s %q holds a control character", what, s)
	}
	if strings.ContainsAny(s, "*?") {
		return fmt.Errorf("%s %q holds \"*\" or \"?\", which IAM reads as wildcards in the role's policy", what, s)
	}
	return nil
}

// WithWritableWorkDir asks the bootstrap to run the program in a writable
// copy of its WORKDIR under /tmp, for programs that write next to
// themselves (Lambda's task root is read-only). Default: false.
func WithWritableWorkDir(writable bool) PackageOption {
	return func(o *packageOptions) error {
		o.writableWorkDir = writable
		return nil
	}
}

// WithPassAWSCredentials passes the function's AWS credentials to the
// program, with the region and endpoints an AWS SDK needs to use them
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_*), for a program
// that calls AWS itself; the manifest records it. Default: false, the
// program sees no AWS_* variable (see xruntime.Environ).
func WithPassAWSCredentials(pass bool) PackageOption {
	return func(o *packageOptions) error {
		o.passAWSCredentials = pass
		return nil
	}
}

// WithBootstrap sets the function returning the bootstrap program for a Go
// architecture ("amd64" or "arm64"). Default: [Bootstrap].
func WithBootstrap(fn func(arch string) ([]byte, error)) PackageOption {
	return func(o *packageOptions) error {
		if fn == nil {
			return errors.New("bootstrap provider must not be nil")
		}
		o.bootstrap = fn
		return nil
	}
}

// WithLogger sets the logger for progress and debug details. Default:
// discard.
func WithLogger(l *slog.Logger) PackageOption {
	return func(o *packageOptions) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
		return nil
	}
}

// WithToolVersion sets the extract version recorded in the manifest.
// Default: "dev".
func WithToolVersion(v string) PackageOption {
	return func(o *packageOptions) error {
		if v == "" {
			return errors.New("tool version must not be empty")
		}
		o.tool = v
		return nil
	}
}

// withMaxUnzipped lowers the unzipped size limit, for tests.
func withMaxUnzipped(n int64) PackageOption {
	return func(o *packageOptions) error {
		o.maxUnzipped = n
		return nil
	}
}

// withMaxImage lowers the container image size limit, for tests.
func withMaxImage(n int64) PackageOption {
	return func(o *packageOptions) error {
		o.maxImage = n
		return nil
	}
}
