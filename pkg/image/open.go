package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image is one platform's image, opened lazily: Open reads the manifest and
// the config; layers are read by BuildIndex and Extract.
type Image struct {
	// Ref is the reference as given to Open, transport prefix included.
	Ref string
	// Digest is the manifest digest ("sha256:…").
	Digest string
	// Platform is the image's platform from its config (or the requested
	// one when the config does not say).
	Platform v1.Platform
	// Config is the parsed image config.
	Config *v1.ConfigFile
	// Layers describes the layers, bottom first.
	Layers []Layer

	img     v1.Image
	opts    *options
	cleanup []func() error
	// compressedBlobs is set for sources whose layers' Compressed returns
	// the stored blob as it is (registry, OCI layout, the archives): cheap
	// to read, and decompressed by its magic bytes (gzip, zstd or a plain
	// tar).
	compressedBlobs bool
	// maxIndexBytes, when positive, replaces MaxIndexBytes for
	// BuildIndex (tests lower it).
	maxIndexBytes int64
}

// V1 returns the go-containerregistry image. For remote images its layers
// read through the blob cache.
func (i *Image) V1() v1.Image { return i.img }

// Close releases what Open holds; after it, layers of an archive source
// are no longer read (an error). It is safe to call on any Image, more
// than once. The Image must not be used after Close.
func (i *Image) Close() error {
	var errs []error
	for _, f := range i.cleanup {
		errs = append(errs, f())
	}
	i.cleanup = nil
	return errors.Join(errs...)
}

// Transports lists the transports Open accepts, in skopeo syntax.
var Transports = []string{"docker://REF (or plain REF)", "docker-daemon:NAME[:TAG]", "docker-archive:FILE.tar[:REF]", "oci:DIR[:TAG]", "oci-archive:FILE.tar[:TAG]"}

// knownUnsupported are containers-image transports Open recognizes but does
// not read.
var knownUnsupported = []string{"containers-storage", "dir", "ostree", "sif", "tarball"}

// Open resolves ref to one platform's image. ref uses the skopeo transport
// syntax: "REF" or "docker://REF" (a registry), "docker-daemon:NAME[:TAG]",
// "docker-archive:FILE.tar[:REF]" (docker save), "oci:DIR[:TAG]" (an OCI
// layout; TAG matches the org.opencontainers.image.ref.name annotation),
// "oci-archive:FILE.tar[:TAG]" (a tar of an OCI layout). Multi-platform
// indexes are resolved with WithPlatform; a single-platform image of another
// platform is an error naming its platform.
//
// Only the manifest and the config are read; layers are downloaded (and
// cached, for registries) when first read. The archives are read in place:
// Open reads their tar headers once, and each layer is later read by
// offset inside the archive file, through a descriptor open only while it
// is read. A docker-archive has no manifest of its own; the one made up
// for it lists gzip layers by the digests their names give (hashed once
// when a name does not) and uncompressed layers (docker save) as
// uncompressed, with their diff IDs.
func Open(ctx context.Context, ref string, opts ...Option) (*Image, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, errors.New("empty image reference")
	}
	i := &Image{Ref: ref, opts: o}
	transport, rest := splitTransport(ref)
	switch transport {
	case "docker":
		err = i.openRemote(ctx, strings.TrimPrefix(rest, "//"))
	case "docker-daemon":
		err = i.openDaemon(ctx, rest)
	case "docker-archive":
		err = i.openDockerArchive(rest)
	case "oci":
		file, tag, _ := strings.Cut(rest, ":")
		err = i.openLayout(file, tag)
	case "oci-archive":
		err = i.openOCIArchive(rest)
	default:
		err = fmt.Errorf("unsupported transport %q; supported: %s", transport, strings.Join(Transports, ", "))
	}
	if err != nil {
		i.Close()
		return nil, fmt.Errorf("opening %q: %w", ref, err)
	}
	if err := i.describe(); err != nil {
		i.Close()
		return nil, fmt.Errorf("opening %q: %w", ref, err)
	}
	o.logger.Debug("opened image", "ref", ref, "digest", i.Digest, "platform", i.Platform.String(), "layers", len(i.Layers))
	return i, nil
}

// splitTransport returns the transport named by ref's prefix ("docker" when
// there is none) and the rest.
func splitTransport(ref string) (string, string) {
	if rest, ok := strings.CutPrefix(ref, "docker://"); ok {
		return "docker", rest
	}
	prefix, rest, ok := strings.Cut(ref, ":")
	if !ok {
		return "docker", ref
	}
	switch prefix {
	case "docker-daemon", "docker-archive", "oci", "oci-archive":
		return prefix, rest
	}
	for _, u := range knownUnsupported {
		if prefix == u {
			return prefix, rest
		}
	}
	if strings.HasPrefix(rest, "//") {
		// "scheme://..." that is not docker://.
		return prefix, rest
	}
	return "docker", ref
}

func (i *Image) openRemote(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(i.opts.keychain),
		remote.WithPlatform(i.opts.platform),
	}
	if i.opts.transport != nil {
		ropts = append(ropts, remote.WithTransport(i.opts.transport))
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return err
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		if img, err = selectPlatform(idx, i.opts.platform); err != nil {
			return err
		}
	} else if img, err = desc.Image(); err != nil {
		return err
	}
	cached, err := newCachedImage(img, i.opts)
	if err != nil {
		return err
	}
	i.img = cached
	i.compressedBlobs = true
	return nil
}

func (i *Image) openDaemon(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	// The file-buffered opener saves the image once to a temp file instead
	// of holding the whole tar in memory.
	img, err := daemon.Image(r, daemon.WithContext(ctx), daemon.WithFileBufferedOpener())
	if err != nil {
		return err
	}
	i.img = img
	return nil
}

func (i *Image) openDockerArchive(spec string) error {
	file, ref, _ := strings.Cut(spec, ":")
	if file == "" {
		return errors.New("docker-archive: missing file name")
	}
	var tag *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("docker-archive reference %q: %w", ref, err)
		}
		tag = &t
	}
	a, err := openArchive(file)
	if err != nil {
		return err
	}
	i.cleanup = append(i.cleanup, a.close)
	img, err := dockerArchiveImage(a, tag, i.opts.logger)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	i.img = img
	i.compressedBlobs = true
	return nil
}

func (i *Image) openLayout(dir, tag string) error {
	if dir == "" {
		return errors.New("oci: missing directory")
	}
	i.compressedBlobs = true
	p, err := layout.FromPath(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%q is not an OCI image layout (no index.json there; oci: takes a layout directory, oci-archive: a tar of one): %w", dir, err)
		}
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	return i.openFromIndex(idx, "oci", dir, tag)
}

// openFromIndex picks the image of an OCI layout's index (of the layout
// where, read through transport): the one tagged tag (the
// org.opencontainers.image.ref.name annotation), or without a tag the only
// image or index, or the requested platform of a multi-platform index.
func (i *Image) openFromIndex(idx v1.ImageIndex, transport, where, tag string) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if tag == "" {
		// Without a tag the layout must hold one image, one index, or be
		// itself a multi-platform index (every entry an image with a
		// platform).
		multiPlatform := len(m.Manifests) > 1
		for _, d := range m.Manifests {
			if !d.MediaType.IsImage() || d.Platform == nil {
				multiPlatform = false
			}
		}
		if len(m.Manifests) > 1 && !multiPlatform {
			var names []string
			for _, d := range m.Manifests {
				if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			return fmt.Errorf("%s holds %d manifests; name one with %s:%s:TAG (tags: %s)", where, len(m.Manifests), transport, where, strings.Join(names, ", "))
		}
		img, err := selectPlatform(idx, i.opts.platform)
		if err != nil {
			return err
		}
		i.img = img
		return nil
	}
	var names []string
	for _, d := range m.Manifests {
		n := d.Annotations["org.opencontainers.image.ref.name"]
		if n != tag {
			if n != "" {
				names = append(names, n)
			}
			continue
		}
		switch {
		case d.MediaType.IsIndex():
			sub, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			img, err := selectPlatform(sub, i.opts.platform)
			if err != nil {
				return err
			}
			i.img = img
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			i.img = img
		default:
			return fmt.Errorf("tag %q: unsupported media type %q", tag, d.MediaType)
		}
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("no image tagged %q in %s (tags: %s)", tag, where, strings.Join(names, ", "))
}

func (i *Image) openOCIArchive(spec string) error {
	file, tag, _ := strings.Cut(spec, ":")
	if file == "" {
		return errors.New("oci-archive: missing file name")
	}
	a, err := openArchive(file)
	if err != nil {
		return err
	}
	i.cleanup = append(i.cleanup, a.close)
	idx, err := ociIndex(a)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	i.compressedBlobs = true
	return i.openFromIndex(idx, "oci-archive", file, tag)
}

// selectPlatform picks want from a (possibly nested) index.
func selectPlatform(idx v1.ImageIndex, want v1.Platform) (v1.Image, error) {
	var seen []string
	img, err := findPlatform(idx, want, &seen, 0)
	if err != nil {
		return nil, err
	}
	if img == nil {
		sort.Strings(seen)
		return nil, &PlatformError{Want: want.String(), Available: seen}
	}
	return img, nil
}

func findPlatform(idx v1.ImageIndex, want v1.Platform, seen *[]string, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("image indexes nested too deep")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			sub, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			img, err := findPlatform(sub, want, seen, depth+1)
			if err != nil || img != nil {
				return img, err
			}
		case d.MediaType.IsImage():
			if d.Platform == nil {
				// A layout holding one image without a platform.
				if len(m.Manifests) == 1 {
					return idx.Image(d.Digest)
				}
				continue
			}
			if d.Platform.OS == "unknown" {
				continue // attestations
			}
			*seen = append(*seen, d.Platform.String())
			if platformMatches(*d.Platform, want) {
				return idx.Image(d.Digest)
			}
		}
	}
	return nil, nil
}

// platformMatches reports whether have satisfies want. An empty wanted
// variant matches any variant; arm64's "v8" equals no variant.
func platformMatches(have, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	hv, wv := have.Variant, want.Variant
	if have.Architecture == "arm64" {
		if hv == "" {
			hv = "v8"
		}
		if wv == "" {
			wv = "v8"
		}
	}
	return hv == wv
}

// PlatformError says the image has no manifest for the requested platform.
type PlatformError struct {
	// Want is the platform asked for (DefaultPlatform unless WithPlatform).
	Want string
	// Available lists the platforms the image has.
	Available []string
}

func (e *PlatformError) Error() string {
	if len(e.Available) == 1 {
		return fmt.Sprintf("image is %s, not %s", e.Available[0], e.Want)
	}
	if len(e.Available) == 0 {
		return fmt.Sprintf("image has no %s manifest", e.Want)
	}
	return fmt.Sprintf("image has no %s manifest; available: %s", e.Want, strings.Join(e.Available, ", "))
}

// describe fills Digest, Config, Platform and Layers from i.img, and checks
// the platform of a single-platform image.
func (i *Image) describe() error {
	d, err := i.img.Digest()
	if err != nil {
		return fmt.Errorf("manifest digest: %w", err)
	}
	i.Digest = d.String()
	cfg, err := i.img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if cfg == nil {
		return errors.New("image has no config")
	}
	i.Config = cfg
	want := i.opts.platform
	if cfg.Architecture == "" {
		i.Platform = want
		i.opts.logger.Debug("image config names no platform; assuming the requested one", "platform", want.String())
	} else {
		i.Platform = v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		if i.Platform.OS == "" {
			i.Platform.OS = "linux"
		}
		if !platformMatches(i.Platform, want) {
			return &PlatformError{Want: want.String(), Available: []string{i.Platform.String()}}
		}
	}
	layers, err := i.img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	var history []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			history = append(history, h.CreatedBy)
		}
	}
	if len(history) != len(layers) {
		history = nil
	}
	i.Layers = make([]Layer, len(layers))
	for n, l := range layers {
		dg, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer %d digest: %w", n, err)
		}
		// The config lists the diff IDs; asking a layout's or an
		// archive's layer would decompress and hash it here.
		var diff v1.Hash
		if len(cfg.RootFS.DiffIDs) == len(layers) {
			diff = cfg.RootFS.DiffIDs[n]
		} else if diff, err = l.DiffID(); err != nil {
			return fmt.Errorf("layer %d diff ID: %w", n, err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer %d size: %w", n, err)
		}
		i.Layers[n] = Layer{Digest: dg.String(), DiffID: diff.String(), Size: size}
		if history != nil {
			i.Layers[n].CreatedBy = history[n]
		}
	}
	return nil
}

// cleanCacheName turns a digest into a file name.
func cleanCacheName(h v1.Hash) string {
	return filepath.Join(h.Algorithm, h.Hex)
}
