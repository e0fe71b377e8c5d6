package lambda

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoBootstrap is returned when no bootstrap can be had for a package:
// the extract binary carries none (a plain `go install`) and no Go
// toolchain can build one.
var ErrNoBootstrap = errors.New("this extract carries no Lambda bootstraps (built by a plain go install, it builds them with the Go toolchain when it packages): install a release binary or build extract with `make build`, which embed them")

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
// a change rebuilds. Before a build an Info line says so through the
// logger of [WithLogger] (of opts, only it matters): the first package of
// each architecture waits for the Go toolchain. Without a toolchain the
// error wraps [ErrNoBootstrap].
func Bootstrap(ctx context.Context, goarch string, opts ...PackageOption) ([]byte, error) {
	switch goarch {
	case "amd64", "arm64":
	default:
		return nil, fmt.Errorf("no bootstrap for architecture %q: Lambda runs amd64 (x86_64) and arm64", goarch)
	}
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	return loadBootstrap(ctx, goarch, o.logger)
}
