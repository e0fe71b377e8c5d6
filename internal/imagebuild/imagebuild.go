// Package imagebuild builds container images from root filesystem
// directories, without a Docker engine: one tar layer per group of paths,
// deterministic bytes (sorted entries, fixed times, owner root), the
// platform and config set. Tests, the demo and the benchmarks use it to turn
// the Debian fixtures made by testdata/make-fixtures.sh into real images.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch is the modification time of every tar entry and the image's
// creation time: images built from the same directory are identical.
var Epoch = time.Unix(0, 0).UTC()

// Layer selects the paths that go into one layer above the base layer.
type Layer struct {
	// CreatedBy is the history entry shown for the layer
	// ("COPY momentum /usr/local/bin/momentum").
	CreatedBy string `json:"created_by"`
	// Prefixes are absolute image paths; a path belongs to the layer when it
	// equals a prefix or lies below one. The parent directories of those
	// paths are repeated in the layer, as docker build does.
	Prefixes []string `json:"prefixes"`
}

// Option configures FromDir.
type Option func(*options) error

type options struct {
	platform  v1.Platform
	layers    []Layer
	baseBy    string
	whiteouts []string
}

// WithPlatform sets the image's platform. Default: linux/amd64.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q: os and architecture are required", p.String())
		}
		o.platform = p
		return nil
	}
}

// WithLayer moves the paths under the given prefixes out of the base layer
// into a layer of their own, stacked in the order of the WithLayer calls.
// A path matching prefixes of several layers goes to the first. Default:
// everything in one layer.
func WithLayer(l Layer) Option {
	return func(o *options) error {
		if len(l.Prefixes) == 0 {
			return errors.New("layer: at least one path prefix is required")
		}
		for _, p := range l.Prefixes {
			if !path.IsAbs(p) {
				return fmt.Errorf("layer prefix %q: must be an absolute path", p)
			}
		}
		o.layers = append(o.layers, l)
		return nil
	}
}

// WithBaseCreatedBy sets the history entry of the base layer. Default:
// "ADD rootfs /".
func WithBaseCreatedBy(s string) Option {
	return func(o *options) error {
		o.baseBy = s
		return nil
	}
}

// WithWhiteouts appends a top layer holding a whiteout (".wh.NAME") for
// each given absolute path, deleting it from the image as "RUN rm" would,
// so that indexers see a real deletion.
func WithWhiteouts(paths ...string) Option {
	return func(o *options) error {
		for _, p := range paths {
			if !path.IsAbs(p) || path.Clean(p) == "/" {
				return fmt.Errorf("whiteout %q: must be an absolute path below /", p)
			}
			o.whiteouts = append(o.whiteouts, path.Clean(p))
		}
		return nil
	}
}

// FromDir builds an image whose file system is the directory dir, with the
// given config (Entrypoint, Cmd, Env, WorkingDir, User...). Files keep their
// permission bits and symlinks their targets; hard links inside dir become
// tar hard links; owners become root; times become Epoch. The result is
// deterministic: the same dir and options give the same digest.
func FromDir(dir string, cfg v1.Config, opts ...Option) (v1.Image, error) {
	o := &options{
		platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		baseBy:   "ADD rootfs /",
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading root directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("root directory %q: not a directory", dir)
	}

	paths, err := walk(dir)
	if err != nil {
		return nil, err
	}
	groups := make([][]string, len(o.layers)+1)
	for _, p := range paths {
		groups[layerOf(o.layers, p)] = append(groups[layerOf(o.layers, p)], p)
	}

	var adds []mutate.Addendum
	for i, group := range groups {
		if i > 0 {
			group = withParents(group)
		}
		b, err := tarOf(dir, group)
		if err != nil {
			return nil, err
		}
		by := o.baseBy
		if i > 0 {
			by = o.layers[i-1].CreatedBy
		}
		l, err := layerFromBytes(b)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: by, Created: v1.Time{Time: Epoch}}})
	}
	if len(o.whiteouts) > 0 {
		b, err := whiteoutTar(o.whiteouts)
		if err != nil {
			return nil, err
		}
		l, err := layerFromBytes(b)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			CreatedBy: "RUN rm -rf " + strings.Join(o.whiteouts, " "), Created: v1.Time{Time: Epoch}}})
	}

	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS = o.platform.OS
	cf.Architecture = o.platform.Architecture
	cf.Variant = o.platform.Variant
	cf.Created = v1.Time{Time: Epoch}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}

// FixtureConfig is the OUTDIR/NAME.json file written by
// testdata/make-fixtures.sh next to each fixture root.
type FixtureConfig struct {
	// Platform is "os/arch[/variant]".
	Platform string    `json:"platform"`
	Config   v1.Config `json:"config"`
	Layers   []Layer   `json:"layers"`
}

// Fixture builds the image of fixture name from the fixtures directory made
// by testdata/make-fixtures.sh: the root filesystem fixtures/name with the
// config, platform and layers of fixtures/name.json. Extra options apply
// after those.
func Fixture(fixtures, name string, opts ...Option) (v1.Image, error) {
	fc, err := ReadFixtureConfig(fixtures, name)
	if err != nil {
		return nil, err
	}
	plat, err := v1.ParsePlatform(fc.Platform)
	if err != nil {
		return nil, fmt.Errorf("fixture %q: platform: %w", name, err)
	}
	all := []Option{WithPlatform(*plat)}
	for _, l := range fc.Layers {
		all = append(all, WithLayer(l))
	}
	return FromDir(filepath.Join(fixtures, name), fc.Config, append(all, opts...)...)
}

// ReadFixtureConfig reads fixtures/name.json.
func ReadFixtureConfig(fixtures, name string) (*FixtureConfig, error) {
	b, err := os.ReadFile(filepath.Join(fixtures, name+".json"))
	if err != nil {
		return nil, fmt.Errorf("fixture %q: %w (run testdata/make-fixtures.sh %s)", name, err, fixtures)
	}
	var fc FixtureConfig
	if err := json.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("fixture %q: parsing %s.json: %w", name, name, err)
	}
	return &fc, nil
}

// walk lists every path below dir as clean absolute image paths, sorted.
func walk(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		paths = append(paths, "/"+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %q: %w", dir, err)
	}
	sort.Strings(paths)
	return paths, nil
}

// layerOf returns 0 for the base layer or 1+i for o.layers[i].
func layerOf(layers []Layer, p string) int {
	for i, l := range layers {
		for _, pre := range l.Prefixes {
			pre = path.Clean(pre)
			if p == pre || strings.HasPrefix(p, strings.TrimSuffix(pre, "/")+"/") {
				return i + 1
			}
		}
	}
	return 0
}

// withParents adds the parent directories of every path, sorted.
func withParents(paths []string) []string {
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// tarOf writes the given image paths of dir as an uncompressed tar.
func tarOf(dir string, paths []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	for _, p := range paths {
		host := filepath.Join(dir, filepath.FromSlash(p))
		fi, err := os.Lstat(host)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", host, err)
		}
		name := strings.TrimPrefix(p, "/")
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(fi.Mode().Perm()),
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 04000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 02000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 01000
		}
		var body string
		switch {
		case fi.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(host)
			if err != nil {
				return nil, fmt.Errorf("reading link %q: %w", host, err)
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
		case fi.Mode().IsRegular():
			hdr.Typeflag = tar.TypeReg
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				key := inode{uint64(st.Dev), uint64(st.Ino)}
				if first, ok := seen[key]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					break
				}
				seen[key] = name
			}
			hdr.Size = fi.Size()
			body = host
		default:
			// Sockets, devices and fifos are not part of fixtures.
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing tar header %q: %w", name, err)
		}
		if body != "" {
			if err := copyFile(tw, body, hdr.Size); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing tar: %w", err)
	}
	return buf.Bytes(), nil
}

func copyFile(w io.Writer, name string, size int64) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("opening %q: %w", name, err)
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("copying %q: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("copying %q: file changed size while reading", name)
	}
	return nil
}

func whiteoutTar(paths []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range withParentsOf(paths) {
		hdr := &tar.Header{Name: strings.TrimPrefix(p, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing whiteout layer: %w", err)
		}
	}
	for _, p := range paths {
		name := strings.TrimPrefix(path.Join(path.Dir(p), ".wh."+path.Base(p)), "/")
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: Epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing whiteout layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing whiteout layer: %w", err)
	}
	return buf.Bytes(), nil
}

// withParentsOf returns the parent directories (not "/") of the paths.
func withParentsOf(paths []string) []string {
	set := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func layerFromBytes(b []byte) (v1.Layer, error) {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating layer: %w", err)
	}
	return l, nil
}
