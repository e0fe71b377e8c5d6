//go:build linux && (amd64 || arm64)

package image

// The trace sandbox's helper. The program must start with a private root,
// no capabilities, no_new_privs and the seccomp filter (seccomp_linux.go),
// which all need code between the sandbox's clone and the program's exec:
// more than syscall.SysProcAttr offers. So the tracer starts its own
// executable again (/proc/self/exe: the extract binary, or a test binary
// of this package or of one importing it) with argv[0] sandboxHelperArg0 and
// the environment variable sandboxHelperEnv, in the sandbox's new
// namespaces, still as the caller's host user (so that it can reach the
// sandbox root through the caller's private directories), with
// CAP_SYS_ADMIN, CAP_SETPCAP, CAP_SETUID and CAP_SETGID as ambient
// capabilities of its new user namespace (none on the host). The init
// function below recognizes it before any other code of the program runs,
// and, on its main thread:
//
//  0. marks every inherited descriptor but 0-2 close-on-exec;
//  1. bind-mounts the sandbox root on itself, pivot_roots into it and
//     detaches the old root (umount2 MNT_DETACH): nothing of the host's file
//     system stays reachable, so chroot tricks find nothing to climb to;
//  2. empties the capability bounding set;
//  3. becomes the image's user and group (and no supplementary groups,
//     where setgroups is allowed) and changes to the WORKDIR;
//  4. drops its remaining capabilities (ambient, inheritable, permitted,
//     effective), so even the image's root has none after the exec;
//  5. asks to be traced (PTRACE_TRACEME), sets no_new_privs and installs the
//     seccomp filter;
//  6. execs the program, which stops at its exec for the tracer.
//
// The helper reads its arguments (sandboxSpec, JSON) from argv[1] and
// reports a failure on descriptor 3 (close-on-exec) before it exits; the
// tracer reads it when the helper exits instead of stopping at the exec.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// sandboxHelperArg0 is the helper's argv[0].
	sandboxHelperArg0 = "extract-trace-sandbox"
	// sandboxHelperEnv marks the helper's environment (its only variable;
	// the program's own comes in the spec).
	sandboxHelperEnv = "_EXTRACT_TRACE_SANDBOX"
	// sandboxHelperErrFD is the descriptor the helper writes its error to.
	sandboxHelperErrFD = 3
)

// sandboxSpec is what the helper needs to start the program.
type sandboxSpec struct {
	// Root is the sandbox root on the host.
	Root string `json:"root"`
	// Dir is the program's working directory in the sandbox.
	Dir string `json:"dir"`
	// UID and GID are the program's IDs in the sandbox's user namespace;
	// SetGroups clears the supplementary groups (not allowed in an
	// unprivileged user namespace).
	UID       int  `json:"uid"`
	GID       int  `json:"gid"`
	SetGroups bool `json:"setgroups"`
	// Path, Args and Env are the program's execve arguments.
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

func init() {
	if len(os.Args) == 2 && os.Args[0] == sandboxHelperArg0 && os.Getenv(sandboxHelperEnv) == "1" {
		sandboxHelper(os.Args[1])
	}
}

// sandboxHelper runs in the helper process and never returns: it execs the
// program or exits with status 126 after writing why on sandboxHelperErrFD.
func sandboxHelper(arg string) {
	// The steps below are per thread: they must all run on the thread
	// that execs (init runs on the main thread, locked).
	runtime.LockOSThread()
	unix.CloseOnExec(sandboxHelperErrFD)
	var spec sandboxSpec
	err := json.Unmarshal([]byte(arg), &spec)
	if err == nil {
		err = sandboxExec(&spec)
	}
	unix.Write(sandboxHelperErrFD, []byte(err.Error()))
	os.Exit(126)
}

// sandboxExec sets up the sandbox in the helper and execs the program; it
// only returns on failure.
func sandboxExec(spec *sandboxSpec) error {
	if err := closeInherited(); err != nil {
		return err
	}
	if err := pivotInto(spec.Root); err != nil {
		return err
	}
	if err := dropBoundingSet(); err != nil {
		return err
	}
	if err := setIDs(spec); err != nil {
		return err
	}
	if err := unix.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("changing to the working directory %q: %w", spec.Dir, err)
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0); e != 0 {
		return fmt.Errorf("PTRACE_TRACEME: %w", e)
	}
	if err := installSandboxFilter(); err != nil {
		return err
	}
	err := syscall.Exec(spec.Path, spec.Args, spec.Env)
	return fmt.Errorf("exec %s: %w", spec.Path, err)
}

// closeInherited marks every descriptor above sandboxHelperErrFD
// close-on-exec: descriptors extract itself inherited without that flag
// (from a shell's redirections, a CI runner's pipes) must not reach the
// program. close_range(2) (Linux 5.11 for CLOSE_RANGE_CLOEXEC), else each
// descriptor listed in /proc/self/fd.
func closeInherited() error {
	if err := unix.CloseRange(sandboxHelperErrFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing the inherited descriptors: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("listing the inherited descriptors: %w", err)
	}
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > sandboxHelperErrFD {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// pivotInto makes root the root of the (new, private) mount namespace and
// detaches the old root, as runc does.
func pivotInto(root string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mounts private: %w", err)
	}
	// pivot_root needs a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting the sandbox root: %w", err)
	}
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the sandbox root: %w", err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return err
	}
	// pivot_root(".", "."): the old root is mounted on top of the new
	// one, and unmounted from there.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making the old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	return nil
}

// dropBoundingSet empties the calling thread's capability bounding set
// (needs CAP_SETPCAP): no exec can give a capability back.
func dropBoundingSet() error {
	for c := 0; c <= 63; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return nil // past the kernel's last capability
			}
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// setIDs makes the calling thread the image's user and group. Raw
// syscalls: only this thread execs, and syscall.Setuid would change every
// thread of the helper.
func setIDs(spec *sandboxSpec) error {
	// Keep the permitted capabilities across the change of user, for
	// dropCapabilities to clear them itself.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_KEEPCAPS: %w", err)
	}
	if spec.SetGroups {
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("clearing the supplementary groups: %w", e)
		}
	}
	gid, uid := uintptr(spec.GID), uintptr(spec.UID)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, gid, gid, gid); e != 0 {
		return fmt.Errorf("setting the group ID %d: %w", spec.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uid, uid, uid); e != 0 {
		return fmt.Errorf("setting the user ID %d: %w", spec.UID, e)
	}
	// A change of user clears the parent-death signal the tracer set.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_PDEATHSIG: %w", err)
	}
	return nil
}

// dropCapabilities empties the calling thread's ambient, inheritable,
// permitted and effective capabilities.
func dropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing the capabilities: %w", err)
	}
	return nil
}
