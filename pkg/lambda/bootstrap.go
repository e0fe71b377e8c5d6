package lambda

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/comingout/extract/pkg/image"
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

// earlyBootstrap is the bootstrap for the image platform's architecture,
// fetched before the layers are indexed and deflated while they are, on a
// core the index leaves idle: deflating the bootstrap (a 9 MB Go program,
// at the zip's level) is most of the zip's deflate time, about 1.2 s of
// 1.7 s for the showcase. The zip's bytes are the same either way.
type earlyBootstrap struct {
	goarch   string
	program  []byte
	deflated *deflateJob
	cancel   context.CancelFunc
}

// startBootstrap starts an earlyBootstrap, or returns nil where it cannot
// help: on one CPU (the zip is then written in order) or when the
// bootstrap is not at hand (getBootstrap then reports why).
func startBootstrap(ctx context.Context, o *packageOptions, img *image.Image) *earlyBootstrap {
	if img == nil || runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	_, goarch, err := lambdaArch("", img.Platform.Architecture)
	if err != nil {
		return nil
	}
	b, err := loadBootstrapFor(ctx, o, goarch)
	if err != nil || len(b) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	e := zipEntry{Name: "bootstrap", Mode: 0o755, Size: int64(len(b)), Open: bytesOpener(b)}
	return &earlyBootstrap{goarch: goarch, program: b, deflated: deflateAhead(ctx, e), cancel: cancel}
}

// stop abandons the deflate if it is still running; e may be nil.
func (e *earlyBootstrap) stop() {
	if e != nil {
		e.cancel()
	}
}

// loadBootstrapFor returns the bootstrap for goarch: the packager's own
// (WithBootstrap) or Bootstrap's.
func loadBootstrapFor(ctx context.Context, o *packageOptions, goarch string) ([]byte, error) {
	if o.bootstrap != nil {
		return o.bootstrap(goarch)
	}
	return Bootstrap(ctx, goarch, WithLogger(o.logger))
}
