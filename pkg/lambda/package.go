package lambda

// How a bundled program is kept from the host's loader, libc and /bin/sh.
//
// Lambda runs the package on Amazon Linux (provided.al2023: glibc 2.34);
// the image's programs were linked against the image's glibc, often newer.
// A loader and a libc of different builds must never meet, so the package
// carries the image's loader and libc and nothing bundled may start the
// host's /lib64 loader, read the host's /etc/ld.so.cache or run the host's
// /bin/sh.
//
// Package rewrites the PT_INTERP of every bundled ELF file in place, rather
// than starting programs as "ld.so --library-path ... program": going
// through the loader changes /proc/self/exe and argv[0] and does not carry
// over to child processes (a script's `sort` would start the host's loader
// with the bundle's libc), while a rewritten PT_INTERP makes the kernel start
// the bundled loader for every bundled program, the entrypoint and its
// children alike, with their identity untouched.
//
// PT_INTERP must be an absolute path no longer than the original (27 bytes
// for /lib64/ld-linux-x86-64.so.2, 26 for /lib/ld-linux-aarch64.so.1), and
// the package is unpacked at /var/task on Lambda but anywhere by `extract
// invoke` and in tests. So each package has a link directory, LinkDir =
// "/tmp/x" + 10 hex digits of a hash of the image digest, the closure's
// paths and the manifest's settings (16 bytes, deterministic), and PT_INTERP
// becomes LinkDir+"/ld.so" (22 bytes; "ld1.so"… for further loaders), padded
// with NULs. ld.so is a symlink in the zip to the loader file under rootfs/
// (the PT_INTERP path with the image's symlinks resolved). At start
// the bootstrap makes LinkDir a symlink to the task root (only /tmp is
// writable on Lambda). Scripts' "#!" lines are rewritten to
// LinkDir+"/rootfs"+interpreter the same way, so they run the bundled shell.
// The bootstrap sets LD_LIBRARY_PATH to the closure's library directories
// in the bundle, so the loader finds every library there and never needs an
// ld.so.cache.
//
// Symlinks are kept as symlinks, and absolute targets (and relative ones
// climbing above the image root) are rewritten to relative ones: an
// absolute target would name a host file, wherever the package is unpacked.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// PackageResult describes a package Package wrote.
type PackageResult struct {
	// Files counts the zip's files and symlinks (bootstrap, manifest and
	// loader aliases included; directories not).
	Files int `json:"files"`
	// UnzippedSize is the sum of the entries' sizes, what Lambda's 250 MB
	// limit counts, and ZippedSize the zip's size.
	UnzippedSize int64 `json:"unzipped_size"`
	ZippedSize   int64 `json:"zipped_size"`
	// CodeSHA256 is the base64 SHA-256 of the zip, as Lambda reports it in
	// CodeSha256; SHA256 is the same digest in hex.
	CodeSHA256 string `json:"code_sha256"`
	SHA256     string `json:"sha256"`
	// Manifest is the package's extract.json.
	Manifest xruntime.Manifest `json:"manifest"`
	// Closure is the set of image files packaged, with why each is needed.
	Closure *image.ClosureResult `json:"closure"`
	// Arch is the Lambda architecture the package runs on: "x86_64" or
	// "arm64".
	Arch string `json:"arch"`
	// Warnings are problems that did not stop packaging.
	Warnings []Warning `json:"warnings,omitempty"`
	// Trace is what the traced run of WithTrace saw and added; nil
	// without it.
	Trace *image.TraceSummary `json:"trace,omitempty"`
	// PathRefs are the image paths closure files name that the zip moves
	// or leaves out (image.PathScanner): when there are any, the program
	// likely needs a container-image package, and Warnings says so.
	PathRefs []image.PathRef `json:"path_refs,omitempty"`
}

// Package writes the Lambda deployment zip of img to w: the closure of the
// program the image runs (see image.Closure) under rootfs/, the bootstrap
// for its architecture, the manifest (extract.json) and the loader aliases,
// with every bundled ELF's PT_INTERP and every bundled script's "#!" line
// rewritten to the bundle (see the comment at the top of package.go). The
// zip is deterministic: the same image and options give the same bytes
// (with the same bootstrap: an extract binary embeds its own; one built
// without them builds the bootstrap with the local Go toolchain, whose
// version the bootstrap's bytes depend on, as Deflate's output may across Go
// releases).
//
// Package reads the image's layers twice: once to index them, once to
// extract the closure's files, which are kept in a temporary directory while
// the zip is written in sorted order. A package over Lambda's unzipped limit
// is a *SizeError; one too big for a direct upload is a warning.
func Package(ctx context.Context, img *image.Image, w io.Writer, opts ...PackageOption) (*PackageResult, error) {
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	early := startBootstrap(ctx, o, img)
	defer early.stop()
	p, err := resolve(ctx, img, o)
	if err != nil {
		return nil, err
	}
	p.early = early
	return p.writeZip(ctx, w)
}

// writeZip plans, extracts and writes the zip of a resolved packer.
func (p *packer) writeZip(ctx context.Context, w io.Writer) (*PackageResult, error) {
	if err := p.plan(ctx); err != nil {
		return nil, err
	}
	spool, err := os.MkdirTemp("", "extract-package-")
	if err != nil {
		return nil, fmt.Errorf("creating the spool directory: %w", err)
	}
	defer os.RemoveAll(spool)
	if !p.refsKnown {
		// The zip reads every closure file anyway: the scan for
		// original paths rides along.
		p.scanner = image.NewPathScanner(p.idx, p.closure)
	}
	if err := p.extract(ctx, spool); err != nil {
		return nil, err
	}
	if p.scanner != nil {
		commandRefs(p.scanner, p.manifest)
		p.refs, p.refsKnown, p.scanner = p.scanner.Refs(), true, nil
	}
	p.warnOriginalPaths()
	res, err := p.write(ctx, w)
	if err != nil {
		return nil, err
	}
	res.Trace = p.trace
	return res, nil
}

// warnOriginalPaths warns that the zip moves files the program names by
// their original paths (image.NeedsOriginalPaths): never a silent zip
// that cannot work.
func (p *packer) warnOriginalPaths() {
	if !image.NeedsOriginalPaths(p.refs) {
		return
	}
	var ex []string
	for i, r := range p.refs {
		if i == 3 {
			break
		}
		ex = append(ex, fmt.Sprintf("%s names %s", r.File, r.Path))
	}
	p.warnKind(WarnOriginalPaths, "the program may not work from a zip: %d image paths it names by their original path are moved to /var/task/rootfs or left out (%s); a container-image package keeps them where they are",
		len(p.refs), strings.Join(ex, "; "))
}

// PackageFile is Package writing to the file at path. The zip is written to
// a temporary file in the same directory and renamed to path only once
// complete, so path never holds a partial package.
func PackageFile(ctx context.Context, img *image.Image, path string, opts ...PackageOption) (*PackageResult, error) {
	return writeFileAtomically(path, func(w io.Writer) (*PackageResult, error) { return Package(ctx, img, w, opts...) })
}

// resolve runs what every package format starts with: the closure
// pipeline (image.Resolve) on img, giving the index, the command it runs and
// that command's closure (traced with WithTrace).
func resolve(ctx context.Context, img *image.Image, o *packageOptions) (*packer, error) {
	if img == nil {
		return nil, errors.New("packaging: no image")
	}
	if img.Config != nil && isBootstrapEntrypoint(img.Config.Config.Entrypoint) && !o.override.EntrypointSet {
		return nil, fmt.Errorf("%s is already a Lambda image package (its ENTRYPOINT is %s): deploy or invoke it as it is", img.Ref, img.Config.Config.Entrypoint[0])
	}
	r, err := image.Resolve(ctx, img, o.resolveOptions()...)
	if err != nil {
		return nil, err
	}
	p := &packer{o: o, img: img, idx: r.Index, cmd: r.Command, closure: r.Closure, trace: r.Trace}
	for _, w := range r.Trace.Warnings() {
		p.warnings = append(p.warnings, Warning{Message: w})
	}
	return p, nil
}

// packer holds one Package run.
type packer struct {
	o       *packageOptions
	img     *image.Image
	idx     *image.Index
	cmd     *image.Command
	closure *image.ClosureResult
	// trace is what WithTrace's run saw and added, else nil.
	trace *image.TraceSummary

	arch, goarch string
	manifest     xruntime.Manifest
	bootstrap    []byte
	// loaders maps each PT_INTERP to its alias ("ld.so", "ld1.so", …).
	loaders map[string]string
	// files are the closure's regular files, in closure order, and
	// spooled the spool file and size of each after rewriting.
	files   []*image.Entry
	spooled map[string]spooledFile
	// entries are the zip's entries other than regular closure files.
	entries  []zipEntry
	warnings []Warning
	// shell holds the closure's shell scripts and bundled its paths, for
	// image.RelocateShell.
	shell, bundled map[string]bool
	// verbatim keeps files as they are in the image (an image package's
	// files stay at their original paths: nothing to point elsewhere).
	verbatim bool
	// scanner, when set, looks for original paths in the closure's files
	// as they are extracted; refs holds what a scan found (see Prepare).
	scanner   *image.PathScanner
	refs      []image.PathRef
	refsKnown bool
	// early is the bootstrap fetched and deflated while the layers were
	// indexed (Package), if any.
	early *earlyBootstrap
}

type spooledFile struct {
	name string
	size int64
}

// extract reads the closure's regular files from the image (the second
// pass, in layer order), rewrites loaders and "#!" lines, and spools each to
// a file in dir.
func (p *packer) extract(ctx context.Context, dir string) error {
	p.spooled = make(map[string]spooledFile, len(p.files))
	want := make(map[string]int, len(p.files))
	for i, f := range p.files {
		want[f.Path] = i
	}
	var mu sync.Mutex
	err := image.Extract(ctx, p.img, p.idx, p.files, func(e *image.Entry, r io.Reader) error {
		i, ok := want[e.Path]
		if !ok {
			return fmt.Errorf("extracting: %q was not asked for", e.Path)
		}
		f := p.files[i]
		name := filepath.Join(dir, strconv.Itoa(i))
		out, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("spooling %q: %w", e.Path, err)
		}
		cw := &countWriter{w: out}
		err = p.scanned(f, r, func(r io.Reader) error { return p.rewrite(cw, r, f) })
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("spooling %q: %w", e.Path, cerr)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		p.spooled[e.Path] = spooledFile{name: name, size: cw.n}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("extracting the closure: %w", err)
	}
	var missing []string
	for _, f := range p.files {
		if _, ok := p.spooled[f.Path]; !ok {
			missing = append(missing, f.Path)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("extracting the closure: no content for %q", missing)
	}
	return nil
}

// scanned calls fn with r, and when the package scans for original paths
// (p.scanner), tees r's bytes through the scanner on the way.
func (p *packer) scanned(f *image.Entry, r io.Reader, fn func(io.Reader) error) error {
	if p.scanner == nil {
		return fn(r)
	}
	w := p.scanner.Writer(f)
	err := fn(io.TeeReader(r, w))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewrite copies f's content from r to w, pointing its PT_INTERP or "#!"
// interpreter into the bundle.
func (p *packer) rewrite(w io.Writer, r io.Reader, f *image.Entry) error {
	if p.verbatim {
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("extracting %q: %w", f.Path, err)
		}
		return nil
	}
	if p.shell[f.Path] && p.manifest.LinkDir != "" {
		// A shell script's absolute commands and sourced files point
		// into the bundle too (image.RelocateShell).
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("extracting %q: %w", f.Path, err)
		}
		r = bytes.NewReader(image.RelocateShell(b, p.manifest.LinkDir+"/"+xruntime.RootDir, func(ip string) bool { return p.bundled[ip] }))
	}
	switch {
	case f.ELF != nil && f.ELF.InterpSize > 0:
		return patchInterp(w, r, f.Path, f.ELF, p.manifest.LinkDir+"/"+p.loaders[f.ELF.Interp])
	case f.Script != nil && path.IsAbs(f.Script.Interpreter):
		_, err := rewriteShebang(w, r, f.Path, p.manifest.LinkDir+"/"+xruntime.RootDir+path.Clean(f.Script.Interpreter))
		return err
	case f.Script != nil:
		p.warn("script %q names a relative interpreter %q: left as is", f.Path, f.Script.Interpreter)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("extracting %q: %w", f.Path, err)
	}
	return nil
}

// write writes the zip.
func (p *packer) write(ctx context.Context, w io.Writer) (*PackageResult, error) {
	mj, err := json.MarshalIndent(p.manifest, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	mj = append(mj, '\n')
	boot := zipEntry{Name: "bootstrap", Mode: 0o755, Size: int64(len(p.bootstrap)), Open: bytesOpener(p.bootstrap)}
	if e := p.early; e != nil && e.goarch == p.goarch { // p.bootstrap is e.program (getBootstrap)
		boot.Deflated = e.deflated
	}
	entries := append([]zipEntry(nil), p.entries...)
	entries = append(entries, boot,
		zipEntry{Name: xruntime.ManifestPath, Mode: 0o644, Size: int64(len(mj)), Open: bytesOpener(mj)},
	)
	var sizes []FileSize
	var total int64
	for _, e := range entries {
		total += e.Size + int64(len(e.Target))
	}
	for _, f := range p.files {
		s := p.spooled[f.Path]
		name := s.name
		entries = append(entries, zipEntry{
			Name: xruntime.RootDir + f.Path,
			Mode: fileMode(f.Mode),
			Size: s.size,
			Open: func() (io.ReadCloser, error) { return os.Open(name) },
		})
		sizes = append(sizes, FileSize{Path: f.Path, Size: s.size})
		total += s.size
	}
	if err := checkUnzipped(total, p.o.maxUnzipped, sizes); err != nil {
		return nil, p.sizeRule(err)
	}

	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, sum)}
	st, err := writeZip(ctx, cw, entries)
	if err != nil {
		return nil, err
	}
	res := &PackageResult{
		Files:        st.Files,
		UnzippedSize: st.Unzipped,
		ZippedSize:   cw.n,
		CodeSHA256:   base64.StdEncoding.EncodeToString(sum.Sum(nil)),
		SHA256:       hex.EncodeToString(sum.Sum(nil)),
		Manifest:     p.manifest,
		Closure:      p.closure,
		Arch:         p.arch,
		PathRefs:     p.refs,
	}
	if wz, ok := zippedWarning(cw.n, MaxDirectUploadSize); ok {
		p.warnKind(wz.Kind, "%s", wz.Message)
	}
	res.Warnings = p.warnings
	p.o.logger.Info("package written", "files", res.Files, "unzipped", res.UnzippedSize, "zipped", res.ZippedSize, "link_dir", p.manifest.LinkDir)
	return res, nil
}

// fileMode is the mode a regular file gets in the zip: its permission bits
// (setuid, setgid and sticky dropped, Lambda ignores them), made readable by
// all, and executable by all when executable by anyone: Lambda runs the
// function as a user that owns none of the files.
func fileMode(mode int64) fs.FileMode {
	perm := fs.FileMode(mode) & 0o777
	perm |= 0o444
	if perm&0o111 != 0 {
		perm |= 0o111
	}
	return perm
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
