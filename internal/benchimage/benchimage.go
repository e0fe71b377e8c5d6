// Package benchimage builds the image `make bench` packages
// (scripts/bench-package.sh): a realistic, large, many-layer image made
// from the Debian fixtures of testdata/make-fixtures.sh plus generated bulk
// files, with the Fortran momentum program (a real closure: the loader,
// libgfortran, libc...) as its entrypoint. Layers, bottom first:
//
//   - one layer per Debian fixture root filesystem (python, perl, tcl,
//     sh-tools, shapp, fontconfig: about 200 MB of packages);
//   - BulkLayers generated layers of about BulkLayerBytes each: many small
//     text files, larger text files, incompressible data files, copies of
//     real ELF files and scripts, and whiteouts of the layer below;
//   - the momentum image's five layers (internal/demo.BuildImage).
//
// Everything is deterministic; the image is written once into an OCI
// layout and reused.
package benchimage

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/comingout/extract/internal/demo"
	"github.com/comingout/extract/internal/imagebuild"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	kgzip "github.com/klauspost/compress/gzip"
)

// Fixtures are the Debian fixture root filesystems below the bulk layers.
var Fixtures = []string{"python", "perl", "tcl", "sh-tools", "shapp", "fontconfig"}

const (
	// BulkLayers is the number of generated layers.
	BulkLayers = 3
	// BulkLayerBytes is the approximate uncompressed size of each.
	BulkLayerBytes = 180 << 20
)

// Version names the generated content; a change to the generator bumps it
// so that an old layout is not reused.
const Version = "v1"

// Layout returns the image from the OCI layout in dir/layout, building it
// there first from fixtures when dir holds no complete one. logf reports
// progress.
func Layout(dir, fixtures string, logf func(string, ...any)) (v1.Image, error) {
	lay := filepath.Join(dir, "layout")
	done := filepath.Join(dir, "complete-"+Version)
	if _, err := os.Stat(done); err != nil {
		start := time.Now()
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		img, err := build(dir, fixtures, logf)
		if err != nil {
			return nil, err
		}
		p, err := layout.Write(lay, empty.Index)
		if err != nil {
			return nil, err
		}
		if err := p.AppendImage(img); err != nil {
			return nil, fmt.Errorf("writing the layout: %w", err)
		}
		for n := range BulkLayers {
			os.Remove(bulkFile(dir, n))
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return nil, err
		}
		logf("generated the image in %s", time.Since(start).Round(time.Second))
	}
	p, err := layout.FromPath(lay)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s holds %d manifests, want 1", lay, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

func bulkFile(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("bulk%d.tar.gz", n))
}

// build assembles the image; the bulk layers are written to dir first.
func build(dir, fixtures string, logf func(string, ...any)) (v1.Image, error) {
	var adds []mutate.Addendum
	at := v1.Time{Time: imagebuild.Epoch}
	for _, name := range Fixtures {
		logf("layer from fixture %s", name)
		img, err := imagebuild.FromDir(filepath.Join(fixtures, name), v1.Config{})
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", name, err)
		}
		ls, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "ADD " + name + " / # Debian packages", Created: at}})
		}
	}
	logf("generating %d bulk layers of about %d MB", BulkLayers, BulkLayerBytes>>20)
	errs := make([]error, BulkLayers)
	var wg sync.WaitGroup
	for n := range BulkLayers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[n] = writeBulk(bulkFile(dir, n), n)
		}()
	}
	wg.Wait()
	for n := range BulkLayers {
		if errs[n] != nil {
			return nil, fmt.Errorf("bulk layer %d: %w", n, errs[n])
		}
		l, err := tarball.LayerFromFile(bulkFile(dir, n))
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("COPY data%d /usr/share/ # bulk", n), Created: at}})
	}
	logf("momentum layers from fixture fortran-merged")
	app, err := demo.BuildImage(filepath.Join(fixtures, "fortran-merged"))
	if err != nil {
		return nil, err
	}
	acfg, err := app.ConfigFile()
	if err != nil {
		return nil, err
	}
	als, err := app.Layers()
	if err != nil {
		return nil, err
	}
	var hist []v1.History
	for _, h := range acfg.History {
		if !h.EmptyLayer {
			hist = append(hist, h)
		}
	}
	for n, l := range als {
		h := v1.History{CreatedBy: "momentum", Created: at}
		if len(hist) == len(als) {
			h = hist[n]
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: h})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = acfg.Config
	cf.OS, cf.Architecture, cf.Variant = acfg.OS, acfg.Architecture, acfg.Variant
	cf.Created = at
	return mutate.ConfigFile(img, cf)
}

var words = strings.Fields("the of and to in is was for on are with as by at from lambda image layer file program momentum mass velocity fortran container registry")

// writeBulk writes bulk layer n as a gzip'd tar (default level, as docker).
func writeBulk(p string, n int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := kgzip.NewWriterLevel(f, kgzip.DefaultCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(zw, 1<<20)
	tw := tar.NewWriter(bw)
	g := &gen{tw: tw, r: rand.New(rand.NewPCG(uint64(n), 7)), layer: n}
	if err := g.layerBody(); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type gen struct {
	tw      *tar.Writer
	r       *rand.Rand
	layer   int
	written int64
	buf     []byte
}

func (g *gen) put(name string, mode int64, body []byte) error {
	if err := g.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: imagebuild.Epoch}); err != nil {
		return err
	}
	g.written += int64(len(body)) + 512
	_, err := g.tw.Write(body)
	return err
}

func (g *gen) dir(name string) error {
	return g.tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: imagebuild.Epoch})
}

// text returns n bytes of word-like text.
func (g *gen) text(n int) []byte {
	b := g.buf[:0]
	for len(b) < n {
		b = append(b, words[g.r.IntN(len(words))]...)
		if g.r.IntN(12) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	g.buf = b
	return b[:n]
}

// random returns n incompressible bytes.
func (g *gen) random(n int) []byte {
	if cap(g.buf) < n {
		g.buf = make([]byte, n)
	}
	b := g.buf[:n]
	for i := 0; i+8 <= n; i += 8 {
		v := g.r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// layerBody writes, until BulkLayerBytes: 40% small text files (0.5–8
// KiB) in directories of 100, 35% text files of 1–4 MB, 25% random data
// files of 1–4 MB; then copies of real ELF files and scripts, and
// whiteouts of a share of the layer below's small files.
func (g *gen) layerBody() error {
	l := g.layer
	small := 0
	for g.written < BulkLayerBytes*40/100 {
		d := fmt.Sprintf("usr/share/bulk%d/d%03d", l, small/100)
		if small%100 == 0 {
			if err := g.dir(d); err != nil {
				return err
			}
		}
		if err := g.put(fmt.Sprintf("%s/f%05d.txt", d, small), 0o644, g.text(512+g.r.IntN(15*512))); err != nil {
			return err
		}
		small++
	}
	for i := 0; g.written < BulkLayerBytes*75/100; i++ {
		if err := g.put(fmt.Sprintf("opt/bulk%d/text%03d.txt", l, i), 0o644, g.text(1<<20+g.r.IntN(3<<20))); err != nil {
			return err
		}
	}
	for i := 0; g.written < BulkLayerBytes; i++ {
		if err := g.put(fmt.Sprintf("opt/bulk%d/data%03d.bin", l, i), 0o644, g.random(1<<20+g.r.IntN(3<<20))); err != nil {
			return err
		}
	}
	for i, src := range []string{"/bin/ls", "/usr/bin/tar", "/lib/x86_64-linux-gnu/libc.so.6"} {
		b, err := os.ReadFile(src)
		if err != nil {
			continue
		}
		if err := g.put(fmt.Sprintf("usr/lib/bulk%d/elf%d", l, i), 0o755, b); err != nil {
			return err
		}
	}
	for i := range 20 {
		if err := g.put(fmt.Sprintf("usr/bin/bulk%d-tool%d", l, i), 0o755, fmt.Appendf(nil, "#!/bin/sh\necho %d\n", i)); err != nil {
			return err
		}
	}
	if l > 0 {
		for i := 0; i < small; i += 97 {
			if err := g.put(fmt.Sprintf("usr/share/bulk%d/d%03d/.wh.f%05d.txt", l-1, i/100, i), 0o644, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteOCIArchive writes the layout directory dir as a tar (an
// oci-archive) to out.
func WriteOCIArchive(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// WriteDockerSave writes img to out the way `docker save` of Docker 25 and
// later does: manifest.json, the config and every layer as an uncompressed
// tar under blobs/sha256/ (named by its diff ID). An uncompressed layer
// costs a reader no decompression, and a manifest digest must be made up
// for it.
func WriteDockerSave(img v1.Image, tag, out string) error {
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: imagebuild.Epoch}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	var paths []string
	for _, l := range ls {
		d, err := l.DiffID()
		if err != nil {
			return err
		}
		n, err := uncompressedTo(tmp, l)
		if err != nil {
			return err
		}
		p := "blobs/sha256/" + d.Hex
		if err := put(p, n, io.NewSectionReader(tmp, 0, n)); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	cfgPath := "blobs/sha256/" + cfgName.Hex
	if err := put(cfgPath, int64(len(rawCfg)), strings.NewReader(string(rawCfg))); err != nil {
		return err
	}
	m, err := json.Marshal([]map[string]any{{"Config": cfgPath, "RepoTags": []string{tag}, "Layers": paths}})
	if err != nil {
		return err
	}
	if err := put("manifest.json", int64(len(m)), strings.NewReader(string(m))); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// uncompressedTo writes l's tar into f from its start and returns its size.
func uncompressedTo(f *os.File, l v1.Layer) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(f, rc)
}
