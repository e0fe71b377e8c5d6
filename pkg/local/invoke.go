package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"time"
)

// LocalBucket is the bucket WithCSV puts the CSV in.
const LocalBucket = "local"

// DefaultTimeout is the invocation timeout unless WithTimeout
// sets another.
const DefaultTimeout = 30 * time.Second

// Option configures Invoke.
type Option func(*options) error

type options struct {
	event       []byte
	csv         string
	bucket, key string
	timeout     time.Duration
	logger      *slog.Logger
	logWriter   io.Writer
	output      io.Writer
	memoryMB    int
	// saveDir is WithSaveOutputs's directory.
	saveDir string
	// jsonLogs is WithLogFormat(LogFormatJSON).
	jsonLogs bool
	// callerCreds hands the caller's credentials to the function also
	// when S3 is a local endpoint.
	callerCreds bool
	image       imageOptions
}

// WithEvent sends event (JSON, usually an S3 event) as the invocation's
// payload.
func WithEvent(event []byte) Option {
	return func(o *options) error {
		if !json.Valid(event) {
			return errors.New("the event is not valid JSON")
		}
		o.event = event
		return nil
	}
}

// WithCSV runs the function on a local file: it is put at the package's
// input prefix + its base name ("input/day1.csv") in the bucket "local" of the S3 endpoint AWS_ENDPOINT_URL_S3 names, or of an
// in-process local S3 when that is unset, and the output object is fetched
// into the result's Output (or streamed to WithOutputWriter's writer): the
// object at the output key, or, for a program that writes an output
// directory and no "{output}" file, its _manifest.json. The result's
// Outputs list every object the run wrote; WithSaveOutputs saves them all.
func WithCSV(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("empty CSV path")
		}
		o.csv = path
		return nil
	}
}

// WithOutputWriter streams the output object of a WithCSV invocation to w
// instead of keeping it in the result's Output.
func WithOutputWriter(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil output writer")
		}
		o.output = w
		return nil
	}
}

// WithS3Object sends the S3 event S3 would send for a Put of bucket/key,
// with the key URL-encoded the way S3 does.
func WithS3Object(bucket, key string) Option {
	return func(o *options) error {
		if bucket == "" || key == "" {
			return errors.New("empty bucket or key")
		}
		o.bucket, o.key = bucket, key
		return nil
	}
}

// WithTimeout sets the invocation timeout (default 30s; Lambda allows
// up to 15 minutes).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > 15*time.Minute {
			return fmt.Errorf("timeout %v is not between 0 and 15m", d)
		}
		o.timeout = d
		return nil
	}
}

// WithLogger sets the logger for Invoke's own messages (default:
// discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithLogWriter receives the function's log: the bootstrap's stdout and
// stderr, with the program's stderr lines (default: discard).
func WithLogWriter(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil log writer")
		}
		o.logWriter = w
		return nil
	}
}

// WithMemorySize sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE for the function
// (default 128; it limits nothing locally).
func WithMemorySize(mb int) Option {
	return func(o *options) error {
		if mb < 128 || mb > 10240 {
			return fmt.Errorf("memory size %d MB is not between 128 and 10240", mb)
		}
		o.memoryMB = mb
		return nil
	}
}

// The function's log formats, the values a deployed function's
// LoggingConfig takes (lower case, as the deploy options spell them).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// WithLogFormat sets the function's log format as a deployed function's
// LoggingConfig does on Lambda: LogFormatText (the default) or
// LogFormatJSON, which sets AWS_LAMBDA_LOG_FORMAT=JSON for the bootstrap:
// it then writes one JSON object per line.
func WithLogFormat(format string) Option {
	return func(o *options) error {
		switch format {
		case LogFormatText, LogFormatJSON:
			o.jsonLogs = format == LogFormatJSON
			return nil
		}
		return fmt.Errorf("log format %q is not %s or %s", format, LogFormatText, LogFormatJSON)
	}
}

// lambdaLogEnv is the log format variable Lambda sets for a function
// whose LoggingConfig says JSON.
func (o *options) lambdaLogEnv() []string {
	if o.jsonLogs {
		return []string{"AWS_LAMBDA_LOG_FORMAT=JSON"}
	}
	return nil
}

// WithCallerCredentials hands the caller's AWS credentials to the function
// also when S3 is a local endpoint: AWS_ENDPOINT_URL_S3 (or
// AWS_ENDPOINT_URL) on a loopback address or "localhost". By default such
// an endpoint, and the function, get per-invocation dummy credentials
// instead, since whatever listens there would receive yours (moto accepts
// any; a local MinIO wants its own, given as AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY with this option).
func WithCallerCredentials() Option {
	return func(o *options) error {
		o.callerCreds = true
		return nil
	}
}

// InvokeError reports an invocation that failed: the function's error, a
// timeout or a runtime that did not start. Result holds everything known.
type InvokeError struct {
	Result *InvokeResult
}

// Error reads like "invocation failed: RecordError: processing ...".
func (e *InvokeError) Error() string {
	return "invocation failed: " + e.Result.Error.Error()
}

// Invoke runs the package pkg the way Lambda would, on this machine: it
// unpacks it to a temporary directory, serves the Runtime API, starts the
// package's own bootstrap with a Lambda-like environment, sends one event
// and returns the answer. Exactly one of WithEvent, WithCSV and
// WithS3Object says what to send.
//
// pkg is a zip (a path to a zip file, or any path ending in ".zip") or a
// Lambda container image in image.Open's syntax ("oci:DIR",
// "docker-archive:FILE", a registry reference). An image runs the way Lambda
// runs container images: flattened into a temporary root, its ENTRYPOINT
// (+CMD) started chrooted there in a private mount namespace, the root
// read-only, /tmp fresh and writable, as a non-root user (WithUID), with
// its ENV and WORKDIR. That needs root.
//
// Invoke needs Linux: elsewhere it returns an *UnsupportedError.
//
// S3 is the endpoint AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) names when
// set; else, with WithCSV, an in-process S3; else AWS itself, with the
// caller's credentials. The in-process S3 and an endpoint on a loopback
// address get per-invocation dummy credentials, not the caller's (unless
// WithCallerCredentials); the in-process S3 and the Runtime API refuse
// requests without them, or whose Host header is not their 127.0.0.1:port.
//
// The package's link directory (Manifest.LinkDir, under /tmp) is pointed at
// the unpacked package for the invocation and removed afterwards: two
// concurrent invocations of the same package share it, one after the other
// (a lock file next to it). A link or lock that is not this user's, or not
// what Invoke makes (a symlink to the package, a regular file), is refused,
// never followed.
//
// A failed invocation returns the result and an *InvokeError.
func Invoke(ctx context.Context, pkg string, opts ...Option) (*InvokeResult, error) {
	o := options{
		timeout:   DefaultTimeout,
		logger:    slog.New(slog.DiscardHandler),
		logWriter: io.Discard,
		memoryMB:  128,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
	}
	n := 0
	for _, set := range []bool{o.event != nil, o.csv != "", o.bucket != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("invoke: give exactly one of an event, a CSV file or a bucket and key")
	}
	if err := checkOS(goruntime.GOOS); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	if !isZipPackage(pkg) {
		return invokeImage(ctx, pkg, o)
	}
	inv := &invocation{o: o, zipPath: pkg}
	defer inv.cleanup()
	return inv.run(ctx)
}
