package lambda

// Lambda container-image packages.
//
// A zip moves every file of the closure from /P to /var/task/rootfs/P, which
// the loader, "#!" lines and the paths Package rewrites survive, but a path
// compiled into a program (an interpreter's library home, /etc/fonts, an
// app's /etc/app.conf) does not. Lambda's other packaging type, a container
// image, keeps files where they were. PackageImage builds one: a single-
// platform image whose ENTRYPOINT is the same static bootstrap a zip carries
// (it implements the Runtime API, so no runtime interface client is needed),
// with the manifest beside it in xruntime.ImageDir.
//
// Two shapes:
//   - whole (the default): the source image's layers as they are (same
//     digests, so registries deduplicate them; zstd layers, which Lambda does
//     not take, are recompressed with gzip) plus one layer holding the
//     bootstrap and its manifest. Nothing is left out.
//   - slim: one layer with only the closure at its original paths (nothing
//     rewritten: no link directory, no PT_INTERP or "#!" change), plus the
//     bootstrap layer. Smaller, a faster first cold start, for a closure
//     that is trusted to be complete.
//
// Both are reproducible: the added layers are tar streams with sorted
// entries, fixed times and owners, compressed with fixed gzip headers, and
// the config keeps the source's creation time, so the same image and options
// give the same digest.

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// Image package shapes (ImageResult.Shape).
const (
	ShapeWhole = "whole"
	ShapeSlim  = "slim"
)

// MaxImageSize is Lambda's limit on a container image's size, uncompressed,
// all layers together: 10 GB (10 GiB, the way Lambda's documentation writes
// sizes).
const MaxImageSize int64 = 10 << 30

// layerTime is the modification time of every entry of the layers
// PackageImage writes.
var layerTime = time.Unix(0, 0).UTC()

// ImageResult describes a container-image package PackageImage built.
// Close removes the temporary files its layers are read from.
type ImageResult struct {
	// Image is the package; write it with WriteImage (or push it).
	Image v1.Image `json:"-"`
	// Digest is the image's manifest digest ("sha256:…"): the same image
	// and options give the same digest.
	Digest string `json:"digest"`
	// Shape is ShapeWhole or ShapeSlim.
	Shape string `json:"shape"`
	// Layers counts the image's layers; CompressedSize sums their blobs
	// (what a registry stores) and Size the files of its filesystem, the
	// bootstrap included (what Lambda's 10 GB limit is about).
	Layers         int   `json:"layers"`
	CompressedSize int64 `json:"compressed_size"`
	Size           int64 `json:"size"`
	// SlimOmits is what the slim shape leaves out of the whole image: the
	// files outside the closure (zero for a slim image).
	SlimOmits FileCount `json:"slim_omits"`
	// Manifest is the package's extract.json.
	Manifest xruntime.Manifest `json:"manifest"`
	// Closure is the set of image files the program needs.
	Closure *image.ClosureResult `json:"closure"`
	// Arch is the Lambda architecture: "x86_64" or "arm64".
	Arch string `json:"arch"`
	// Warnings are problems that did not stop packaging.
	Warnings []Warning `json:"warnings,omitempty"`
	// Trace is what the traced run of WithTrace saw and added.
	Trace *image.TraceSummary `json:"trace,omitempty"`
	// PathRefs are the original paths the closure's files name, when the
	// package was Prepared (what made auto choose an image).
	PathRefs []image.PathRef `json:"path_refs,omitempty"`

	tmp string
}

// FileCount is a number of files and their bytes.
type FileCount struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Close removes the temporary files the image's added layers are read
// from: the Image must not be read afterwards.
func (r *ImageResult) Close() error {
	if r == nil || r.tmp == "" {
		return nil
	}
	err := os.RemoveAll(r.tmp)
	r.tmp = ""
	return err
}

// WithSlim makes PackageImage build the slim shape: only the closure at its
// original paths (default: the whole source image).
func WithSlim(slim bool) PackageOption {
	return func(o *packageOptions) error {
		o.slim = slim
		return nil
	}
}

// PackageImage builds the Lambda container-image package of img: the whole
// source image (or, WithSlim, only the closure of its program at the
// original paths) plus a layer with the bootstrap for its architecture and
// the manifest in xruntime.ImageDir, with the bootstrap as ENTRYPOINT. The
// program runs where it ran in its container, with its container's
// environment and working directory, as the non-root user Lambda chooses,
// with a read-only root and /tmp writable. The options are Package's, plus
// WithSlim. Close the result when done with its Image.
func PackageImage(ctx context.Context, img *image.Image, opts ...PackageOption) (*ImageResult, error) {
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	p, err := resolve(ctx, img, o)
	if err != nil {
		return nil, err
	}
	return p.packageImage(ctx)
}

// packageImage builds the image package of a resolved packer.
func (p *packer) packageImage(ctx context.Context) (*ImageResult, error) {
	o := p.o
	p.verbatim = true
	prog, err := p.program()
	if err != nil {
		return nil, err
	}
	p.manifest = p.baseManifest(prog)
	if err := checkOutput(p.manifest); err != nil {
		return nil, err
	}
	p.warnInput(p.manifest)
	p.manifest.Format = xruntime.FormatImage
	p.manifest.Env = withHome(p.manifest.Env, p.idx, p.cmd.User)
	if err := p.getBootstrap(ctx); err != nil {
		return nil, err
	}
	if err := p.checkImageDir(); err != nil {
		return nil, err
	}
	p.checkReadable()

	tmp, err := os.MkdirTemp("", "extract-image-")
	if err != nil {
		return nil, fmt.Errorf("creating the layer directory: %w", err)
	}
	res := &ImageResult{tmp: tmp, Manifest: p.manifest, Closure: p.closure, Arch: p.arch, Trace: p.trace, PathRefs: p.refs}
	if err := p.buildImage(ctx, res); err != nil {
		res.Close()
		return nil, err
	}
	res.Warnings = p.warnings
	o.logger.Info("image package built", "shape", res.Shape, "digest", res.Digest, "layers", res.Layers, "size", res.Size)
	return res, nil
}

// buildImage assembles res.Image from the source's layers or the closure,
// and the bootstrap layer.
func (p *packer) buildImage(ctx context.Context, res *ImageResult) error {
	src := p.img.V1()
	mt, err := src.MediaType()
	if err != nil {
		return fmt.Errorf("reading the image's media type: %w", err)
	}
	oci := mt == types.OCIManifestSchema1
	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	cf, err := src.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the image's config: %w", err)
	}
	cf = cf.DeepCopy()
	layers, history, err := p.imageLayers(ctx, res, cf, layerType)
	if err != nil {
		return err
	}
	if res.Size > p.o.maxImage {
		return &SizeError{Size: res.Size, Limit: p.o.maxImage, Image: true}
	}
	base := empty.Image
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	out, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return fmt.Errorf("assembling the image: %w", err)
	}
	cf.RootFS = v1.RootFS{Type: "layers"}
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return fmt.Errorf("reading a layer's diff ID: %w", err)
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, d)
		sz, err := l.Size()
		if err != nil {
			return fmt.Errorf("reading a layer's size: %w", err)
		}
		res.CompressedSize += sz
	}
	cf.History = history
	p.imageConfig(cf)
	if out, err = mutate.ConfigFile(out, cf); err != nil {
		return fmt.Errorf("writing the image config: %w", err)
	}
	d, err := out.Digest()
	if err != nil {
		return fmt.Errorf("computing the image digest: %w", err)
	}
	res.Image, res.Digest, res.Layers = out, d.String(), len(layers)
	return nil
}

// imageLayers returns the package's layers and their history: the
// source's layers (whole) or the closure's (slim), then the bootstrap
// layer. It sets res.Shape, res.Size and, whole, res.SlimOmits.
func (p *packer) imageLayers(ctx context.Context, res *ImageResult, cf *v1.ConfigFile, layerType types.MediaType) ([]v1.Layer, []v1.History, error) {
	var layers []v1.Layer
	var history []v1.History
	if p.o.slim {
		res.Shape = ShapeSlim
		l, err := p.slimLayer(ctx, res.tmp, layerType)
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, l)
		history = append(history, v1.History{Created: cf.Created, CreatedBy: "extract package --format image --slim: the closure of " + p.manifest.Program})
		res.Size = closureFiles(p.closure).Bytes
	} else {
		res.Shape = ShapeWhole
		var err error
		if layers, err = gzipLayers(p.img.V1(), layerType); err != nil {
			return nil, nil, err
		}
		history = cf.History
		whole := indexFiles(p.idx)
		res.Size = whole.Bytes
		res.SlimOmits = omitted(whole, closureFiles(p.closure))
	}
	boot, err := p.bootstrapLayer(layerType)
	if err != nil {
		return nil, nil, err
	}
	layers = append(layers, boot)
	history = append(history, v1.History{Created: cf.Created, CreatedBy: "extract package --format image: bootstrap and manifest in " + xruntime.ImageDir})
	res.Size += int64(len(p.bootstrap))
	return layers, history, nil
}

// imageConfig sets the package's platform and runtime settings in cf: the
// bootstrap as ENTRYPOINT, no CMD, USER or health check (Lambda chooses
// the uid; the manifest keeps the image's USER).
func (p *packer) imageConfig(cf *v1.ConfigFile) {
	cf.OS = "linux"
	cf.Architecture = p.goarch
	cf.Variant = ""
	if p.goarch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config.Entrypoint = []string{xruntime.ImageDir + "/bootstrap"}
	cf.Config.Cmd = nil
	cf.Config.User = ""
	cf.Config.Healthcheck = nil
}

// SlimOmits is what an image package's slim shape (WithSlim) leaves out of the
// whole image: the regular files of the flattened image idx outside the
// closure.
func SlimOmits(idx *image.Index, closure *image.ClosureResult) FileCount {
	return omitted(indexFiles(idx), closureFiles(closure))
}

func omitted(whole, kept FileCount) FileCount {
	return FileCount{Files: whole.Files - kept.Files, Bytes: whole.Bytes - kept.Bytes}
}

// indexFiles counts the regular files of the flattened image.
func indexFiles(idx *image.Index) FileCount {
	var c FileCount
	_ = idx.Walk(func(e *image.Entry) error {
		if e.Kind == image.Regular {
			c.Files++
			c.Bytes += e.Size
		}
		return nil
	})
	return c
}

// closureFiles counts the closure's regular files.
func closureFiles(closure *image.ClosureResult) FileCount {
	var c FileCount
	for _, f := range closure.Files {
		if f.Kind == image.Regular {
			c.Files++
			c.Bytes += f.Size
		}
	}
	return c
}

// checkImageDir refuses an image that already has something at
// xruntime.ImageDir, or a non-directory on the way to it.
func (p *packer) checkImageDir() error {
	for _, d := range []string{path.Dir(xruntime.ImageDir), xruntime.ImageDir} {
		e, ok := p.idx.Lookup(d)
		if !ok {
			continue
		}
		if e.Kind != image.Dir {
			return fmt.Errorf("the image has %q, which is not a directory: the bootstrap goes in %s", d, xruntime.ImageDir)
		}
		if d == xruntime.ImageDir {
			return fmt.Errorf("the image already has %s, where the bootstrap and its manifest go", d)
		}
	}
	return nil
}

// checkReadable warns about closure files Lambda's user cannot read or run:
// Lambda runs an image as a uid it chooses, which owns none of its files.
// A whole image keeps the source's modes; a slim one makes them readable.
func (p *packer) checkReadable() {
	if p.o.slim {
		return
	}
	var unreadable []string
	for _, f := range p.closure.Files {
		if f.Kind == image.Regular && f.Mode&0o004 == 0 {
			unreadable = append(unreadable, f.Path)
		}
	}
	if e, ok := p.idx.Lookup(p.manifest.Program); ok && e.Kind == image.Regular && e.Mode&0o001 == 0 {
		p.warnKind(WarnNotExecutable, "program %q is not executable by others (mode %o): Lambda runs it as a user that owns no file; make it world-executable, or package the closure alone (slim), whose files are made readable and executable", e.Path, e.Mode&0o777)
	}
	if len(unreadable) > 0 {
		p.warnKind(WarnNotReadable, "%d closure files are not readable by others, and Lambda runs the image as a user that owns no file: %q; make them world-readable, or package the closure alone (slim), whose files are made readable", len(unreadable), unreadable)
	}
}

// withHome adds HOME to env as Docker sets it when the image does not: the
// home directory of the image's USER in its /etc/passwd (root when unset),
// "/" when the user is not there.
func withHome(env []string, idx *image.Index, user string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	home := "/"
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		name = "root"
	}
	if b, ok := idx.Content("/etc/passwd"); ok {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && (f[0] == name || f[2] == name) && path.IsAbs(f[5]) {
				home = f[5]
				break
			}
		}
	}
	return append(append([]string(nil), env...), "HOME="+home)
}

// maxManifestSize bounds the extract.json PackagedImage reads.
const maxManifestSize = 1 << 20

// PackagedImage reports whether img is an image package PackageImage built
// (its ENTRYPOINT is the bootstrap in xruntime.ImageDir) and returns its
// manifest, read from the top layer. Such an image is deployed or invoked
// as it is, never packaged again.
func PackagedImage(img *image.Image) (*xruntime.Manifest, bool, error) {
	if img == nil || img.Config == nil || !isBootstrapEntrypoint(img.Config.Config.Entrypoint) {
		return nil, false, nil
	}
	layers, err := img.V1().Layers()
	if err != nil || len(layers) == 0 {
		return nil, false, fmt.Errorf("reading the layers of %s: %v", img.Ref, err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		return nil, false, fmt.Errorf("reading the top layer of %s: %w", img.Ref, err)
	}
	defer rc.Close()
	want := strings.TrimPrefix(xruntime.ImageDir, "/") + "/" + xruntime.ManifestPath
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, false, fmt.Errorf("%s runs %s but its top layer has no %s: not an image package of this tool", img.Ref, img.Config.Config.Entrypoint[0], want)
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading the top layer of %s: %w", img.Ref, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) != want {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxManifestSize+1))
		if err != nil {
			return nil, false, fmt.Errorf("reading %s of %s: %w", want, img.Ref, err)
		}
		if len(b) > maxManifestSize {
			return nil, false, fmt.Errorf("%s of %s is over %d bytes", want, img.Ref, maxManifestSize)
		}
		var m xruntime.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, false, fmt.Errorf("parsing %s of %s: %w", want, img.Ref, err)
		}
		if m.Format != xruntime.FormatImage {
			return nil, false, fmt.Errorf("%s of %s has format %q, not %q", want, img.Ref, m.Format, xruntime.FormatImage)
		}
		return &m, true, nil
	}
}

func isBootstrapEntrypoint(ep []string) bool {
	return len(ep) == 1 && ep[0] == xruntime.ImageDir+"/bootstrap"
}
