package image

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// This file holds the parts of the run-time trace that do not depend on the
// operating system: its options and result, and the closure option that adds
// the traced files. The tracer itself is in trace_linux.go (see the comment
// there and docs/trace.md).

// ErrTraceUnsupported is wrapped by the errors of Trace on systems it cannot
// run on: another operating system than Linux, a host architecture other
// than amd64 and arm64, or an image built for another architecture than the
// host's (the trace runs the image's program; it cannot emulate).
var ErrTraceUnsupported = errors.New("trace unsupported")

// DefaultTraceTimeout bounds the traced run when WithTraceTimeout is not
// given.
const DefaultTraceTimeout = 30 * time.Second

// TraceOption configures Trace.
type TraceOption func(*traceOptions) error

type traceOptions struct {
	timeout     time.Duration
	logger      *slog.Logger
	dir         string
	placeholder string
	outputLimit int
}

func makeTraceOptions(opts ...TraceOption) (*traceOptions, error) {
	o := &traceOptions{
		timeout:     DefaultTraceTimeout,
		logger:      slog.New(slog.DiscardHandler),
		outputLimit: 8 << 10,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithTraceTimeout bounds the traced run: when d has passed, every process
// of the sandbox is killed and Trace returns what it saw with TimedOut set.
// Default DefaultTraceTimeout (30s).
func WithTraceTimeout(d time.Duration) TraceOption {
	return func(o *traceOptions) error {
		if d <= 0 {
			return fmt.Errorf("trace timeout %s: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithTraceLogger sets the logger Trace reports to (the sandbox, each path
// seen at debug level). Default: discard.
func WithTraceLogger(l *slog.Logger) TraceOption {
	return func(o *traceOptions) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		o.logger = l
		return nil
	}
}

// WithTraceDir sets the directory the sandbox's temporary root is created
// in (it needs room for the whole flattened image). Default: os.TempDir().
func WithTraceDir(dir string) TraceOption {
	return func(o *traceOptions) error {
		if dir == "" {
			return errors.New("trace directory is empty")
		}
		o.dir = dir
		return nil
	}
}

// WithTraceInputPlaceholder makes the program get the input as a file
// argument instead of on stdin: the input is copied into the sandbox and
// every occurrence of placeholder in the arguments (as for the package's
// file input mode, "{input}") is replaced by its path; stdin is then empty.
// Default: the input is the program's stdin.
func WithTraceInputPlaceholder(placeholder string) TraceOption {
	return func(o *traceOptions) error {
		if placeholder == "" {
			return errors.New("input placeholder is empty")
		}
		o.placeholder = placeholder
		return nil
	}
}

// TraceResult is what one traced run of a program saw.
type TraceResult struct {
	// Paths are the image paths (as the program named them, before
	// symlinks) of the image's regular files that the program or any of its
	// descendants opened for reading or executed, sorted. Paths under /proc,
	// /dev, /sys and /tmp, files the image lacks (created at run time) and
	// directories are left out.
	Paths []string `json:"paths"`
	// Processes counts the processes and threads followed.
	Processes int `json:"processes"`
	// ExitCode is the program's exit status, or -1 when it was killed by
	// a signal (Signal names it).
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	// TimedOut says the run was killed at the timeout: Paths may be
	// incomplete.
	TimedOut bool `json:"timed_out,omitempty"`
	// Stderr is the tail of the program's standard error (up to 8 KiB);
	// StdoutBytes counts what it wrote to standard output (discarded).
	Stderr      string `json:"stderr,omitempty"`
	StdoutBytes int64  `json:"stdout_bytes"`
	// Duration is the wall time of the whole trace: writing the sandbox,
	// the run, and removing the sandbox.
	Duration time.Duration `json:"duration"`
	// RunDuration is the time the program ran.
	RunDuration time.Duration `json:"run_duration"`
}

// TracedReason is the reason kind Closure gives the files added by
// WithTraced; their Detail is "seen at run time".
const TracedReason = "traced"

// WithTraced adds the image files a traced run saw (TraceResult.Paths) to
// the closure, with reason "traced" ("seen at run time"), the symlinks on
// the way with reason "symlink". Like WithInclude, an ELF file gets its
// loader and libraries resolved and an executable script its interpreter;
// unlike it, paths the image lacks (or that are not regular files) are
// skipped, and a library of a traced file missing from the image is logged,
// not an error: the program ran without it.
func WithTraced(paths []string) ClosureOption {
	return func(o *closureOptions) error {
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("traced path %q: must be an absolute image path", p)
			}
		}
		o.traced = append(o.traced, paths...)
		return nil
	}
}

// addTraced adds the files of WithTraced.
func (c *closer) addTraced() {
	if len(c.o.traced) == 0 {
		return
	}
	before := make(map[string]bool, len(c.missing))
	for name := range c.missing {
		before[name] = true
	}
	r := Reason{Kind: TracedReason, Detail: "seen at run time"}
	for _, p := range c.o.traced {
		if c.ctx.Err() != nil {
			return
		}
		e, links, err := c.follow(p)
		if err != nil || e.Kind != Regular {
			c.log.Debug("traced path is not a regular file of the image; skipped", "path", p)
			continue
		}
		c.addPath(p, e, links, r)
		if e.ELF != nil && c.programs[e.Path] {
			continue
		}
		c.includeELF(e)
		if e.ELF != nil {
			c.programs[e.Path] = true
		}
	}
	for name, m := range c.missing {
		if !before[name] {
			c.log.Warn("library of a traced file is not in the image; the traced run did without it",
				"soname", name, "needed_by", strings.Join(m.NeededBy, " "))
			delete(c.missing, name)
		}
	}
}

// TraceAdded returns the files of withTrace (a closure computed with
// WithTraced) that static (the same closure without it) lacks: what the
// trace found that the static rules missed, sorted by path.
func TraceAdded(static, withTrace *ClosureResult) []File {
	if withTrace == nil {
		return nil
	}
	have := map[string]bool{}
	if static != nil {
		for _, f := range static.Files {
			have[f.Path] = true
		}
	}
	var out []File
	for _, f := range withTrace.Files {
		if !have[f.Path] {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
