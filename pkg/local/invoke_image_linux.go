//go:build linux

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/comingout/extract/internal/syncio"
)

// imageSandboxSupported says whether this process can run an image package:
// it needs root. The sandbox is a chroot into the flattened image inside a
// private mount namespace, where the image is bind-mounted read-only and
// /tmp, /proc and /dev are mounted; mounting needs CAP_SYS_ADMIN. Without
// root, that capability comes only with a new user namespace, which a Go
// program cannot enter from one thread (unshare(CLONE_NEWUSER) refuses
// multithreaded processes) and which os/exec cannot make mounts in
// between clone and exec.
func imageSandboxSupported() error {
	if os.Geteuid() != 0 {
		return ErrImageNeedsRoot
	}
	return nil
}

// startImage starts the image's entrypoint in the sandbox (see
// invokeImage), contained by startContained: PID 1 of its own PID
// namespace, with Pdeathsig, from the thread that holds the sandbox's
// mount namespace.
func (inv *invocation) startImage(sb *imageSandbox) error {
	if err := prepareMountPoints(sb); err != nil {
		return err
	}
	w := &syncio.Writer{W: inv.o.logWriter}
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{
			Path:   sb.path,
			Args:   sb.args,
			Env:    sb.env,
			Dir:    sb.dir,
			Stdout: w,
			Stderr: w,
			SysProcAttr: &syscall.SysProcAttr{
				Chroot:     sb.root,
				Credential: &syscall.Credential{Uid: uint32(sb.uid), Gid: uint32(sb.gid)},
			},
			WaitDelay: time.Second,
		}
	}
	// The mount namespace belongs to the thread startContained forks
	// from, and lives as long as the program.
	err := inv.startContained(newCmd, func() error { return enterImageNamespace(sb) }, false)
	if err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			return fmt.Errorf("starting the image's entrypoint %s: %w (it is built for another architecture: run on such a host, or install qemu-user-static for its binfmt handler)", sb.path, err)
		}
		return fmt.Errorf("starting the image's entrypoint %s: %w", sb.path, err)
	}
	return nil
}

// prepareMountPoints makes /tmp, /proc and /dev directories of the
// flattened image (what is there in the image is replaced: Lambda mounts
// over them), and the working directory.
func prepareMountPoints(sb *imageSandbox) error {
	r, err := os.OpenRoot(sb.root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, d := range []string{"tmp", "proc", "dev"} {
		fi, err := r.Lstat(d)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			if err := r.RemoveAll(d); err != nil {
				return fmt.Errorf("replacing the image's /%s: %w", d, err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if err := r.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("making /%s in the image: %w", d, err)
		}
	}
	if wd := strings.TrimPrefix(sb.dir, "/"); wd != "" {
		if err := r.MkdirAll(wd, 0o755); err != nil {
			return fmt.Errorf("making the WORKDIR %s: %w", sb.dir, err)
		}
	}
	return nil
}

// enterImageNamespace moves the calling (locked) thread into a new mount
// namespace and mounts the sandbox there: the image read-only, nosuid and
// nodev; the fresh tmp directory on its /tmp; a proc file system on /proc;
// a small read-only tmpfs on /dev with the usual character devices and the
// /proc/self/fd links. Nothing propagates to the host's mounts.
func enterImageNamespace(sb *imageSandbox) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("making a mount namespace: %w", err)
	}
	root := sb.root
	mounts := []struct {
		what, source, target, fstype string
		flags                        uintptr
		data                         string
	}{
		{"making mounts private", "", "/", "", unix.MS_REC | unix.MS_PRIVATE, ""},
		{"binding the image", root, root, "", unix.MS_BIND, ""},
		{"binding /tmp", sb.tmp, root + "/tmp", "", unix.MS_BIND, ""},
		{"remounting /tmp", "", root + "/tmp", "", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV, ""},
		{"mounting /dev", "tmpfs", root + "/dev", "tmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=755,size=64k"},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("%s: %w", m.what, err)
		}
	}
	// /proc is the host's PID namespace's (a proc file system shows the
	// namespace of the process mounting it, this thread's); hidepid hides
	// the processes of other users from the program, as on Lambda where it
	// sees only its own. Kernels before 5.8 know no "invisible" (and would
	// apply hidepid to the host's /proc too): there, /proc shows all.
	procFlags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	err := unix.Mount("proc", root+"/proc", "proc", procFlags, "hidepid=invisible")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("proc", root+"/proc", "proc", procFlags, "")
	}
	if err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	dev := root + "/dev"
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}} {
		p := filepath.Join(dev, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("making /dev/%s: %w", d.name, err)
		}
		if err := unix.Chmod(p, 0o666); err != nil {
			return fmt.Errorf("making /dev/%s: %w", d.name, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("making /dev/%s: %w", name, err)
		}
	}
	for _, m := range []struct {
		what, target string
		flags        uintptr
	}{
		{"remounting /dev read-only", dev, unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NOEXEC},
		{"remounting the image read-only", root, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := unix.Mount("", m.target, "", m.flags, ""); err != nil {
			return fmt.Errorf("%s: %w", m.what, err)
		}
	}
	return nil
}
