package local

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxUnzip bounds what Invoke unpacks: Lambda's own limit is 250 MB.
const maxUnzip = 2 << 30

// unzip unpacks the zip at zipPath into the new directory dir, safely:
// entries with absolute paths, ".." components or a path through a
// symlink are refused, symlinks are restored as symlinks (their targets
// are not followed), permission bits are kept (setuid and setgid dropped)
// and at most 2 GiB are written.
func unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("opening %s: %w", zipPath, err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var total int64
	for _, f := range zr.File {
		name, err := safeEntryName(f.Name)
		if err != nil {
			return fmt.Errorf("unzipping %s: %w", zipPath, err)
		}
		if name == "" {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := checkNoSymlinkParent(dir, name); err != nil {
			return fmt.Errorf("unzipping %s: entry %q: %w", zipPath, f.Name, err)
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		case mode&fs.ModeSymlink != 0:
			target, err := readEntry(f, 4096)
			if err != nil {
				return fmt.Errorf("unzipping %s: symlink %q: %w", zipPath, f.Name, err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(string(target), dst); err != nil {
				return fmt.Errorf("unzipping %s: %w", zipPath, err)
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("unzipping %s: entry %q has unsupported type %v", zipPath, f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		n, err := writeEntry(f, dst, mode.Perm(), maxUnzip-total)
		total += n
		if err != nil {
			return fmt.Errorf("unzipping %s: entry %q: %w", zipPath, f.Name, err)
		}
	}
	return nil
}

// safeEntryName cleans a zip entry name and refuses one escaping the
// destination.
func safeEntryName(name string) (string, error) {
	if strings.Contains(name, `\`) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: backslash or NUL in the name", name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("entry %q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: \"..\" in the path", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// checkNoSymlinkParent refuses a path whose parent directories, inside
// dir, include a symlink: writing through it could leave dir.
func checkNoSymlinkParent(dir, name string) error {
	parts := strings.Split(name, "/")
	cur := dir
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("path goes through the symlink %q", strings.TrimPrefix(cur, dir+string(filepath.Separator)))
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err == nil && !fi.IsDir() {
		return errors.New("duplicate entry")
	}
	return nil
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return b, nil
}

func writeEntry(f *zip.File, dst string, perm fs.FileMode, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("the package unpacks to more than %d bytes", int64(maxUnzip))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, perm&0o777)
	}
	return n, err
}
