package lambda

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoBootstrap is returned when no bootstrap can be had for a package:
// the extract binary carries none and no Go toolchain can build one.
var ErrNoBootstrap = errors.New("this extract was built without embedded bootstraps; build with `make build` or install Go")

// bootstrapModule is the module the bootstrap program is built from.
const (
	bootstrapModule  = "github.com/comingout/extract"
	bootstrapPackage = bootstrapModule + "/cmd/bootstrap"
)

// Bootstrap returns the Lambda bootstrap program for goarch ("amd64" or
// "arm64"): a static Linux executable that reads the package's manifest and
// runs its program for every S3 event.
//
// A binary built with the embedbootstrap tag (`make build`) carries both
// bootstraps and returns them. Otherwise the bootstrap is built with the
// local Go toolchain (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"), from the
// module source tree this package was compiled from when it still exists
// (tests, `go run`), else from the module version recorded in the binary's
// build information; builds are cached under os.UserCacheDir()/extract/bootstrap,
// keyed by a hash of the sources, their dependencies and the Go version, so
// a change rebuilds. Without a toolchain the error wraps [ErrNoBootstrap].
func Bootstrap(ctx context.Context, goarch string) ([]byte, error) {
	switch goarch {
	case "amd64", "arm64":
	default:
		return nil, fmt.Errorf("no bootstrap for architecture %q: Lambda runs amd64 (x86_64) and arm64", goarch)
	}
	return loadBootstrap(ctx, goarch)
}
