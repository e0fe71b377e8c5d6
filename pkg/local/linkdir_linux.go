//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockLinkDir waits until no other local invocation uses linkDir and
// claims it; unlock releases it. The link directory is one path per
// package — its programs' PT_INTERP names it — so a second invocation of
// the same package would repoint it, and remove it at its end, under the
// first one's running program. (On Lambda every sandbox has its own /tmp.)
// The lock is a flock on linkDir+".lock", released by the kernel if this
// process dies. Unlock removes the file before releasing it, so a waiter
// that then locks the removed file sees it is no longer at the path and
// tries again.
func lockLinkDir(ctx context.Context, linkDir string, log *slog.Logger) (unlock func(), err error) {
	name := linkDir + ".lock"
	for waited := false; ; {
		f, err := openLock(name)
		if err != nil {
			return nil, err
		}
		fd := int(f.Fd())
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			held, herr := f.Stat()
			cur, cerr := os.Lstat(name)
			if herr == nil && cerr == nil && os.SameFile(held, cur) {
				return func() {
					os.Remove(name)
					_ = syscall.Flock(fd, syscall.LOCK_UN)
					f.Close()
				}, nil
			}
			f.Close() // removed by its holder meanwhile: lock the new one
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking the link directory %s: %w", linkDir, err)
		}
		if !waited {
			log.Info("waiting for another local invocation of this package to end (they share its link directory)", "link", linkDir)
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openLock opens the link directory's lock file name, creating it. The
// name is predictable, in a directory every user may write (/tmp): another
// user could have made it first, to hold the lock forever or, as a
// symlink, to make this process create or open a file of its choice. So a
// symlink is refused (and never followed: O_NOFOLLOW), and so is anything
// but a regular file owned by this process's user, checked before opening
// (for a clear error) and on the opened file.
func openLock(name string) (*os.File, error) {
	if fi, err := os.Lstat(name); err == nil {
		if err := checkOurs(fi, name, "the link directory's lock", "a regular file"); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("locking the link directory: %q is a symlink: refusing to follow it (another user may have made it; remove it if it is not yours)", name)
		}
		return nil, fmt.Errorf("locking the link directory: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOurs(fi, name, "the link directory's lock", "a regular file")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOurs refuses a file (Lstat's or Stat's fi of the path name) that is
// not of the wanted kind ("a regular file" or "a symlink") or not owned by
// this process's user.
func checkOurs(fi fs.FileInfo, name, what, kind string) error {
	ok := fi.Mode().IsRegular()
	if kind == "a symlink" {
		ok = fi.Mode()&fs.ModeSymlink != 0
	}
	if !ok {
		return fmt.Errorf("%s %q exists and is not %s (%v): refusing to use it (another user may have made it; remove it if it is not yours)", what, name, kind, fi.Mode().Type())
	}
	if st, isStat := fi.Sys().(*syscall.Stat_t); isStat && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s %q belongs to uid %d, not to this user (uid %d): refusing to use it (another user may have made it; remove it if it is not yours)", what, name, st.Uid, os.Geteuid())
	}
	return nil
}

// pointLinkDir makes linkDir a symlink to dir, the unpacked package, before
// the bootstrap starts (which then finds it in place and leaves it). The
// caller holds the lock, so a symlink of this user's already there is the
// leftover of an invocation that was killed, and is replaced. Anything
// else is refused: the package's programs are started through this path
// (their PT_INTERP names it), so whoever owns it chooses what they run.
func pointLinkDir(linkDir, dir string) error {
	fi, err := os.Lstat(linkDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	default:
		if err := checkOurs(fi, linkDir, "the link directory", "a symlink"); err != nil {
			return err
		}
		if err := os.Remove(linkDir); err != nil {
			return fmt.Errorf("replacing the stale link directory %s: %w", linkDir, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(linkDir), 0o755); err != nil {
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	}
	// Symlink fails if anything appeared at the path meanwhile.
	if err := os.Symlink(dir, linkDir); err != nil {
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	}
	return nil
}
