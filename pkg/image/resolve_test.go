package image_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/pkg/image"
)

// closurePaths lists a closure's paths.
func closurePaths(c *image.ClosureResult) []string {
	var out []string
	for _, f := range c.Files {
		out = append(out, f.Path)
	}
	return out
}

// TestResolve: the pipeline gives the index, the command (overrides
// applied) and the same closure as the steps called one by one; dive's
// report only when asked for.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	cfg := v1.Config{Entrypoint: []string{"/usr/bin/momentum"}, Cmd: []string{"a"}, Env: []string{"PATH=/usr/bin:/bin"}}
	im, idx := treeImage(t, commandTree(), cfg, "linux/amd64")
	ov := image.Override{Cmd: []string{"b"}, CmdSet: true}
	cmd, err := image.ResolveCommand(im, idx, ov)
	if err != nil {
		t.Fatal(err)
	}
	want, err := image.Closure(ctx, idx, cmd, image.WithImage(im), image.WithInclude("/work/**"))
	if err != nil {
		t.Fatal(err)
	}
	for _, report := range []bool{false, true} {
		r, err := image.Resolve(ctx, im, image.WithOverride(ov), image.WithClosureOptions(image.WithInclude("/work/**")), image.WithLayerReport(report))
		if err != nil {
			t.Fatalf("Resolve(report %v): %v", report, err)
		}
		if r.Index == nil || (r.Report != nil) != report || r.Trace != nil {
			t.Errorf("Resolve(report %v) = index %v, report %v, trace %v; want an index, a report only when asked for, no trace", report, r.Index != nil, r.Report != nil, r.Trace)
		}
		if diff := cmp.Diff(cmd, r.Command); diff != "" {
			t.Errorf("Resolve(report %v).Command (-ResolveCommand +Resolve):\n%s", report, diff)
		}
		if diff := cmp.Diff(closurePaths(want), closurePaths(r.Closure)); diff != "" {
			t.Errorf("Resolve(report %v).Closure paths (-Closure +Resolve):\n%s", report, diff)
		}
	}
}

// TestResolvePartial: once the index is built, a failed step returns what
// resolved with the step's error.
func TestResolvePartial(t *testing.T) {
	im, _ := treeImage(t, commandTree(), v1.Config{Entrypoint: []string{"/usr/bin/momentun"}}, "linux/amd64")
	r, err := image.Resolve(context.Background(), im)
	var ee *image.EntrypointError
	if !errors.As(err, &ee) {
		t.Fatalf("Resolve of a missing entrypoint: error %v, want *EntrypointError", err)
	}
	if r == nil || r.Index == nil || r.Command != nil || r.Closure != nil {
		t.Errorf("Resolve of a missing entrypoint = %+v, want the index only", r)
	}
}

// TestResolveOptions: option errors come before any work.
func TestResolveOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []image.ResolveOption
		want string
	}{
		{"trace without input", []image.ResolveOption{image.WithTrace("")}, "no file given"},
		{"output placeholder without trace", []image.ResolveOption{image.WithTraceOutput("{output}")}, "without a trace input"},
		{"empty output placeholder", []image.ResolveOption{image.WithTrace("x"), image.WithTraceOutput("")}, "placeholder is empty"},
		{"nil logger", []image.ResolveOption{image.WithResolveLogger(nil)}, "logger is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := image.Resolve(context.Background(), nil, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || r != nil {
				t.Errorf("Resolve = %v, %v; want no result and an error containing %q", r, err, tt.want)
			}
		})
	}
}

// TestTraceSummaryWarnings: a run killed at the timeout or failing is a
// warning (with the end of its stderr); a clean run is none.
func TestTraceSummaryWarnings(t *testing.T) {
	tests := []struct {
		name string
		run  *image.TraceResult
		want []string
	}{
		{"clean", &image.TraceResult{}, nil},
		{"timed out", &image.TraceResult{TimedOut: true, RunDuration: 2 * time.Second}, []string{"the traced run was killed at the timeout (2s): files it would have opened later are missing"}},
		{"failed", &image.TraceResult{ExitCode: 2, Stderr: "a\nb\nc\nd\n"}, []string{"the traced run exited with status 2; its stderr ends with: b / c / d"}},
		{"signal", &image.TraceResult{ExitCode: -1, Signal: "SIGSEGV"}, []string{"the traced run was killed by signal SIGSEGV"}},
	}
	for _, tt := range tests {
		got := (&image.TraceSummary{Run: tt.run}).Warnings()
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Warnings (-want +got):\n%s", tt.name, diff)
		}
	}
	if w := (*image.TraceSummary)(nil).Warnings(); w != nil {
		t.Errorf("nil summary: Warnings = %q, want none", w)
	}
}
