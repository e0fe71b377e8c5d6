package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/comingout/extract/pkg/image"
)

// DefaultArchiveTag is the tag a docker-archive: destination records when
// it names none (`docker load` tags the image with it).
const DefaultArchiveTag = "extract/function:latest"

// WriteOption configures WriteImage.
type WriteOption func(*writeOptions) error

type writeOptions struct {
	keychain authn.Keychain
	logger   *slog.Logger
	progress io.Writer
}

// WithWriteKeychain sets the credentials for pushing to a registry
// (default: image.Keychain: Docker config and credential helpers, Google,
// ECR through the AWS chain).
func WithWriteKeychain(k authn.Keychain) WriteOption {
	return func(o *writeOptions) error {
		if k == nil {
			return errors.New("nil keychain")
		}
		o.keychain = k
		return nil
	}
}

// WithWriteLogger sets the logger (default: discard).
func WithWriteLogger(l *slog.Logger) WriteOption {
	return func(o *writeOptions) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithWriteProgress reports a push's progress to w, a line per update
// (default: none).
func WithWriteProgress(w io.Writer) WriteOption {
	return func(o *writeOptions) error {
		o.progress = w
		return nil
	}
}

// WriteImage writes the image package img to dest, in the transport syntax
// of sources:
//
//   - "oci:DIR[:TAG]": an OCI layout whose index.json holds exactly this
//     one image manifest (not an index), tagged TAG when given; DIR is
//     replaced only once complete.
//   - "docker-archive:FILE[:REF]": a `docker save` tarball, tagged REF
//     (default DefaultArchiveTag); FILE is replaced only once complete.
//   - "REF" or "docker://REF": pushed to the registry; blobs the registry
//     has are not uploaded again.
//
// It returns the written image's reference by digest: "DIR@sha256:…",
// "FILE@sha256:…" or "REPO@sha256:…" (what a PackageType=Image function's
// ImageUri takes).
func WriteImage(ctx context.Context, img v1.Image, dest string, opts ...WriteOption) (string, error) {
	o := &writeOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return "", fmt.Errorf("writing the image: %w", err)
		}
	}
	if o.keychain == nil {
		o.keychain = image.Keychain(nil, o.logger)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("writing the image: %w", err)
	}
	transport, rest, _ := strings.Cut(dest, ":")
	switch transport {
	case "oci":
		dir, tag := splitTag(rest)
		if dir == "" {
			return "", fmt.Errorf("oci: destination %q names no directory: oci:DIR[:TAG]", dest)
		}
		if err := writeLayout(img, dir, tag); err != nil {
			return "", err
		}
		return dir + "@" + d.String(), nil
	case "docker-archive":
		file, tag := splitTag(rest)
		if file == "" {
			return "", fmt.Errorf("docker-archive: destination %q names no file: docker-archive:FILE[:REF]", dest)
		}
		if err := writeArchive(img, file, tag); err != nil {
			return "", err
		}
		return file + "@" + d.String(), nil
	case "oci-archive", "docker-daemon":
		return "", fmt.Errorf("cannot write an image package to %s: (write oci:DIR, docker-archive:FILE or a registry reference)", transport)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(dest, "docker://"))
	if err != nil {
		return "", fmt.Errorf("destination %q is neither oci:DIR, docker-archive:FILE nor a registry reference: %w", dest, err)
	}
	var updates chan v1.Update
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain)}
	if o.progress != nil {
		updates = make(chan v1.Update, 16)
		ropts = append(ropts, remote.WithProgress(updates))
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			last := int64(-1)
			for u := range updates {
				if u.Total > 0 && (u.Complete == u.Total || u.Complete-last >= u.Total/10) {
					fmt.Fprintf(o.progress, "pushing %s: %d%% of %s\n", ref.Context(), u.Complete*100/u.Total, humanSize(u.Total))
					last = u.Complete
				}
			}
		}()
	}
	o.logger.Debug("pushing", "ref", ref.String(), "digest", d.String())
	if err := remote.Write(ref, img, ropts...); err != nil {
		return "", fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// splitTag splits "PATH:TAG" at the first colon, as image.Open reads
// oci: and docker-archive: sources.
func splitTag(s string) (p, tag string) {
	p, tag, _ = strings.Cut(s, ":")
	return p, tag
}

// writeLayout writes img as the only manifest of a new OCI layout at dir,
// built next to it and renamed into place.
func writeLayout(img v1.Image, dir, tag string) error {
	parent := filepath.Dir(filepath.Clean(dir))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	var lopts []layout.Option
	if tag != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := lp.AppendImage(img, lopts...); err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replacing %q: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	return nil
}

// writeArchive writes img as a `docker save` tarball at file, tagged tag,
// through a temporary file renamed into place.
func writeArchive(img v1.Image, file, tag string) error {
	if tag == "" {
		tag = DefaultArchiveTag
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("docker-archive tag %q: %w", tag, err)
	}
	dir, base := filepath.Split(file)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	err = tarball.Write(ref, img, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("writing %q: %w", file, err)
	}
	return nil
}
