package lambda

// The zip's plan: what Package decides before it reads a file's contents.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// plan works out everything but the files' contents: the architecture,
// the manifest and LinkDir, the loader aliases, the symlinks. It fails
// before the layers are read again when the files alone are too big.
func (p *packer) plan(ctx context.Context) error {
	prog, err := p.program()
	if err != nil {
		return err
	}
	inClosure, sizes, err := p.planEntries()
	if err != nil {
		return err
	}
	if f, ok := inClosure[prog]; !ok || f.Kind != image.Regular {
		return fmt.Errorf("program %q is not in the closure", prog)
	}
	m := p.zipManifest(prog)
	if err := checkOutput(m); err != nil {
		return err
	}
	p.warnInput(m)
	if m.LinkDir == "" {
		for _, e := range p.closure.Env {
			p.warn("left out %s: a static program has no link directory to point it into the bundle", e.Name)
		}
	}
	p.manifest = m
	if err := p.planLoaders(inClosure); err != nil {
		return err
	}
	if err := p.getBootstrap(ctx); err != nil {
		return err
	}
	var total int64
	for _, s := range sizes {
		total += s.Size
	}
	return p.sizeRule(checkUnzipped(total+int64(len(p.bootstrap)), p.o.maxUnzipped, sizes))
}

// planEntries sorts the closure's files into the regular files to extract
// (p.files) and the zip's symlink and directory entries (p.entries). It
// returns the closure's files by path and the size each adds to the zip.
func (p *packer) planEntries() (map[string]*image.File, []FileSize, error) {
	p.shell = map[string]bool{}
	for _, s := range p.closure.ShellScripts {
		p.shell[s] = true
	}
	p.bundled = make(map[string]bool, len(p.closure.Files))
	for _, f := range p.closure.Files {
		p.bundled[f.Path] = true
	}
	inClosure := make(map[string]*image.File, len(p.closure.Files))
	var sizes []FileSize
	for i := range p.closure.Files {
		f := &p.closure.Files[i]
		inClosure[f.Path] = f
		name := xruntime.RootDir + f.Path
		switch f.Kind {
		case image.Regular:
			p.files = append(p.files, &f.Entry)
			sizes = append(sizes, FileSize{Path: f.Path, Size: f.Size})
			if f.ELF != nil && f.ELF.Interp != "" && f.ELF.InterpSize <= 0 {
				return nil, nil, fmt.Errorf("%q names the loader %q but its PT_INTERP segment was not located: cannot point it into the bundle", f.Path, f.ELF.Interp)
			}
		case image.Symlink:
			target := bundleTarget(f.Path, f.Target)
			p.entries = append(p.entries, zipEntry{Name: name, Mode: fs.ModeSymlink | 0o777, Target: target})
			sizes = append(sizes, FileSize{Path: f.Path, Size: int64(len(target))})
		case image.Dir:
			p.entries = append(p.entries, zipEntry{Name: name, Mode: fs.ModeDir | 0o755})
		default:
			p.warn("left out %q: not a regular file, directory or symlink", f.Path)
		}
	}
	return inClosure, sizes, nil
}

// planLoaders gives each distinct loader (PT_INTERP) of the bundled files
// an alias, "ld.so", "ld1.so"… in sorted order (p.loaders), a symlink in
// the zip to the loader file itself. A loader the closure lacks is a
// *LoaderError naming the files that need it.
func (p *packer) planLoaders(inClosure map[string]*image.File) error {
	p.loaders = map[string]string{}
	var interps []string
	for _, f := range p.files {
		if f.ELF != nil && f.ELF.InterpSize > 0 {
			if _, ok := p.loaders[f.ELF.Interp]; !ok {
				p.loaders[f.ELF.Interp] = ""
				interps = append(interps, f.ELF.Interp)
			}
		}
	}
	sort.Strings(interps)
	var errs []error
	for i, interp := range interps {
		alias := "ld.so"
		if i > 0 {
			alias = "ld" + strconv.Itoa(i) + ".so"
		}
		p.loaders[interp] = alias
		if !path.IsAbs(interp) {
			return fmt.Errorf("loader %q is not an absolute path", interp)
		}
		// The alias points at the loader file itself, symlinks resolved
		// inside the image, so it does not depend on the links on the way.
		real, e, err := p.idx.Resolve(interp)
		if f, ok := inClosure[real]; err != nil || !ok || e.Kind != image.Regular || f.Kind != image.Regular {
			errs = append(errs, &LoaderError{Loader: interp, Users: p.loaderUsers(interp)})
			continue
		}
		p.entries = append(p.entries, zipEntry{Name: alias, Mode: fs.ModeSymlink | 0o777, Target: xruntime.RootDir + real})
	}
	return errors.Join(errs...)
}

// loaderUsers are the bundled files whose PT_INTERP is interp.
func (p *packer) loaderUsers(interp string) []string {
	var users []string
	for _, f := range p.files {
		if f.ELF != nil && f.ELF.Interp == interp {
			users = append(users, f.Path)
		}
	}
	return users
}

// program checks the architecture and resolves the program the image runs
// to its file in the image.
func (p *packer) program() (string, error) {
	var err error
	p.arch, p.goarch, err = lambdaArch(p.closure.Arch, p.img.Platform.Architecture)
	if err != nil {
		return "", err
	}
	prog, progEntry, err := p.idx.Resolve(p.cmd.Path)
	if err != nil {
		return "", fmt.Errorf("resolving program %q: %w", p.cmd.Path, err)
	}
	if progEntry.Kind != image.Regular {
		return "", fmt.Errorf("program %q is not a regular file", prog)
	}
	return prog, nil
}

// getBootstrap gets the bootstrap for the package's architecture.
func (p *packer) getBootstrap(ctx context.Context) error {
	var err error
	if e := p.early; e != nil && e.goarch == p.goarch {
		p.bootstrap = e.program
	} else {
		p.bootstrap, err = loadBootstrapFor(ctx, p.o, p.goarch)
	}
	if err != nil {
		return fmt.Errorf("getting the %s bootstrap: %w", p.goarch, err)
	}
	if len(p.bootstrap) == 0 {
		return fmt.Errorf("getting the %s bootstrap: empty program", p.goarch)
	}
	return nil
}

// sizeRule adds to a *SizeError which closure rule added the most
// (image.RuleSize); other errors pass unchanged.
func (p *packer) sizeRule(err error) error {
	var se *SizeError
	if !errors.As(err, &se) || len(p.closure.Rules) == 0 {
		return err
	}
	r := p.closure.Rules[0]
	se.Rule = &r
	return se
}

// lambdaArch maps an ELF machine (or, when the closure has no ELF file, the
// image platform's architecture) to Lambda's and Go's names for it.
func lambdaArch(machine, platformArch string) (arch, goarch string, err error) {
	a := machine
	if a == "" {
		a = platformArch
	}
	switch a {
	case "x86_64", "amd64":
		return "x86_64", "amd64", nil
	case "aarch64", "arm64":
		return "arm64", "arm64", nil
	}
	return "", "", fmt.Errorf("lambda runs x86_64 and arm64 programs, not %q", a)
}

// bundleTarget returns the target a symlink at the image path link gets in
// the bundle: relative targets that stay inside the image root are kept;
// absolute ones, and relative ones climbing above the root (which the
// kernel stops at the root inside the image), become relative to the link's
// directory.
func bundleTarget(link, target string) string {
	dir := path.Dir(link)
	if !path.IsAbs(target) {
		if !climbsAbove(dir, target) {
			return target
		}
		target = path.Join(dir, target)
	}
	return relPath(dir, path.Clean(target))
}

// climbsAbove reports whether the relative path rel, taken from the
// absolute directory dir, goes above the root.
func climbsAbove(dir, rel string) bool {
	depth := 0
	if dir != "/" {
		depth = strings.Count(dir, "/")
	}
	for _, part := range strings.Split(rel, "/") {
		switch part {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// relPath returns the relative path from the absolute clean directory from
// to the absolute clean path to.
func relPath(from, to string) string {
	split := func(p string) []string {
		if p == "/" {
			return nil
		}
		return strings.Split(p[1:], "/")
	}
	f, t := split(from), split(to)
	i := 0
	for i < len(f) && i < len(t) && f[i] == t[i] {
		i++
	}
	parts := make([]string, 0, len(f)-i+len(t)-i)
	for range f[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}
