package demo

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/comingout/extract/internal/imagebuild"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultPath is the PATH a BuildKit-built Debian image carries in its config.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type options struct {
	program  string
	packages []string
	user     string
	uid      int
	workdir  string
}

// Option configures BuildImage.
type Option func(*options) error

// WithProgram sets the image path of the entrypoint program, which goes in
// a layer of its own (the Dockerfile's COPY --from=build). Default
// "/usr/local/bin/momentum".
func WithProgram(p string) Option {
	return func(o *options) error {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("program %q: want a clean absolute file path", p)
		}
		o.program = p
		return nil
	}
}

// WithPackages sets the globs (path.Match syntax, matched against each path
// component) that select the files the Dockerfile's "apt-get install" layer
// adds on top of the base. Default "libgfortran*", "libquadmath*": what
// libgfortran5 brings into bookworm-slim, whose libc6 and libgcc-s1 are
// already there.
func WithPackages(globs ...string) Option {
	return func(o *options) error {
		if len(globs) == 0 {
			return errors.New("packages: at least one glob is required")
		}
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("package glob %q: %w", g, err)
			}
		}
		o.packages = append([]string(nil), globs...)
		return nil
	}
}

// WithUser sets the non-root user the image runs as and its uid (also the
// gid of its group). Default "momentum", 10001.
func WithUser(name string, uid int) Option {
	return func(o *options) error {
		if name == "" || strings.ContainsAny(name, ":\n/ ") {
			return fmt.Errorf("user %q: want a plain user name", name)
		}
		if uid <= 0 || uid > 65534 {
			return fmt.Errorf("uid %d for user %q: want a non-root uid up to 65534", uid, name)
		}
		o.user, o.uid = name, uid
		return nil
	}
}

// WithWorkDir sets the image's WORKDIR, created in its own layer and owned
// by the user. Default "/work".
func WithWorkDir(dir string) Option {
	return func(o *options) error {
		if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
			return fmt.Errorf("workdir %q: want a clean absolute directory other than /", dir)
		}
		o.workdir = dir
		return nil
	}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		program:  "/usr/local/bin/momentum",
		packages: []string{"libgfortran*", "libquadmath*"},
		user:     "momentum",
		uid:      10001,
		workdir:  "/work",
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Layer indexes of the image BuildImage makes, bottom first, one per
// instruction of examples/fortran-momentum/Dockerfile that makes a layer.
const (
	LayerBase     = iota // FROM debian:bookworm-slim
	LayerPackages        // RUN apt-get install libgfortran5
	LayerProgram         // COPY --from=build /src/momentum /usr/local/bin/momentum
	LayerUser            // RUN useradd
	LayerWorkDir         // WORKDIR /work
	NumLayers
)

// BuildImage makes, without Docker, the image examples/fortran-momentum/
// Dockerfile makes, from rootfs: a directory holding the runtime's Debian
// packages unpacked (libc6, libgcc-s1, libgfortran5, libquadmath0 and what
// they need) and the gfortran-built program, such as the fortran-merged
// fixture of testdata/make-fixtures.sh. The layers are the Dockerfile's:
//
//   - LayerBase, the bookworm-slim base: every rootfs path not taken by a
//     later layer;
//   - LayerPackages, "apt-get install libgfortran5": the paths with a
//     component matching a package glob (WithPackages);
//   - LayerProgram, "COPY --from=build": the program (WithProgram);
//   - LayerUser, "useradd": /etc/passwd and /etc/group, the rootfs's with
//     the user and its group added (WithUser);
//   - LayerWorkDir, "WORKDIR": the work directory, owned by the user.
//
// The config has ENTRYPOINT [program], USER, WORKDIR and ENV PATH, the
// history of every instruction (empty layers included), and the platform
// of the program's ELF machine. The rootfs layers are written by
// imagebuild.FromDir; everything is deterministic (the same rootfs gives
// the same digest).
func BuildImage(rootfs string, opts ...Option) (v1.Image, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	plat, pkgs, err := o.inspect(rootfs)
	if err != nil {
		return nil, err
	}
	history := o.history()
	img, err := imagebuild.FromDir(rootfs, o.config(),
		imagebuild.WithPlatform(*plat),
		imagebuild.WithBaseCreatedBy(history[0].CreatedBy),
		imagebuild.WithLayer(imagebuild.Layer{CreatedBy: history[2].CreatedBy, Prefixes: pkgs}),
		imagebuild.WithLayer(imagebuild.Layer{CreatedBy: history[3].CreatedBy, Prefixes: []string{o.program}}),
	)
	if err != nil {
		return nil, fmt.Errorf("building layers from %s: %w", rootfs, err)
	}
	user, err := o.userLayer(rootfs)
	if err != nil {
		return nil, err
	}
	work, err := o.workDirLayer()
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: user, History: history[4]},
		mutate.Addendum{Layer: work, History: history[6]},
	)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	return withHistory(img, history)
}

// inspect returns the platform of the program in rootfs and the paths of
// the packages layer.
func (o *options) inspect(rootfs string) (*v1.Platform, []string, error) {
	plat, err := elfPlatform(filepath.Join(rootfs, filepath.FromSlash(o.program)))
	if err != nil {
		return nil, nil, fmt.Errorf("program %q in %s: %w", o.program, rootfs, err)
	}
	pkgs, err := packagePaths(rootfs, o.packages)
	if err != nil {
		return nil, nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil, fmt.Errorf("rootfs %s: no path matches the package globs %q", rootfs, o.packages)
	}
	return plat, pkgs, nil
}

// history returns the image's history, one entry per instruction of the
// Dockerfile, empty layers included, without times.
func (o *options) history() []v1.History {
	id := strconv.Itoa(o.uid)
	return []v1.History{
		{CreatedBy: "ADD rootfs / # debian:bookworm-slim, from Debian packages"},
		{CreatedBy: `CMD ["bash"]`, EmptyLayer: true},
		{CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends libgfortran5 && rm -rf /var/lib/apt/lists/* # buildkit"},
		{CreatedBy: "COPY --from=build /src/momentum " + o.program + " # buildkit"},
		{CreatedBy: "RUN /bin/sh -c useradd --system --uid " + id + " --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin " + o.user + " # buildkit"},
		{CreatedBy: "USER " + o.user, EmptyLayer: true},
		{CreatedBy: "WORKDIR " + o.workdir},
		{CreatedBy: `ENTRYPOINT ["` + o.program + `"]`, EmptyLayer: true},
	}
}

// config returns the image's config: ENTRYPOINT, USER, WORKDIR, ENV PATH
// and labels.
func (o *options) config() v1.Config {
	return v1.Config{
		Env:        []string{"PATH=" + DefaultPath},
		Entrypoint: []string{o.program},
		User:       o.user,
		WorkingDir: o.workdir,
		Labels: map[string]string{
			"org.opencontainers.image.title":       "momentum",
			"org.opencontainers.image.description": "mass x velocity = momentum, in Fortran: mass,velocity CSV on stdin, mass,velocity,momentum CSV on stdout",
			"org.opencontainers.image.source":      "https://github.com/comingout/extract/tree/main/examples/fortran-momentum",
		},
	}
}

// userLayer is RUN useradd: the rootfs's passwd and group with the user
// and its group appended.
func (o *options) userLayer(rootfs string) (v1.Layer, error) {
	passwd, err := readOptional(filepath.Join(rootfs, "etc", "passwd"))
	if err != nil {
		return nil, err
	}
	group, err := readOptional(filepath.Join(rootfs, "etc", "group"))
	if err != nil {
		return nil, err
	}
	if bytes.Contains(passwd, []byte("\n"+o.user+":")) || bytes.HasPrefix(passwd, []byte(o.user+":")) {
		return nil, fmt.Errorf("rootfs %s: user %q already in /etc/passwd", rootfs, o.user)
	}
	id := strconv.Itoa(o.uid)
	l, err := synthLayer([]synthEntry{
		{path: "/etc", dir: true, mode: 0o755},
		{path: "/etc/group", mode: 0o644, content: appendLine(group, o.user+":x:"+id+":")},
		{path: "/etc/passwd", mode: 0o644, content: appendLine(passwd, o.user+":x:"+id+":"+id+"::/nonexistent:/usr/sbin/nologin")},
	})
	if err != nil {
		return nil, fmt.Errorf("useradd layer: %w", err)
	}
	return l, nil
}

// workDirLayer is WORKDIR: BuildKit creates the directory owned by the
// current USER, its parents owned by root.
func (o *options) workDirLayer() (v1.Layer, error) {
	var wd []synthEntry
	for d := path.Dir(o.workdir); d != "/"; d = path.Dir(d) {
		wd = append([]synthEntry{{path: d, dir: true, mode: 0o755}}, wd...)
	}
	wd = append(wd, synthEntry{path: o.workdir, dir: true, mode: 0o755, uid: o.uid})
	l, err := synthLayer(wd)
	if err != nil {
		return nil, fmt.Errorf("workdir layer: %w", err)
	}
	return l, nil
}

// withHistory sets img's history and creation time to imagebuild.Epoch,
// with BuildKit's comment on the entries the Dockerfile's instructions
// made.
func withHistory(img v1.Image, history []v1.History) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	at := v1.Time{Time: imagebuild.Epoch}
	for i := range history {
		history[i].Created = at
		if i > 1 {
			history[i].Comment = "buildkit.dockerfile.v0"
		}
	}
	cf.History = history
	cf.Created = at
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	return img, nil
}

// packagePaths returns the top-most paths of rootfs with a component
// matching one of globs (a matching directory stands for all below it).
func packagePaths(rootfs string, globs []string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(rootfs, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, host)
		if err != nil || rel == "." {
			return err
		}
		for _, g := range globs {
			if ok, _ := path.Match(g, d.Name()); ok {
				out = append(out, "/"+filepath.ToSlash(rel))
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading rootfs %s: %w", rootfs, err)
	}
	return out, nil
}

func readOptional(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func appendLine(b []byte, line string) []byte {
	out := append([]byte(nil), b...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(append(out, line...), '\n')
}

// elfPlatform returns the platform of an ELF program.
func elfPlatform(file string) (*v1.Platform, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return &v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case elf.EM_AARCH64:
		return &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	}
	return nil, fmt.Errorf("ELF machine %s: want x86_64 or aarch64", f.Machine)
}

// synthEntry is a file or directory of a layer made in memory.
type synthEntry struct {
	path    string
	dir     bool
	mode    int64
	uid     int // and gid
	content []byte
}

// synthLayer writes entries, in order, as a layer with imagebuild.Epoch
// times.
func synthLayer(entries []synthEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: imagebuild.Epoch,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.content); err != nil {
			return nil, fmt.Errorf("writing %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}
