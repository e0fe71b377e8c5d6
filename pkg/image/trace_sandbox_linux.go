//go:build linux && (amd64 || arm64)

package image

// Building the trace sandbox: the image's user and environment, the root
// tree the program runs in, and the namespaces and ID maps the sandbox
// helper (sandbox_linux.go) starts in.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// traceIDBase is the first host user and group ID the image's IDs are
// mapped to when extract runs as root: far above any real user's IDs and the
// usual subordinate ranges (/etc/subuid starts at 100000).
const traceIDBase = 1 << 30

// sandboxIDs says who the program runs as.
type sandboxIDs struct {
	// uid and gid inside the sandbox (the image's USER).
	uid, gid int
	// privileged: extract runs as root and maps the image's IDs to
	// traceIDBase + ID; otherwise the one image user is the caller.
	privileged bool
	home       string
}

// hostUID returns the host ID of the image's ID id.
func (s sandboxIDs) host(id int) int {
	if s.privileged {
		return traceIDBase + id
	}
	return os.Geteuid()
}

// sandboxUser reads the image's USER ("uid[:gid]" or "name[:group]") the way
// container runtimes do: names through the image's /etc/passwd and
// /etc/group, a name the image does not know as nobody (65534).
func sandboxUser(idx *Index, user string, privileged bool) sandboxIDs {
	ids := sandboxIDs{privileged: privileged, home: "/"}
	name, group, hasGroup := strings.Cut(user, ":")
	passwd, _ := idx.Content("/etc/passwd")
	fields := func(match func(f []string) bool) []string {
		for _, line := range strings.Split(string(passwd), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && match(f) {
				return f
			}
		}
		return nil
	}
	var pw []string
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		ids.uid = n
		pw = fields(func(f []string) bool { return f[2] == name })
	} else if name != "" {
		pw = fields(func(f []string) bool { return f[0] == name })
		ids.uid, ids.gid = 65534, 65534
		if pw != nil {
			ids.uid, _ = strconv.Atoi(pw[2])
		}
	}
	if pw != nil {
		ids.gid, _ = strconv.Atoi(pw[3])
		if pw[5] != "" {
			ids.home = pw[5]
		}
	} else if name == "" || name == "0" || name == "root" {
		ids.home = "/root"
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil && n >= 0 {
			ids.gid = n
		} else {
			ids.gid = 65534
			gr, _ := idx.Content("/etc/group")
			for _, line := range strings.Split(string(gr), "\n") {
				if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == group {
					ids.gid, _ = strconv.Atoi(f[2])
				}
			}
		}
	}
	return ids
}

// sandboxEnv is the program's environment: the image's ENV, with PATH and
// HOME added when it lacks them, as container runtimes do.
func sandboxEnv(idx *Index, cmd *Command, ids sandboxIDs) []string {
	env := append([]string(nil), cmd.Env...)
	if _, ok := envValue(env, "PATH"); !ok {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if _, ok := envValue(env, "HOME"); !ok {
		env = append(env, "HOME="+ids.home)
	}
	return env
}

// writeSandbox writes the flattened image to root (a new directory) through
// an os.Root: directories, symlinks as symlinks (never followed on the
// host), regular files with their permission bits (setuid and setgid
// dropped); devices and fifos are left out. Then /tmp, the WORKDIR and a few
// device nodes are added, and the tree is given to the image's root user.
func writeSandbox(ctx context.Context, img *Image, idx *Index, root string, cmd *Command, ids sandboxIDs, log *slog.Logger) error {
	if err := Flatten(ctx, img, idx, root); err != nil {
		return err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, d := range []string{"tmp", "dev"} {
		if err := r.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("making /%s: %w", d, err)
		}
	}
	if err := r.Chmod("tmp", 0o777|os.ModeSticky); err != nil {
		return err
	}
	wd := strings.TrimPrefix(path.Clean("/"+cmd.WorkingDir), "/")
	if wd != "" {
		if err := r.MkdirAll(wd, 0o755); err != nil {
			return fmt.Errorf("making the WORKDIR %s: %w", cmd.WorkingDir, err)
		}
	}
	if ids.privileged {
		makeDevices(r, log)
		// Everything belongs to the image's root, mapped to traceIDBase.
		err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, traceIDBase, traceIDBase)
		})
		if err != nil {
			return err
		}
		if wd != "" {
			if err := r.Chown(wd, ids.host(ids.uid), ids.host(ids.gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// makeDevices creates the character devices programs expect in /dev (root
// only; a device that cannot be made is logged and left out).
func makeDevices(r *os.Root, log *slog.Logger) {
	fi, err := r.Lstat("dev")
	if err != nil || !fi.IsDir() {
		return
	}
	d, err := r.OpenFile("dev", os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer d.Close()
	for _, dev := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}} {
		unix.Unlinkat(int(d.Fd()), dev.name, 0)
		if err := unix.Mknodat(int(d.Fd()), dev.name, unix.S_IFCHR|0o666, int(unix.Mkdev(dev.major, dev.minor))); err != nil {
			log.Debug("cannot make a device in the trace sandbox", "device", "/dev/"+dev.name, "error", err)
			continue
		}
		unix.Fchmodat(int(d.Fd()), dev.name, 0o666, 0)
	}
}

// copyInto copies r to the image path name below root.
func copyInto(root, name string, r io.Reader) error {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer rt.Close()
	f, err := rt.OpenFile(strings.TrimPrefix(name, "/"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeSandbox removes the sandbox directory, first making its
// directories writable (the image's read-only directories would refuse
// their entries' removal to an unprivileged caller). WalkDir does not follow
// symlinks, so only the sandbox is touched.
func removeSandbox(dir string) error {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// idMaps maps the image's IDs 0-65535 (and id, when beyond) to host IDs
// from traceIDBase.
func idMaps(id int) []syscall.SysProcIDMap {
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: traceIDBase, Size: 65536}}
	if id >= 65536 {
		m = append(m, syscall.SysProcIDMap{ContainerID: id, HostID: traceIDBase + 65536, Size: 1})
	}
	return m
}

// sandboxProcAttr starts the sandbox helper (sandbox_linux.go) in new user,
// mount, PID, network, IPC and UTS namespaces, as the caller, with the
// capabilities (in its user namespace) it needs to pivot_root, empty the
// bounding set and become the image's user; it drops them all before the
// exec. The image's IDs are mapped as ids says.
func sandboxProcAttr(ids sandboxIDs) *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{
		Setsid:    true,
		Pdeathsig: syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		GidMappingsEnableSetgroups: ids.privileged,
		AmbientCaps:                []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP, unix.CAP_SETUID, unix.CAP_SETGID},
	}
	if ids.privileged {
		sys.UidMappings = idMaps(ids.uid)
		sys.GidMappings = idMaps(ids.gid)
	} else {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: ids.uid, HostID: os.Geteuid(), Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: ids.gid, HostID: os.Getegid(), Size: 1}}
	}
	return sys
}
