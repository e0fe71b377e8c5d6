//go:build embedbootstrap

package lambda

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
)

// The bootstraps `make bootstraps` builds into pkg/lambda/bootstraps.
var (
	//go:embed bootstraps/bootstrap-amd64
	bootstrapAMD64 []byte
	//go:embed bootstraps/bootstrap-arm64
	bootstrapARM64 []byte
)

// loadBootstrap returns the embedded bootstrap for goarch: no Go
// toolchain is needed.
func loadBootstrap(_ context.Context, goarch string, _ *slog.Logger) ([]byte, error) {
	var b []byte
	switch goarch {
	case "amd64":
		b = bootstrapAMD64
	case "arm64":
		b = bootstrapARM64
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("embedded bootstrap for %q is empty: rebuild with `make build`", goarch)
	}
	return b, nil
}
