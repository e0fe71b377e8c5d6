package image

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// NotFoundError says a path asked for is not in the image. Nearby lists
// what its directory (or the closest existing ancestor, Dir) holds, closest
// names first.
type NotFoundError struct {
	Path   string
	Dir    string
	Nearby []string
	// Err is the resolution error (wrapping fs.ErrNotExist).
	Err error
}

// Error implements error.
func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s: not found in the image", e.Path)
	if len(e.Nearby) > 0 {
		msg += fmt.Sprintf("; %s has %s", e.Dir, strings.Join(e.Nearby, ", "))
	} else if e.Dir != "" {
		msg += fmt.Sprintf("; %s is empty", e.Dir)
	}
	return msg
}

// Unwrap returns fs.ErrNotExist's wrapper, for errors.Is.
func (e *NotFoundError) Unwrap() error { return e.Err }

// maxNearby is how many names a NotFoundError lists.
const maxNearby = 8

// outputFile is one file WriteDir or WriteTar writes: rel is the
// slash-separated path below the output, e the (resolved) image entry.
type outputFile struct {
	rel string
	e   *Entry
}

// planOutput resolves paths inside the image. Each path is written at its
// own image path as asked for (not at the symlink target's path): asking
// for /bin/python3 writes bin/python3 with the content of the file the
// link resolves to. A directory is copied with everything below it;
// symlinks inside it are written as the regular files they resolve to
// (inside the image) and skipped when they resolve to anything else.
// Every error is reported (errors.Join).
func planOutput(idx *Index, paths []string) (dirs []string, files []outputFile, err error) {
	seen := map[string]bool{}
	dirSeen := map[string]bool{}
	addDir := func(rel string) {
		for d := rel; d != "." && d != "" && !dirSeen[d]; d = path.Dir(d) {
			dirSeen[d] = true
			dirs = append(dirs, d)
		}
	}
	var errs []error
	var walk func(rel, imgPath string, depth int)
	walk = func(rel, imgPath string, depth int) {
		addDir(rel)
		for _, k := range idx.ReadDir(imgPath) {
			name := path.Base(k.Path)
			childRel := path.Join(rel, name)
			switch k.Kind {
			case Dir:
				if depth < maxPath/2 {
					walk(childRel, k.Path, depth+1)
				}
			case Regular:
				if !seen[childRel] {
					seen[childRel] = true
					files = append(files, outputFile{childRel, k})
				}
			case Symlink:
				_, t, err := idx.Resolve(k.Path)
				if err == nil && t.Kind == Regular && !seen[childRel] {
					seen[childRel] = true
					files = append(files, outputFile{childRel, t})
				}
			}
		}
	}
	for _, p := range paths {
		clean := path.Clean("/" + p)
		rel := strings.TrimPrefix(clean, "/")
		if rel == "" {
			errs = append(errs, fmt.Errorf("%q: refusing to copy the whole image; name files or directories", p))
			continue
		}
		_, e, err := idx.Resolve(clean)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, notFound(idx, clean, err))
			} else {
				errs = append(errs, err)
			}
			continue
		}
		switch e.Kind {
		case Regular:
			if !seen[rel] {
				seen[rel] = true
				files = append(files, outputFile{rel, e})
			}
			addDir(path.Dir(rel))
		case Dir:
			walk(rel, e.Path, 0)
		default:
			errs = append(errs, fmt.Errorf("%s: not a regular file or directory", clean))
		}
	}
	sort.Strings(dirs)
	return dirs, files, errors.Join(errs...)
}

// notFound builds a NotFoundError listing the names nearest to p's base in
// its closest existing directory.
func notFound(idx *Index, p string, err error) error {
	nf := &NotFoundError{Path: p, Err: err}
	base := path.Base(p)
	dir := path.Dir(p)
	for {
		if _, e, rerr := idx.Resolve(dir); rerr == nil && e.Kind == Dir {
			break
		}
		if dir == "/" {
			break
		}
		base = path.Base(dir)
		dir = path.Dir(dir)
	}
	nf.Dir = dir
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, e := range idx.ReadDir(dir) {
		n := path.Base(e.Path)
		cs = append(cs, cand{n, nameDistance(base, n)})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	for i := 0; i < len(cs) && i < maxNearby; i++ {
		nf.Nearby = append(nf.Nearby, cs[i].name)
	}
	return nf
}

// groupByEntry lists the distinct entries of files and, for each, the
// output paths it goes to.
func groupByEntry(files []outputFile) ([]*Entry, map[*Entry][]string) {
	var es []*Entry
	rels := map[*Entry][]string{}
	for _, f := range files {
		if _, ok := rels[f.e]; !ok {
			es = append(es, f.e)
		}
		rels[f.e] = append(rels[f.e], f.rel)
	}
	return es, rels
}

// fileMode is the mode files are written with: the image's permission
// bits without setuid, setgid and sticky, always readable by the owner.
// WriteDir creates files with it, so the process umask applies too.
func fileMode(e *Entry) os.FileMode {
	return os.FileMode(e.Mode&0o777) | 0o400
}

// WriteDir copies paths out of the image into dir (created if missing).
// Each path is resolved inside the image (symlinks followed) and written
// under dir at the image path as given (see planOutput): "/usr/bin/app"
// lands at dir/usr/bin/app as a regular file; directories are copied
// recursively. Symlinks are never created on the host. Files get the
// image's permission bits without setuid, setgid and sticky, always
// readable by the owner, less the process umask, as "tar x" without -p
// gives them (a 0777 file is 0755 under umask 022). Each file is
// written to a temporary name in its target directory and renamed into
// place, so no partial file is left behind. Nothing is written outside dir:
// all access goes through an os.Root at dir, and an existing symlink (or
// non-directory) in the way below dir is an error. Missing paths are
// reported together, each as a *NotFoundError, before anything is written.
func WriteDir(ctx context.Context, img *Image, idx *Index, paths []string, dir string) error {
	dirs, files, err := planOutput(idx, paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range dirs {
		if err := mkdirNoSymlink(root, d); err != nil {
			return err
		}
	}
	log := logger(img)
	es, rels := groupByEntry(files)
	return Extract(ctx, img, idx, es, func(e *Entry, r io.Reader) error {
		targets := rels[e]
		if err := writeAtomic(root, targets[0], r, e.Size, fileMode(e)); err != nil {
			return fmt.Errorf("writing %s: %w", targets[0], err)
		}
		log.Debug("wrote file", "path", targets[0], "from", e.Path, "bytes", e.Size)
		for _, t := range targets[1:] {
			src, err := root.Open(targets[0])
			if err != nil {
				return err
			}
			err = writeAtomic(root, t, src, e.Size, fileMode(e))
			src.Close()
			if err != nil {
				return fmt.Errorf("writing %s: %w", t, err)
			}
			log.Debug("wrote file", "path", t, "from", e.Path, "bytes", e.Size)
		}
		return nil
	})
}

// mkdirNoSymlink makes the directory rel below root; an existing symlink or
// non-directory at rel is an error. Parents are made first by the caller
// (dirs are sorted).
func mkdirNoSymlink(root *os.Root, rel string) error {
	fi, err := root.Lstat(rel)
	switch {
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("refusing to write through symlink %s in %s", rel, root.Name())
	case err == nil && !fi.IsDir():
		return fmt.Errorf("%s in %s exists and is not a directory", rel, root.Name())
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return root.Mkdir(rel, 0o755)
	default:
		return err
	}
}

// writeAtomic writes size bytes of r to rel below root through a temporary
// file in the same directory. The file is created with mode, so the kernel
// applies the umask (or the directory's default ACL) as it does for "tar x"
// without -p; a chmod would bypass it, and reading the umask with
// umask(2) would change it for the whole process for a moment.
func writeAtomic(root *os.Root, rel string, r io.Reader, size int64, mode os.FileMode) error {
	if fi, err := root.Lstat(rel); err == nil && fi.IsDir() {
		return fmt.Errorf("%s exists and is a directory", rel)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(rel), ".extract-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

// WriteTar writes paths out of the image as a tar stream to w, laid out as
// WriteDir lays out files (paths relative, directories first, then files
// in layer order). An image file asked for under several names is stored
// once, the other names as hardlinks. Times are zero (the epoch), owners
// are root, modes are the image's permission bits without
// setuid/setgid/sticky, so the stream is reproducible.
func WriteTar(ctx context.Context, img *Image, idx *Index, paths []string, w io.Writer) error {
	dirs, files, err := planOutput(idx, paths)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	es, rels := groupByEntry(files)
	err = Extract(ctx, img, idx, es, func(e *Entry, r io.Reader) error {
		targets := rels[e]
		h := &tar.Header{Typeflag: tar.TypeReg, Name: targets[0], Size: e.Size, Mode: int64(fileMode(e)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err != nil {
			return fmt.Errorf("writing %s: %w", targets[0], err)
		}
		if n != e.Size {
			return fmt.Errorf("writing %s: got %d bytes, want %d", targets[0], n, e.Size)
		}
		for _, t := range targets[1:] {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: t, Linkname: targets[0], Mode: h.Mode, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
