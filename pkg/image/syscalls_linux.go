//go:build linux && (amd64 || arm64)

package image

// Syscall decoding for the tracer: PTRACE_GET_SYSCALL_INFO, the syscall
// numbers of each ABI, the forbidden calls, and the path arguments read from
// the tracee's memory and resolved to image paths.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ops of struct ptrace_syscall_info.
const (
	syscallInfoEntry = 1
	syscallInfoExit  = 2
)

// syscallInfo is the decoded struct ptrace_syscall_info.
type syscallInfo struct {
	op   uint8
	arch uint32
	nr   uint64
	args [6]uint64
	rval int64
}

// getSyscallInfo reads the syscall stop of pid with PTRACE_GET_SYSCALL_INFO.
func getSyscallInfo(pid int) (syscallInfo, error) {
	var buf [128]byte
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GET_SYSCALL_INFO, uintptr(pid), uintptr(len(buf)), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
	if e != 0 {
		return syscallInfo{}, e
	}
	le := binary.LittleEndian // amd64 and arm64
	si := syscallInfo{op: buf[0], arch: le.Uint32(buf[4:])}
	switch si.op {
	case syscallInfoEntry:
		si.nr = le.Uint64(buf[24:])
		for i := range si.args {
			si.args[i] = le.Uint64(buf[32+8*i:])
		}
	case syscallInfoExit:
		si.rval = int64(le.Uint64(buf[24:]))
	}
	return si, nil
}

// syscallABI holds the numbers of the syscalls the tracer looks at, for one
// ABI (-1 when the ABI lacks the call).
type syscallABI struct {
	open, openat, openat2, execve, execveat int64
	// forbidden are the calls that could leave the sandbox: the tracer
	// kills the run at their entry.
	forbidden map[uint64]string
}

// Syscall numbers shared by every ABI (the new mount API and openat2 came
// after the tables were unified).
var newMountAPI = map[uint64]string{428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick", 442: "mount_setattr", 467: "open_tree_attr"}

func withMountAPI(m map[uint64]string) map[uint64]string {
	for k, v := range newMountAPI {
		m[k] = v
	}
	return m
}

var syscallABIs = map[uint32]*syscallABI{
	unix.AUDIT_ARCH_X86_64: {open: 2, openat: 257, openat2: 437, execve: 59, execveat: 322,
		forbidden: withMountAPI(map[uint64]string{161: "chroot", 155: "pivot_root", 165: "mount", 166: "umount2", 272: "unshare",
			308: "setns", 101: "ptrace", 304: "open_by_handle_at", 311: "process_vm_writev"})},
	unix.AUDIT_ARCH_I386: {open: 5, openat: 295, openat2: 437, execve: 11, execveat: 358,
		forbidden: withMountAPI(map[uint64]string{61: "chroot", 217: "pivot_root", 21: "mount", 22: "umount", 52: "umount2", 310: "unshare",
			346: "setns", 26: "ptrace", 342: "open_by_handle_at", 348: "process_vm_writev"})},
	unix.AUDIT_ARCH_AARCH64: {open: -1, openat: 56, openat2: 437, execve: 221, execveat: 281,
		forbidden: withMountAPI(map[uint64]string{51: "chroot", 41: "pivot_root", 40: "mount", 39: "umount2", 97: "unshare",
			268: "setns", 117: "ptrace", 265: "open_by_handle_at", 271: "process_vm_writev"})},
}

// x32SyscallBit marks the syscalls of the x32 ABI on x86_64.
const x32SyscallBit = 0x40000000

// atFDCWD is AT_FDCWD as the kernel reads the int argument.
const atFDCWD = -100

// syscallStop handles a syscall entry or exit stop of pid; false means the
// program called a forbidden syscall and must be killed.
func (t *tracer) syscallStop(pid int) bool {
	si, err := getSyscallInfo(pid)
	if errors.Is(err, unix.ESRCH) {
		return true // killed meanwhile
	}
	if err != nil {
		// Without it the forbidden calls cannot be told apart: fail
		// closed.
		t.violation = fmt.Errorf("trace: PTRACE_GET_SYSCALL_INFO: %w (the trace needs Linux 5.3 or later)", err)
		return false
	}
	switch si.op {
	case syscallInfoExit:
		if p, ok := t.pending[pid]; ok {
			delete(t.pending, pid)
			if si.rval >= 0 {
				t.record(pid, p)
			}
		}
		return true
	case syscallInfoEntry:
	default:
		return true
	}
	delete(t.pending, pid)
	abi := syscallABIs[si.arch]
	if abi == nil || (si.arch == unix.AUDIT_ARCH_X86_64 && si.nr&x32SyscallBit != 0) {
		// An ABI without a table here (x32): its forbidden calls cannot be
		// recognized, so it is refused.
		t.violation = fmt.Errorf("trace: syscall %#x of an ABI the tracer does not know (audit arch %#x); the run was killed", si.nr, si.arch)
		return false
	}
	if name, ok := abi.forbidden[si.nr]; ok {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		prog, _ := t.imagePath(exe)
		t.violation = fmt.Errorf("trace: %s called %s(2), which could leave the sandbox; the run was killed", prog, name)
		return false
	}
	dirfd := int32(atFDCWD)
	var pathArg, flags uint64
	isExec := false
	switch int64(si.nr) {
	case abi.open:
		pathArg, flags = si.args[0], si.args[1]
	case abi.openat:
		dirfd, pathArg, flags = int32(si.args[0]), si.args[1], si.args[2]
	case abi.openat2:
		dirfd, pathArg = int32(si.args[0]), si.args[1]
		var how [8]byte
		if readMem(pid, si.args[2], how[:]) == nil {
			flags = binary.LittleEndian.Uint64(how[:])
		}
	case abi.execve:
		pathArg, isExec = si.args[0], true
	case abi.execveat:
		dirfd, pathArg, flags, isExec = int32(si.args[0]), si.args[1], si.args[4], true
	default:
		return true
	}
	if !isExec && flags&unix.O_ACCMODE == unix.O_WRONLY {
		return true
	}
	name, err := readString(pid, pathArg)
	if err != nil {
		return true
	}
	if name == "" && !(isExec && flags&unix.AT_EMPTY_PATH != 0) {
		return true
	}
	if p, ok := t.resolveAt(pid, dirfd, name); ok {
		t.pending[pid] = p
	}
	return true
}

// exec records the executable pid runs after an exec.
func (t *tracer) exec(pid int) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return
	}
	if p, ok := t.imagePath(exe); ok {
		t.record(pid, p)
	}
}

func (t *tracer) record(pid int, p string) {
	if !t.seen[p] {
		t.seen[p] = true
		t.log.Debug("seen at run time", "path", p, "pid", pid)
	}
}

// resolveAt returns the image path the syscall of pid names with dirfd and
// name, without following symlinks ("" with AT_EMPTY_PATH: the file dirfd
// is open on).
func (t *tracer) resolveAt(pid int, dirfd int32, name string) (string, bool) {
	if strings.HasPrefix(name, "/") {
		return cleanKeepDotDot(name), true
	}
	proc := "/proc/" + strconv.Itoa(pid)
	var base string
	var err error
	if dirfd == atFDCWD {
		base, err = os.Readlink(proc + "/cwd")
	} else {
		base, err = os.Readlink(proc + "/fd/" + strconv.Itoa(int(dirfd)))
	}
	if err != nil {
		return "", false
	}
	dir, ok := t.imagePath(base)
	if !ok {
		return "", false
	}
	if name == "" {
		return dir, true
	}
	return cleanKeepDotDot(dir + "/" + name), true
}

// imagePath maps a path read in /proc/PID of a sandbox process to its image
// path: below a pivot_root, the path as read; otherwise the host path below
// the sandbox root.
func (t *tracer) imagePath(host string) (string, bool) {
	if t.pivoted {
		if !strings.HasPrefix(host, "/") {
			return "", false // pipe:[N], anon_inode:..., unreachable paths
		}
		return cleanKeepDotDot(host), true
	}
	if host == t.root {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(host, t.root+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// cleanKeepDotDot drops empty and "." components of an absolute path but
// keeps "..": after a symlink, ".." is relative to the link's target, so
// only a resolver that follows links may apply it.
func cleanKeepDotDot(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return "/" + strings.Join(parts, "/")
}

// readMem reads len(b) bytes at addr of pid's memory.
func readMem(pid int, addr uint64, b []byte) error {
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// readString reads the NUL-terminated string at addr of pid's memory (at
// most PATH_MAX bytes), a page at a time so that no read crosses into an
// unmapped page.
func readString(pid int, addr uint64) (string, error) {
	const pathMax = 4096
	page := uint64(os.Getpagesize())
	var out []byte
	for len(out) < pathMax {
		n := page - addr%page
		buf := make([]byte, n)
		if err := readMem(pid, addr, buf); err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf...)
		addr += n
	}
	return "", errors.New("path longer than PATH_MAX")
}
