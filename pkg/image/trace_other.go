//go:build !linux || !(amd64 || arm64)

package image

import (
	"context"
	"fmt"
	"runtime"
)

// Trace runs cmd once on input in a sandbox and records the image files it
// opens and executes. It needs Linux on amd64 or arm64 (ptrace, namespaces):
// on this system it returns an error wrapping ErrTraceUnsupported.
func Trace(ctx context.Context, img *Image, idx *Index, cmd *Command, input string, opts ...TraceOption) (*TraceResult, error) {
	if _, err := makeTraceOptions(opts...); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("trace: needs Linux on amd64 or arm64, this is %s/%s: %w", runtime.GOOS, runtime.GOARCH, ErrTraceUnsupported)
}
