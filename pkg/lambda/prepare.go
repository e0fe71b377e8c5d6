package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/comingout/extract/pkg/image"
)

// Package formats.
const (
	// FormatZip is the Lambda zip Package writes.
	FormatZip = image.FormatZip
	// FormatImage is the Lambda container image PackageImage builds.
	FormatImage = image.FormatImage
	// FormatAuto picks one of them per image (see Prepared.Format).
	FormatAuto = "auto"
)

// Prepared is an image's program and closure, resolved once, with the
// format FormatAuto picks for it; Zip or Image then packages it
// without indexing the image again. Use one of them, once.
type Prepared struct {
	p    *packer
	used bool

	// Closure is the program's closure.
	Closure *image.ClosureResult
	// PathRefs are the image paths closure files name that a zip would
	// move or leave out (image.PathScanner).
	PathRefs []image.PathRef
	// Format is the format auto picks (FormatZip or FormatImage) and
	// Reason says why (image.AutoFormat).
	Format, Reason string
}

// Prepare resolves img's program and closure (see Package for opts) and
// scans the closure's files for the original paths they name: one pass
// over the layers to index them, and one over the layers that hold the
// files to scan.
func Prepare(ctx context.Context, img *image.Image, opts ...PackageOption) (*Prepared, error) {
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	p, err := resolve(ctx, img, o)
	if err != nil {
		return nil, err
	}
	refs, err := p.originalPaths(ctx)
	if err != nil {
		return nil, err
	}
	p.refs, p.refsKnown = refs, true
	pp := &Prepared{p: p, Closure: p.closure, PathRefs: refs}
	pp.Format, pp.Reason = image.AutoFormat(p.closure, refs)
	o.logger.Info("format chosen", "format", pp.Format, "reason", pp.Reason)
	return pp, nil
}

// OriginalPaths returns the image paths the program cmd of img needs at
// their original paths (image.PathRef): those the closure's files name,
// and those its command line and environment name as a zip of it would
// carry them (see Package for opts). It is what Prepare chooses the format
// by, for a caller that resolved the closure itself (inspect).
func OriginalPaths(ctx context.Context, img *image.Image, idx *image.Index, cmd *image.Command, closure *image.ClosureResult, opts ...PackageOption) ([]image.PathRef, error) {
	o, err := makePackageOptions(opts...)
	if err != nil {
		return nil, err
	}
	p := &packer{o: o, img: img, idx: idx, cmd: cmd, closure: closure}
	return p.originalPaths(ctx)
}

// originalPaths scans the closure's files, then the command line and
// environment as the zip would write them.
func (p *packer) originalPaths(ctx context.Context) ([]image.PathRef, error) {
	prog, err := p.program()
	if err != nil {
		return nil, err
	}
	s := image.NewPathScanner(p.idx, p.closure)
	if err := s.ScanClosure(ctx, p.img); err != nil {
		return nil, err
	}
	commandRefs(s, p.zipManifest(prog))
	return s.Refs(), nil
}

// Zip writes the prepared program's zip to w, as Package does; its
// warnings name the paths the zip moves when there are any.
func (pp *Prepared) Zip(ctx context.Context, w io.Writer) (*PackageResult, error) {
	if err := pp.use(); err != nil {
		return nil, err
	}
	return pp.p.writeZip(ctx, w)
}

// ZipFile is Zip writing to the file at path, replaced only once complete.
func (pp *Prepared) ZipFile(ctx context.Context, path string) (*PackageResult, error) {
	return writeFileAtomically(path, func(w io.Writer) (*PackageResult, error) { return pp.Zip(ctx, w) })
}

// Image builds the prepared program's container image, as PackageImage
// does (WithSlim among the options given to Prepare).
func (pp *Prepared) Image(ctx context.Context) (*ImageResult, error) {
	if err := pp.use(); err != nil {
		return nil, err
	}
	return pp.p.packageImage(ctx)
}

func (pp *Prepared) use() error {
	if pp == nil || pp.p == nil {
		return errors.New("packaging: nothing prepared")
	}
	if pp.used {
		return errors.New("packaging: a prepared image packages once")
	}
	pp.used = true
	return nil
}

// writeFileAtomically has write write to a temporary file in path's
// directory, renamed to path only once complete, so path never holds a
// partial package.
func writeFileAtomically(path string, write func(io.Writer) (*PackageResult, error)) (*PackageResult, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, err := write(tmp)
	if err != nil {
		return nil, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("writing %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("writing %q: %w", path, err)
	}
	done = true
	return res, nil
}
