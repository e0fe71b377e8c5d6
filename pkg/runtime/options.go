package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults of the handler's options.
const (
	DefaultKillMargin        = 500 * time.Millisecond
	DefaultPartSize          = 8 << 20
	DefaultUploadConcurrency = 2
	// StderrLines is how many of the program's last stderr lines an error
	// carries.
	StderrLines = 20
	// maxLineLen bounds one logged stderr line.
	maxLineLen = 16 << 10
)

// Option configures a Handler.
type Option func(*options) error

type options struct {
	s3          S3API
	logger      *slog.Logger
	programLog  io.Writer
	logFormat   string
	killMargin  time.Duration
	partSize    int64
	concurrency int
	environ     []string
	// inputBackoff is the first wait before resuming a broken input
	// (tests shorten it).
	inputBackoff time.Duration
}

// WithS3Client sets the S3 client (default: NewS3Client, from the
// environment).
func WithS3Client(c S3API) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("nil S3 client")
		}
		o.s3 = c
		return nil
	}
}

// WithLogger sets the logger for the handler's own messages (default:
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

// WithProgramLog sets where the program's stderr goes, line by line,
// each prefixed with the input key, and its stdout when the program's
// files are the output (default: discarded; the bootstrap passes its own
// stderr, which is the function's log). See WithLogFormat for the lines.
func WithProgramLog(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil program log writer")
		}
		o.programLog = w
		return nil
	}
}

// WithLogFormat sets the format of the program's lines in the program log
// (default LogFormatText): with LogFormatJSON each is a JSON object, as
// NewLogger writes them, with "source":"program", "stream" ("stderr" or
// "stdout") and "key"; in text, "[request] key: line", request being the
// request ID's first 8 characters ("key (stdout): line" for stdout).
func WithLogFormat(format string) Option {
	return func(o *options) error {
		o.logFormat = format
		return nil
	}
}

// WithKillMargin sets how long before the invocation deadline the program's
// process group is killed, leaving time to report the error (default
// 500ms).
func WithKillMargin(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("negative kill margin %v", d)
		}
		o.killMargin = d
		return nil
	}
}

// WithPartSize sets the multipart upload part size (default 8 MiB,
// minimum 5 MiB, S3's limit).
func WithPartSize(n int64) Option {
	return func(o *options) error {
		if n < MinPartSize {
			return fmt.Errorf("part size %d is below S3's minimum %d", n, MinPartSize)
		}
		if n > 1<<30 {
			return fmt.Errorf("part size %d is above 1 GiB: each part is held in memory", n)
		}
		o.partSize = n
		return nil
	}
}

// WithUploadConcurrency sets how many parts are uploaded at once (default
// 2); the output holds at most concurrency+1 parts in memory, allocated
// once and reused by every invocation.
func WithUploadConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("upload concurrency %d is below 1", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithEnviron sets the base environment the program's is computed from
// (default: os.Environ(), Lambda's environment).
func WithEnviron(env []string) Option {
	return func(o *options) error {
		o.environ = append([]string(nil), env...)
		return nil
	}
}
