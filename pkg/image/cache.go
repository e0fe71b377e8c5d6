package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The blob cache keeps compressed layer blobs and configs of remote images
// on disk by digest (DIR/sha256/HEX). A blob is written to a temporary file
// next to its final name while it streams by, its digest is checked, and
// only a complete, verified blob is renamed into place, so an interrupted
// download never leaves a truncated blob behind. Cached blobs are trusted
// by name: the directory belongs to the user.

// cachedImage wraps a remote image so that its config and layers come from
// the cache when present and fill it when not.
type cachedImage struct {
	v1.Image
	opts   *options
	layers []v1.Layer
	cached []*cachedLayer // what layers wrap
}

func newCachedImage(img v1.Image, o *options) (*cachedImage, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	c := &cachedImage{Image: img, opts: o}
	for n, l := range ls {
		cl := &cachedLayer{inner: l, img: c, dir: o.cacheDir, opts: o, index: n, count: len(ls)}
		wrapped, err := partial.CompressedToLayer(cl)
		if err != nil {
			return nil, err
		}
		c.layers = append(c.layers, wrapped)
		c.cached = append(c.cached, cl)
	}
	return c, nil
}

// Layers implements v1.Image.
func (c *cachedImage) Layers() ([]v1.Layer, error) { return c.layers, nil }

// LayerByDigest implements v1.Image.
func (c *cachedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range c.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return c.Image.LayerByDigest(h)
}

// LayerByDiffID implements v1.Image.
func (c *cachedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range c.layers {
		if d, err := l.DiffID(); err == nil && d == h {
			return l, nil
		}
	}
	return c.Image.LayerByDiffID(h)
}

// RawConfigFile implements v1.Image, reading the config blob through the
// cache.
func (c *cachedImage) RawConfigFile() ([]byte, error) {
	m, err := c.Image.Manifest()
	if err != nil {
		return nil, err
	}
	h := m.Config.Digest
	p := filepath.Join(c.opts.cacheDir, cleanCacheName(h))
	if b, err := os.ReadFile(p); err == nil {
		if sum := sha256.Sum256(b); h.Algorithm == "sha256" && hex.EncodeToString(sum[:]) == h.Hex {
			return b, nil
		}
	}
	b, err := c.Image.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p, b); err != nil {
		c.opts.logger.Debug("caching config", "digest", h.String(), "err", err)
	}
	return b, nil
}

// ConfigName implements v1.Image, from the manifest.
func (c *cachedImage) ConfigName() (v1.Hash, error) {
	m, err := c.Image.Manifest()
	if err != nil {
		return v1.Hash{}, err
	}
	return m.Config.Digest, nil
}

// ConfigFile implements v1.Image.
func (c *cachedImage) ConfigFile() (*v1.ConfigFile, error) {
	return partial.ConfigFile(c)
}

func writeFileAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// cachedLayer is a partial.CompressedLayer that reads the blob from the
// cache, or downloads it into the cache as it is read.
type cachedLayer struct {
	inner        v1.Layer
	img          *cachedImage
	dir          string
	opts         *options
	index, count int
	verified     atomic.Bool
}

func (l *cachedLayer) Digest() (v1.Hash, error)            { return l.inner.Digest() }
func (l *cachedLayer) Size() (int64, error)                { return l.inner.Size() }
func (l *cachedLayer) MediaType() (types.MediaType, error) { return l.inner.MediaType() }

// DiffID reads the diff ID from the config through the cache (the remote
// layer would fetch the config blob again).
func (l *cachedLayer) DiffID() (v1.Hash, error) {
	d, err := l.inner.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	return partial.BlobToDiffID(l.img, d)
}

// Compressed returns the cached blob, or the remote blob teed into the
// cache.
func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	h, err := l.inner.Digest()
	if err != nil {
		return nil, err
	}
	size, _ := l.inner.Size()
	final := filepath.Join(l.dir, cleanCacheName(h))
	if f, err := os.Open(final); err == nil {
		l.opts.logger.Debug("layer from cache", "digest", h.String())
		progressf(l.opts.progress, "layer %d/%d %s: cached (%s)", l.index+1, l.count, shortDigest(h.String()), humanBytes(size))
		if h.Algorithm == "sha256" && !l.verified.Load() {
			if err := verifyFile(f, h.Hex); err != nil {
				f.Close()
				os.Remove(final)
				return nil, fmt.Errorf("cached blob %s: %w; removed it, run again to download it", final, err)
			}
			l.verified.Store(true)
		}
		return f, nil
	}
	rc, err := l.inner.Compressed()
	if err != nil {
		return nil, err
	}
	var body io.ReadCloser = rc
	if l.opts.progress != nil {
		body = newProgressReader(rc, l.opts.progress, fmt.Sprintf("layer %d/%d %s", l.index+1, l.count, shortDigest(h.String())), size)
	}
	if h.Algorithm != "sha256" {
		return body, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		l.opts.logger.Debug("cache dir unusable; not caching", "err", err)
		return body, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-*")
	if err != nil {
		l.opts.logger.Debug("cache dir unusable; not caching", "err", err)
		return body, nil
	}
	return &teeToCache{r: body, f: tmp, h: sha256.New(), want: h.Hex, final: final, opts: l.opts, verified: &l.verified}, nil
}

// verifyFile checks the sha256 of f and rewinds it. A cached blob is
// checked once per process before it is first used (one this process
// downloaded was checked as it was written): a blob changed on disk would
// otherwise fail later with a decompression error and stay broken.
func verifyFile(f *os.File, want string) error {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("digest is sha256:%s, want sha256:%s", got, want)
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// teeToCache copies what is read into a temporary file and renames it into
// the cache when the whole blob was read and its digest matches; verified
// is then set, so that the layer's next read (Extract's pass) does not hash
// the blob again.
type teeToCache struct {
	r        io.ReadCloser
	f        *os.File
	h        hash.Hash
	want     string
	final    string
	opts     *options
	verified *atomic.Bool
	done     bool
	fail     bool
}

func (t *teeToCache) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && !t.fail {
		if _, werr := t.f.Write(p[:n]); werr != nil {
			t.fail = true
		}
		t.h.Write(p[:n])
	}
	if errors.Is(err, io.EOF) {
		t.done = true
	}
	return n, err
}

func (t *teeToCache) Close() error {
	err := t.r.Close()
	name := t.f.Name()
	cerr := t.f.Close()
	if t.done && !t.fail && cerr == nil && hex.EncodeToString(t.h.Sum(nil)) == t.want {
		if rerr := os.Rename(name, t.final); rerr == nil {
			t.verified.Store(true)
			return err
		}
	} else if t.done {
		t.opts.logger.Debug("not caching blob", "digest", t.want, "complete", t.done, "write_failed", t.fail)
	}
	os.Remove(name)
	return err
}
