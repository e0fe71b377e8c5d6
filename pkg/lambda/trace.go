package lambda

import (
	"errors"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// traceSettings are the arguments of WithTrace.
type traceSettings struct {
	input string
	opts  []image.TraceOption
}

// WithTrace runs the program once on the sample file input in a sandbox of
// the image before packaging (image.WithTrace: Linux and the image's
// architecture only) and adds every image file it opened or executed to the
// closure (reason "traced"): plugins loaded by a name computed at run time,
// data files, programs started by children. opts configure the run
// (image.WithTraceTimeout: default image.DefaultTraceTimeout). The run gets
// the sample as the function gets its input: with the "file" input mode
// (WithInput) its path replaces "{input}" in the arguments, else it is the
// program's stdin; "{output}" becomes image.TraceOutputPath. A failing or
// timed-out run is a warning: what it saw is still added. Default: no
// trace.
func WithTrace(input string, opts ...image.TraceOption) PackageOption {
	return func(o *packageOptions) error {
		if input == "" {
			return errors.New("trace input: no file given")
		}
		o.trace = &traceSettings{input: input, opts: opts}
		return nil
	}
}

// resolveOptions maps the package options to those of image.Resolve.
func (o *packageOptions) resolveOptions() []image.ResolveOption {
	opts := []image.ResolveOption{
		image.WithOverride(o.override),
		image.WithClosureOptions(o.closure...),
		image.WithResolveLogger(o.logger),
	}
	if o.trace != nil {
		topts := o.trace.opts
		if o.input.Mode == xruntime.InputFile {
			topts = append(topts[:len(topts):len(topts)], image.WithTraceInputPlaceholder(xruntime.InputPlaceholder))
		}
		opts = append(opts, image.WithTrace(o.trace.input, topts...), image.WithTraceOutput(xruntime.OutputPlaceholder))
	}
	return opts
}

// ResolveOptions returns the options of image.Resolve that a package made
// with opts resolves the image's program and closure with (see Package for
// opts; those that do not bear on the closure are checked and ignored): for
// a caller that runs the pipeline itself, such as inspect, and must see the
// closure the package would carry.
func ResolveOptions(opts ...PackageOption) ([]image.ResolveOption, error) {
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	return o.resolveOptions(), nil
}
