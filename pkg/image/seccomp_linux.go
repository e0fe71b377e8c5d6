//go:build linux && (amd64 || arm64)

package image

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter of the trace sandbox. The tracer only sees the
// processes it traces, and a child made with clone(CLONE_UNTRACED) is not
// one of them; the filter is installed by the sandbox helper (see
// sandbox_linux.go) right before it execs the program, so it binds every
// process of the sandbox, traced or not, and none can remove it.
//
// It allows everything except:
//   - a syscall of another ABI than the host's (i386 through int 0x80 on
//     amd64, x32): the process is killed, since the numbers below would not
//     name the same calls;
//   - the calls that change roots or mounts, enter or make namespaces, trace
//     or write other processes, or reach kernel facilities a batch program
//     has no use for (keys, BPF, perf, modules, kexec, file handles,
//     userfaultfd): EPERM;
//   - clone with CLONE_UNTRACED or a CLONE_NEW* flag: EPERM;
//   - clone3, whose flags sit in memory a filter cannot read: ENOSYS, so
//     that libc falls back to clone, whose flags it can;
//   - io_uring: ENOSYS (programs fall back to plain syscalls), since the
//     tracer cannot see the opens it submits.

// sandboxBlocked are the syscalls the filter answers with EPERM.
var sandboxBlocked = []uint32{
	unix.SYS_CHROOT, unix.SYS_PIVOT_ROOT, unix.SYS_MOUNT, unix.SYS_UMOUNT2,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR, unix.SYS_OPEN_TREE_ATTR,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PROCESS_VM_READV, unix.SYS_KCMP,
	unix.SYS_PIDFD_GETFD,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_QUOTACTL, unix.SYS_ACCT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT,
	unix.SYS_SYSLOG, unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
}

// sandboxNoSys are the syscalls the filter answers with ENOSYS.
var sandboxNoSys = []uint32{
	unix.SYS_CLONE3,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}

// cloneForbidden are the clone flags the filter refuses: the ones that
// leave the tracer (CLONE_UNTRACED) or make namespaces. (CLONE_NEWTIME
// shares its bit with the exit signal in clone's flags and only works with
// clone3 and unshare, both refused.)
const cloneForbidden = unix.CLONE_UNTRACED | unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Offsets in struct seccomp_data.
const (
	seccompNR   = 0
	seccompArch = 4
	// The low 32 bits of args[0] (little-endian: amd64 and arm64).
	seccompArg0 = 16
)

// auditArch is the AUDIT_ARCH_* value of the host's syscall ABI.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("no seccomp filter for %s", runtime.GOARCH)
}

// sandboxFilter returns the BPF program of the filter for the host's ABI.
func sandboxFilter() ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	// Jumps are resolved at the end: a jump to a label is recorded with
	// the instruction's index.
	type jump struct {
		at     int
		target string
		onTrue bool
	}
	var prog []unix.SockFilter
	var jumps []jump
	jumpTo := func(code uint16, k uint32, target string, onTrue bool) {
		jumps = append(jumps, jump{at: len(prog), target: target, onTrue: onTrue})
		prog = append(prog, unix.SockFilter{Code: code, K: k})
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	prog = append(prog, stmt(ld, seccompArch))
	jumpTo(jeq, arch, "kill", false)
	prog = append(prog, stmt(ld, seccompNR))
	if arch == unix.AUDIT_ARCH_X86_64 {
		jumpTo(jset, x32SyscallBit, "kill", true)
	}
	for _, nr := range sandboxBlocked {
		jumpTo(jeq, nr, "eperm", true)
	}
	for _, nr := range sandboxNoSys {
		jumpTo(jeq, nr, "enosys", true)
	}
	jumpTo(jeq, unix.SYS_CLONE, "clone", true)
	prog = append(prog, stmt(ret, unix.SECCOMP_RET_ALLOW))
	labels := map[string]int{"clone": len(prog)}
	prog = append(prog, stmt(ld, seccompArg0))
	jumpTo(jset, cloneForbidden, "eperm", true)
	prog = append(prog, stmt(ret, unix.SECCOMP_RET_ALLOW))
	labels["eperm"] = len(prog)
	prog = append(prog, stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)))
	labels["enosys"] = len(prog)
	prog = append(prog, stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)))
	labels["kill"] = len(prog)
	prog = append(prog, stmt(ret, unix.SECCOMP_RET_KILL_PROCESS))
	for _, j := range jumps {
		off := labels[j.target] - j.at - 1
		if off < 0 || off > 255 {
			return nil, fmt.Errorf("seccomp filter: jump of %d instructions", off)
		}
		if j.onTrue {
			prog[j.at].Jt = uint8(off)
		} else {
			prog[j.at].Jf = uint8(off)
		}
	}
	return prog, nil
}

// installSandboxFilter sets no_new_privs and installs the filter on the
// calling thread (which must exec next: the filter passes to the program
// and to all its descendants).
func installSandboxFilter() error {
	prog, err := sandboxFilter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("installing the seccomp filter: %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}
