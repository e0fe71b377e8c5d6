package image

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/syncio"
)

// Option configures Open.
type Option func(*options) error

type options struct {
	platform         v1.Platform
	platformExplicit bool
	cacheDir         string
	progress         io.Writer
	logger           *slog.Logger
	keychain         authn.Keychain
	transport        http.RoundTripper
	// kept, when set, replaces DefaultKeptBytes and DefaultKeptFile.
	kept *[2]int64
}

// DefaultPlatform is the platform Open selects when WithPlatform is not
// given.
const DefaultPlatform = "linux/amd64"

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		logger:   slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		o.cacheDir = filepath.Join(dir, "extract", "blobs")
	}
	if o.keychain == nil {
		o.keychain = defaultKeychain(o.logger)
	}
	return o, nil
}

// WithPlatform selects the platform, "os/arch" or "os/arch/variant"
// ("linux/arm64", "linux/arm/v7"). Default: linux/amd64. From a
// multi-platform index Open picks the matching image; a single-platform
// image of another platform is an error.
func WithPlatform(p string) Option {
	return func(o *options) error {
		plat, err := parsePlatform(p)
		if err != nil {
			return err
		}
		o.platform = plat
		o.platformExplicit = true
		return nil
	}
}

func parsePlatform(p string) (v1.Platform, error) {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/arm64", p)
	}
	for _, s := range parts {
		if s == "" || strings.ContainsAny(s, " \t:") {
			return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/arm64", p)
		}
	}
	plat := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		plat.Variant = parts[2]
	}
	return plat, nil
}

// WithCacheDir sets the directory where compressed layer blobs (and image
// configs) of remote images are kept by digest, so re-runs do not download
// them again. Default: os.UserCacheDir()/extract/blobs.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("cache dir must not be empty")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithProgress writes download progress lines, one per layer and step, to
// w. Layers download concurrently: each line is one Write, and Writes are
// never concurrent. Default: none.
func WithProgress(w io.Writer) Option {
	return func(o *options) error {
		o.progress = nil
		if w != nil {
			o.progress = &syncio.Writer{W: w}
		}
		return nil
	}
}

// WithLogger sets the logger for debug details. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
		return nil
	}
}

// WithKeychain sets the registry credentials. Default: the Docker config and
// credential helpers (authn.DefaultKeychain), Google (GCR, Artifact
// Registry) and ECR (for *.dkr.ecr.*.amazonaws.com, through the AWS SDK's
// default credential chain).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = k
		return nil
	}
}

// WithTransport sets the HTTP transport for registry requests. Default:
// remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = t
		return nil
	}
}

// WithKeptBytes bounds the bytes of closure candidates (ELF files,
// scripts, configuration, interpreter sources) that BuildIndex keeps so
// that Extract need not read their layers again: at most total bytes in
// all, files of at most perFile bytes. They are kept in a temporary file
// (os.TempDir) removed from its directory at once, not in memory (but
// for files of at most 16 KiB, 4 MiB in all); the space is freed when the
// Index is garbage, and a failed write to it fails BuildIndex. 0 keeps none (every Extract
// reads its layers). Default: DefaultKeptBytes, DefaultKeptFile.
func WithKeptBytes(total, perFile int64) Option {
	return func(o *options) error {
		if total < 0 || perFile < 0 {
			return fmt.Errorf("kept bytes %d, per file %d: must not be negative", total, perFile)
		}
		o.kept = &[2]int64{total, perFile}
		return nil
	}
}
