package runtime

import (
	"os"
	"syscall"
)

// pipeSize is the capacity asked for the program's stdin and stdout pipes:
// larger than Linux's 64 KiB default, fewer context switches per megabyte.
// 1 MiB is the default limit for unprivileged processes
// (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

const fSetPipeSize = 1031 // F_SETPIPE_SZ

// growPipe enlarges the pipe f belongs to; failing is harmless.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, pipeSize)
	})
}
