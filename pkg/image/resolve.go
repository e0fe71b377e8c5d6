package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// This file is the closure pipeline: the one call that takes an opened
// image to the index of its layers, the command it runs and that command's
// closure, and optionally runs the program once under the trace and closes
// over what it saw. inspect and the packagers all start here, so they agree
// on what an image's program needs.

// ResolveOption configures Resolve.
type ResolveOption func(*resolveOptions) error

type resolveOptions struct {
	override Override
	closure  []ClosureOption
	report   bool
	logger   *slog.Logger
	trace    *traceRun
}

// traceRun are the settings of WithTrace and WithTraceOutput.
type traceRun struct {
	input  string
	opts   []TraceOption
	output string
}

// WithOverride sets the ENTRYPOINT and CMD overrides ResolveCommand
// applies. Default: the image's own.
func WithOverride(ov Override) ResolveOption {
	return func(o *resolveOptions) error {
		o.override = ov
		return nil
	}
}

// WithClosureOptions adds options for Closure. Resolve passes WithImage
// first, so the rules beyond ELF (scripts, Python, Perl, data files) apply
// unless these turn them off.
func WithClosureOptions(opts ...ClosureOption) ResolveOption {
	return func(o *resolveOptions) error {
		o.closure = append(o.closure, opts...)
		return nil
	}
}

// WithLayerReport makes Resolve build dive's layer report in the same pass
// over the layers as the index (BuildIndexReport); it takes memory for
// every tar entry. Default: no report.
func WithLayerReport(on bool) ResolveOption {
	return func(o *resolveOptions) error {
		o.report = on
		return nil
	}
}

// WithResolveLogger sets the logger the pipeline reports its steps to
// (the trace's too, unless a WithTraceLogger among WithTrace's options says
// otherwise). Default: discard.
func WithResolveLogger(l *slog.Logger) ResolveOption {
	return func(o *resolveOptions) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		o.logger = l
		return nil
	}
}

// WithTrace runs the program once on the sample file input in a sandbox of
// the image after the static closure (Trace, with opts: the timeout, how
// the input reaches the program) and closes over what it saw again
// (WithTraced): the result's Closure is then the traced closure and Trace
// says what the run added. A run that fails or times out is not an error
// (TraceSummary.Warnings says so); one that cannot start is. Default: no
// trace.
func WithTrace(input string, opts ...TraceOption) ResolveOption {
	return func(o *resolveOptions) error {
		if input == "" {
			return errors.New("trace input: no file given")
		}
		if o.trace == nil {
			o.trace = &traceRun{}
		}
		o.trace.input = input
		o.trace.opts = append(o.trace.opts, opts...)
		return nil
	}
}

// TraceOutputPath is the path in the trace sandbox (whose /tmp is
// writable) that replaces WithTraceOutput's placeholder in the traced run's
// arguments.
const TraceOutputPath = "/tmp/output"

// WithTraceOutput makes the traced run of WithTrace write its output file
// to TraceOutputPath: every occurrence of placeholder in the arguments (for
// the packages, "{output}") is replaced by it, as the bootstrap replaces it
// by a fresh file. Default: the arguments as they are.
func WithTraceOutput(placeholder string) ResolveOption {
	return func(o *resolveOptions) error {
		if placeholder == "" {
			return errors.New("output placeholder is empty")
		}
		if o.trace == nil {
			o.trace = &traceRun{}
		}
		o.trace.output = placeholder
		return nil
	}
}

// Resolved is what Resolve worked out for an image.
type Resolved struct {
	// Index is the index of the image's layers.
	Index *Index
	// Report is dive's layer report (WithLayerReport), else nil.
	Report *Report
	// Command is the program the image runs, overrides applied.
	Command *Command
	// Closure is the program's closure: with WithTrace, the closure with
	// what the traced run saw.
	Closure *ClosureResult
	// Trace is what WithTrace's run saw and added; nil without it.
	Trace *TraceSummary
}

// Resolve runs the closure pipeline on img: it indexes the layers (and
// builds dive's report, WithLayerReport, in the same pass), resolves the
// command the image runs (ResolveCommand), computes its closure (Closure)
// and, WithTrace, traces one run and computes the closure again with what
// the run saw.
//
// Once the index is built, Resolve returns what it resolved even when a
// later step fails, with that step's error: Command is nil when the command
// did not resolve, Closure nil when the closure failed, Closure the static
// one when the trace could not run.
func Resolve(ctx context.Context, img *Image, opts ...ResolveOption) (*Resolved, error) {
	o := &resolveOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.trace != nil && o.trace.input == "" {
		return nil, errors.New("trace output placeholder without a trace input")
	}
	if img == nil {
		return nil, errors.New("resolving: no image")
	}
	r := &Resolved{}
	var err error
	o.logger.Debug("indexing image", "image", img.Ref, "layers", len(img.Layers))
	if o.report {
		r.Index, r.Report, err = BuildIndexReport(ctx, img)
	} else {
		r.Index, err = BuildIndex(ctx, img)
	}
	if err != nil {
		return nil, err
	}
	if r.Command, err = ResolveCommand(img, r.Index, o.override); err != nil {
		return r, err
	}
	closureOpts := append([]ClosureOption{WithImage(img)}, o.closure...)
	start := time.Now()
	if r.Closure, err = Closure(ctx, r.Index, r.Command, closureOpts...); err != nil {
		return r, err
	}
	if o.trace != nil {
		if err := r.trace(ctx, img, o, closureOpts, time.Since(start)); err != nil {
			return r, err
		}
	}
	o.logger.Info("closure resolved", "program", r.Command.Path, "paths", len(r.Closure.Files), "arch", r.Closure.Arch)
	for _, n := range r.Closure.Notes {
		o.logger.Info("closure: " + n)
	}
	return r, nil
}

// trace runs the traced program and replaces r.Closure, the static
// closure computed with closureOpts in staticTime, by the traced one.
func (r *Resolved) trace(ctx context.Context, img *Image, o *resolveOptions, closureOpts []ClosureOption, staticTime time.Duration) error {
	log := o.logger
	static := r.Closure
	s := &TraceSummary{StaticDuration: staticTime}
	s.StaticFiles, s.StaticBytes = static.Size()

	topts := append([]TraceOption{WithTraceLogger(log)}, o.trace.opts...)
	log.Info("tracing the program on a sample input", "program", r.Command.Path, "input", o.trace.input)
	tr, err := Trace(ctx, img, r.Index, traceCommand(r.Command, o.trace.output), o.trace.input, topts...)
	if err != nil {
		return err
	}
	s.Run = tr
	r.Trace = s
	traced, err := Closure(ctx, r.Index, r.Command, append(closureOpts[:len(closureOpts):len(closureOpts)], WithTraced(tr.Paths))...)
	if err != nil {
		return err
	}
	s.Files, s.Bytes = traced.Size()
	s.Added = []string{}
	for _, f := range TraceAdded(static, traced) {
		s.Added = append(s.Added, f.Path)
	}
	r.Closure = traced
	log.Info("trace added to the closure", "added", len(s.Added), "static_files", s.StaticFiles, "static_bytes", s.StaticBytes,
		"files", s.Files, "bytes", s.Bytes, "trace", tr.Duration)
	for _, p := range s.Added {
		log.Info("seen at run time", "path", p)
	}
	return nil
}

// traceCommand is cmd as the traced run gets it: placeholder (when set)
// replaced by TraceOutputPath.
func traceCommand(cmd *Command, placeholder string) *Command {
	if placeholder == "" {
		return cmd
	}
	c := *cmd
	c.Args = make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		c.Args[i] = strings.ReplaceAll(a, placeholder, TraceOutputPath)
	}
	return &c
}

// Size counts the closure's paths and the bytes of its regular files.
func (c *ClosureResult) Size() (files int, bytes int64) {
	for _, f := range c.Files {
		if f.Kind == Regular {
			bytes += f.Size
		}
	}
	return len(c.Files), bytes
}

// TraceSummary is what the trace of WithTrace did: the run, and the
// closure without and with what it saw.
type TraceSummary struct {
	// Run is the traced run: the image paths seen, exit code, stderr tail,
	// durations.
	Run *TraceResult `json:"run"`
	// Added are the closure paths the trace added to those of the static
	// rules (TraceAdded), sorted.
	Added []string `json:"added"`
	// StaticFiles and StaticBytes measure the closure of the static rules
	// alone (paths; bytes of regular files), StaticDuration the time it
	// took; Files and Bytes the closure with the trace.
	StaticFiles    int           `json:"static_files"`
	StaticBytes    int64         `json:"static_bytes"`
	StaticDuration time.Duration `json:"static_duration"`
	Files          int           `json:"files"`
	Bytes          int64         `json:"bytes"`
}

// Warnings says what may be missing from the traced closure: a run killed
// at the timeout, or one that failed (with the end of its stderr).
func (s *TraceSummary) Warnings() []string {
	if s == nil || s.Run == nil {
		return nil
	}
	tr := s.Run
	switch {
	case tr.TimedOut:
		return []string{fmt.Sprintf("the traced run was killed at the timeout (%s): files it would have opened later are missing", tr.RunDuration.Round(time.Millisecond))}
	case tr.ExitCode != 0:
		msg := fmt.Sprintf("the traced run exited with status %d", tr.ExitCode)
		if tr.Signal != "" {
			msg = "the traced run was killed by signal " + tr.Signal
		}
		if tail := strings.TrimSpace(tr.Stderr); tail != "" {
			msg += "; its stderr ends with: " + lastLines(tail, 3)
		}
		return []string{msg}
	}
	return nil
}

// lastLines returns the last n lines of s, joined by " / ".
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
