package lambda

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// traceSettings are the arguments of WithTrace.
type traceSettings struct {
	input   string
	timeout time.Duration
}

// WithTrace runs the program once on the sample file input in a sandbox of
// the image before packaging (image.Trace, Linux and the image's
// architecture only) and adds every image file it opened or executed to the
// closure (image.WithTraced, reason "traced"): plugins loaded by a name
// computed at run time, data files, programs started by children. timeout
// bounds the run (0: image.DefaultTraceTimeout). With the "file" input mode
// the sample replaces "{input}" in the arguments, else it is the program's
// stdin. A failing or timed-out run is a warning: what it saw is still
// added. Default: no trace.
func WithTrace(input string, timeout time.Duration) PackageOption {
	return func(o *packageOptions) error {
		if input == "" {
			return errors.New("trace input: no file given")
		}
		if timeout < 0 {
			return fmt.Errorf("trace timeout %s: must not be negative", timeout)
		}
		o.trace = &traceSettings{input: input, timeout: timeout}
		return nil
	}
}

// TraceSummary is what WithTrace did: the run, and the closure without and
// with what it saw.
type TraceSummary struct {
	// Run is the traced run: the image paths seen, exit code, stderr tail,
	// durations.
	Run *image.TraceResult `json:"run"`
	// Added are the closure paths the trace added to those of the static
	// rules (image.TraceAdded), sorted.
	Added []string `json:"added"`
	// StaticFiles and StaticBytes measure the closure of the static rules
	// alone (paths; bytes of regular files), StaticDuration the time it
	// took; Files and Bytes the closure with the trace.
	StaticFiles    int           `json:"static_files"`
	StaticBytes    int64         `json:"static_bytes"`
	StaticDuration time.Duration `json:"static_duration"`
	Files          int           `json:"files"`
	Bytes          int64         `json:"bytes"`

	warnings []string
}

// traceClosure runs the trace and returns the closure with its paths.
// static is the closure computed with closureOpts in staticTime.
func traceClosure(ctx context.Context, o *packageOptions, img *image.Image, idx *image.Index, cmd *image.Command,
	closureOpts []image.ClosureOption, static *image.ClosureResult, staticTime time.Duration) (*image.ClosureResult, *TraceSummary, error) {
	log := o.logger
	s := &TraceSummary{StaticDuration: staticTime}
	s.StaticFiles, s.StaticBytes = closureSize(static)

	opts := []image.TraceOption{image.WithTraceLogger(log)}
	if o.trace.timeout > 0 {
		opts = append(opts, image.WithTraceTimeout(o.trace.timeout))
	}
	if o.input.Mode == xruntime.InputFile {
		opts = append(opts, image.WithTraceInputPlaceholder(xruntime.InputPlaceholder))
	}
	log.Info("tracing the program on a sample input", "program", cmd.Path, "input", o.trace.input)
	tr, err := image.Trace(ctx, img, idx, traceCommand(cmd), o.trace.input, opts...)
	if err != nil {
		return nil, nil, err
	}
	s.Run = tr
	switch {
	case tr.TimedOut:
		s.warnings = append(s.warnings, fmt.Sprintf("the traced run was killed at the timeout (%s): files it would have opened later are missing", tr.RunDuration.Round(time.Millisecond)))
	case tr.ExitCode != 0:
		msg := fmt.Sprintf("the traced run exited with status %d", tr.ExitCode)
		if tr.Signal != "" {
			msg = "the traced run was killed by signal " + tr.Signal
		}
		if tail := strings.TrimSpace(tr.Stderr); tail != "" {
			msg += "; its stderr ends with: " + lastLines(tail, 3)
		}
		s.warnings = append(s.warnings, msg)
	}
	traced, err := image.Closure(ctx, idx, cmd, append(append([]image.ClosureOption(nil), closureOpts...), image.WithTraced(tr.Paths))...)
	if err != nil {
		return nil, nil, err
	}
	s.Files, s.Bytes = closureSize(traced)
	s.Added = []string{}
	for _, f := range image.TraceAdded(static, traced) {
		s.Added = append(s.Added, f.Path)
	}
	log.Info("trace added to the closure", "added", len(s.Added), "static_files", s.StaticFiles, "static_bytes", s.StaticBytes,
		"files", s.Files, "bytes", s.Bytes, "trace", tr.Duration)
	for _, p := range s.Added {
		log.Info("seen at run time", "path", p)
	}
	return traced, s, nil
}

// traceOutput is the path in the trace sandbox (whose /tmp is writable)
// that replaces "{output}" in a traced run's arguments.
const traceOutput = "/tmp/output"

// traceCommand is cmd as the traced run gets it: "{output}" replaced by
// traceOutput, as the bootstrap replaces it by a fresh file.
func traceCommand(cmd *image.Command) *image.Command {
	if !hasPlaceholder(cmd.Args, xruntime.OutputPlaceholder) {
		return cmd
	}
	c := *cmd
	c.Args = make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		c.Args[i] = strings.ReplaceAll(a, xruntime.OutputPlaceholder, traceOutput)
	}
	return &c
}

// closureSize counts a closure's paths and the bytes of its regular files.
func closureSize(c *image.ClosureResult) (int, int64) {
	var n int64
	for _, f := range c.Files {
		if f.Kind == image.Regular {
			n += f.Size
		}
	}
	return len(c.Files), n
}

// lastLines returns the last n lines of s, joined by " / ".
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
