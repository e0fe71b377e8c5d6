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
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
	var layers []v1.Layer
	var history []v1.History
	cf, err := src.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the image's config: %w", err)
	}
	cf = cf.DeepCopy()
	if p.o.slim {
		res.Shape = ShapeSlim
		l, err := p.slimLayer(ctx, res.tmp, layerType)
		if err != nil {
			return err
		}
		layers = append(layers, l)
		history = append(history, v1.History{Created: cf.Created, CreatedBy: "extract package --format image --slim: the closure of " + p.manifest.Program})
		res.Size = closureFiles(p.closure).Bytes
	} else {
		res.Shape = ShapeWhole
		if layers, err = gzipLayers(src, layerType); err != nil {
			return err
		}
		history = cf.History
		whole := indexFiles(p.idx)
		res.Size = whole.Bytes
		res.SlimOmits = omitted(whole, closureFiles(p.closure))
	}
	boot, err := p.bootstrapLayer(layerType)
	if err != nil {
		return err
	}
	layers = append(layers, boot)
	history = append(history, v1.History{Created: cf.Created, CreatedBy: "extract package --format image: bootstrap and manifest in " + xruntime.ImageDir})
	res.Size += int64(len(p.bootstrap))
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
	cf.OS = "linux"
	cf.Architecture = p.goarch
	cf.Variant = ""
	if p.goarch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config.Entrypoint = []string{xruntime.ImageDir + "/bootstrap"}
	cf.Config.Cmd = nil
	// Lambda chooses the uid; the manifest keeps the image's USER.
	cf.Config.User = ""
	cf.Config.Healthcheck = nil
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

// SlimOmits is what an image package's --slim shape leaves out of the
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

// gzipLayers returns src's layers as they are, except those Lambda cannot
// pull (zstd or uncompressed media types), which are recompressed with gzip.
func gzipLayers(src v1.Image, layerType types.MediaType) ([]v1.Layer, error) {
	ls, err := src.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the image's layers: %w", err)
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("reading layer %d's media type: %w", i, err)
		}
		switch mt {
		case types.DockerLayer, types.OCILayer:
			out[i] = l
		default:
			// zstd, uncompressed or foreign layers: the same files, gzip.
			out[i], err = tarball.LayerFromOpener(l.Uncompressed, tarball.WithMediaType(layerType))
			if err != nil {
				return nil, fmt.Errorf("recompressing layer %d (%s): %w", i, mt, err)
			}
		}
	}
	return out, nil
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

// bootstrapLayer is the layer with the bootstrap and the manifest, and the
// directories Lambda needs that the image lacks: /tmp (Lambda mounts its
// writable /tmp there) and the WORKDIR (Docker makes it at run time).
func (p *packer) bootstrapLayer(layerType types.MediaType) (v1.Layer, error) {
	mj, err := json.MarshalIndent(p.manifest, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	mj = append(mj, '\n')
	var entries []tarEntry
	seen := map[string]bool{}
	for _, d := range []string{"/tmp", p.manifest.WorkDir} {
		if d == "" || d == "/" || p.o.slim {
			continue // a slim image's layer has its own directories
		}
		if _, _, err := p.idx.Resolve(d); err != nil {
			entries = append(entries, p.dirEntries(d, seen)...)
		}
	}
	entries = append(entries, p.dirEntries(xruntime.ImageDir, seen)...)
	entries = append(entries,
		tarEntry{name: xruntime.ImageDir + "/bootstrap", mode: 0o755, data: p.bootstrap},
		tarEntry{name: xruntime.ImageDir + "/" + xruntime.ManifestPath, mode: 0o644, data: mj},
	)
	var buf bytes.Buffer
	if err := writeLayer(&buf, entries); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(layerType))
}

// dirEntries returns entries for the directory d and its parents not yet in
// seen, parents first: as the image has them (its modes; a symlink stays a
// symlink), else new directories, mode 755 ("/tmp" 1777).
func (p *packer) dirEntries(d string, seen map[string]bool) []tarEntry {
	var out []tarEntry
	for cur := path.Clean(d); cur != "/" && !seen[cur]; cur = path.Dir(cur) {
		seen[cur] = true
		e, ok := p.idx.Lookup(cur)
		switch {
		case ok && e.Kind == image.Symlink:
			out = append(out, tarEntry{name: cur, link: e.Target})
		case ok && e.Kind == image.Dir:
			out = append(out, tarEntry{name: cur, dir: true, mode: e.Mode & 0o7777})
		case cur == "/tmp":
			out = append(out, tarEntry{name: cur, dir: true, mode: 0o1777})
		default:
			out = append(out, tarEntry{name: cur, dir: true, mode: 0o755})
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// slimLayer writes the closure at its original paths as one gzip layer in
// dir: its files unchanged (read in one pass over the layers that hold
// them), its symlinks with their targets as written, the directories on
// the way with their image modes, /tmp, the WORKDIR and the image's
// /etc/ld.so.cache (the loader's cache of the image, so libraries are found
// exactly as in the container).
func (p *packer) slimLayer(ctx context.Context, dir string, layerType types.MediaType) (v1.Layer, error) {
	files := append([]image.File(nil), p.closure.Files...)
	for _, extra := range []string{"/etc/ld.so.cache"} {
		if e, ok := p.idx.Lookup(extra); ok && e.Kind == image.Regular && !p.inClosure(extra) {
			files = append(files, image.File{Entry: *e})
		}
	}
	for i := range files {
		if files[i].Kind == image.Regular {
			p.files = append(p.files, &files[i].Entry)
		}
	}
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		return nil, fmt.Errorf("creating the spool directory: %w", err)
	}
	if err := p.extract(ctx, spool); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var entries []tarEntry
	for _, d := range []string{"/tmp", p.manifest.WorkDir} {
		if d != "" {
			entries = append(entries, p.dirEntries(d, seen)...)
		}
	}
	for _, f := range files {
		entries = append(entries, p.dirEntries(path.Dir(f.Path), seen)...)
		switch f.Kind {
		case image.Regular:
			s, ok := p.spooled[f.Path]
			if !ok {
				return nil, fmt.Errorf("extracting the closure: no content for %q", f.Path)
			}
			entries = append(entries, tarEntry{name: f.Path, mode: int64(fileMode(f.Mode)), file: s.name, size: s.size})
		case image.Symlink:
			if !seen[f.Path] {
				seen[f.Path] = true
				entries = append(entries, tarEntry{name: f.Path, link: f.Target})
			}
		case image.Dir:
			entries = append(entries, p.dirEntries(f.Path, seen)...)
		default:
			p.warn("left out %q: not a regular file, directory or symlink", f.Path)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	name := filepath.Join(dir, "closure.tar.gz")
	out, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("writing the closure layer: %w", err)
	}
	err = writeLayer(out, entries)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the closure layer: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(spool); err != nil {
		return nil, fmt.Errorf("removing the spool: %w", err)
	}
	return tarball.LayerFromFile(name, tarball.WithMediaType(layerType))
}

func (p *packer) inClosure(ip string) bool {
	for _, f := range p.closure.Files {
		if f.Path == ip {
			return true
		}
	}
	return false
}

// tarEntry is one entry of a layer PackageImage writes: a directory, a
// symlink, or a regular file whose bytes are data or the file at file.
type tarEntry struct {
	name string
	dir  bool
	link string
	mode int64
	data []byte
	file string
	size int64
}

// writeLayer writes entries as a gzip-compressed tar with fixed times and
// owners and a fixed gzip header, so the same entries give the same bytes.
func writeLayer(w io.Writer, entries []tarEntry) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.name, "/"),
			Mode:    e.mode,
			ModTime: layerTime,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
			if e.file != "" {
				h.Size = e.size
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %q to the layer: %w", e.name, err)
		}
		if err := copyEntry(tw, e); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing the layer: %w", err)
	}
	return nil
}

func copyEntry(w io.Writer, e tarEntry) error {
	switch {
	case e.dir || e.link != "":
		return nil
	case e.file == "":
		_, err := w.Write(e.data)
		return err
	}
	f, err := os.Open(e.file)
	if err != nil {
		return fmt.Errorf("writing %q to the layer: %w", e.name, err)
	}
	defer f.Close()
	if n, err := io.Copy(w, f); err != nil || n != e.size {
		if err == nil {
			err = errors.New("short read from the spool")
		}
		return fmt.Errorf("writing %q to the layer: %w", e.name, err)
	}
	return nil
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
