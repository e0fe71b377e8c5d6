package lambda

// The layers of an image package: the source's (gzip for Lambda), the
// closure's (slim) and the bootstrap's, written reproducibly.

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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

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
