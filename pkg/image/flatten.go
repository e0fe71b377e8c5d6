package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// Flatten writes the image's final filesystem, as idx describes it, below
// dir: a root filesystem a program can run in (chrooted), the way a
// container runtime unpacks an image.
//
//   - Every directory, with its permission bits and sticky bit (setuid and
//     setgid dropped); directory modes are applied last, so read-only
//     directories still receive their entries.
//   - Every regular file with its permission bits (setuid, setgid and
//     sticky dropped). Paths sharing one tar entry's bytes (hardlinks) are
//     hardlinked when their modes agree, else copied.
//   - Symlinks as symlinks, their targets verbatim: they are meant to be
//     resolved inside a chroot at dir, and are never followed here.
//   - Devices and fifos are left out.
//
// Whiteouts, opaque directories and hardlinks are already applied by
// BuildIndex. Everything is written through an os.Root at dir, so no name
// or symlink can make Flatten write outside dir. Files belong to the
// caller (root when run as root).
//
// dir must not exist or be an empty directory. On error, dir holds part of
// the image; the caller removes it.
func Flatten(ctx context.Context, img *Image, idx *Index, dir string) error {
	if img == nil || img.img == nil || idx == nil {
		return errors.New("flatten: image not opened with Open or no index")
	}
	if err := makeEmptyDir(dir); err != nil {
		return fmt.Errorf("flatten: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("flatten: %w", err)
	}
	defer root.Close()
	log := logger(img)

	dirs, files, err := flattenTree(ctx, idx, root, log)
	if err != nil {
		return fmt.Errorf("flatten: %w", err)
	}
	if err := flattenFiles(ctx, img, idx, root, files); err != nil {
		return fmt.Errorf("flatten: %w", err)
	}
	if err := setDirModes(root, idx, dirs); err != nil {
		return fmt.Errorf("flatten: %w", err)
	}
	log.Debug("flattened image", "dir", dir, "dirs", len(dirs), "files", len(files))
	return nil
}

// makeEmptyDir makes dir, or checks that it is an empty directory.
func makeEmptyDir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// flattenTree makes the directories (mode 0700 for now) and symlinks of idx
// below root and returns the directories and the regular files, in Walk
// order.
func flattenTree(ctx context.Context, idx *Index, root *os.Root, log *slog.Logger) (dirs, files []*Entry, err error) {
	n := 0
	err = idx.Walk(func(e *Entry) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel := strings.TrimPrefix(e.Path, "/")
		switch e.Kind {
		case Dir:
			// Walk is sorted, so a directory's parents (always
			// directories in the index) exist already.
			dirs = append(dirs, e)
			return root.Mkdir(rel, 0o700)
		case Symlink:
			return root.Symlink(e.Target, rel)
		case Regular:
			files = append(files, e)
		default:
			log.Debug("flatten: leaving out a device or fifo", "path", e.Path)
		}
		return nil
	})
	return dirs, files, err
}

// flattenFiles writes the regular files below root: the first path of a
// tar entry's bytes is written, the others are hardlinked to it when their
// modes agree.
func flattenFiles(ctx context.Context, img *Image, idx *Index, root *os.Root, files []*Entry) error {
	type written struct {
		rel  string
		mode os.FileMode
	}
	first := map[Source]written{}
	return Extract(ctx, img, idx, files, func(e *Entry, r io.Reader) error {
		rel := strings.TrimPrefix(e.Path, "/")
		mode := os.FileMode(e.Mode & 0o777)
		if w, ok := first[e.Source]; ok && w.mode == mode {
			if err := root.Link(w.rel, rel); err != nil {
				return fmt.Errorf("linking %s to %s: %w", e.Path, "/"+w.rel, err)
			}
			return nil
		}
		if err := writeFlat(root, rel, r, e.Size, mode); err != nil {
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
		if _, ok := first[e.Source]; !ok {
			first[e.Source] = written{rel, mode}
		}
		return nil
	})
}

// setDirModes gives the directories, then the root, their modes: last and
// deepest first, as a read-only directory would have refused its entries.
func setDirModes(root *os.Root, idx *Index, dirs []*Entry) error {
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(strings.TrimPrefix(dirs[i].Path, "/"), dirMode(dirs[i].Mode)); err != nil {
			return err
		}
	}
	if e, ok := idx.Lookup("/"); ok {
		if err := root.Chmod(".", dirMode(e.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// dirMode is a directory's permission bits and sticky bit from a tar mode.
func dirMode(m int64) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// writeFlat writes exactly size bytes of r to the new file rel below root.
func writeFlat(root *os.Root, rel string, r io.Reader, size int64, mode os.FileMode) error {
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(rel, mode)
	}
	return err
}
