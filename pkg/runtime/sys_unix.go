//go:build unix

package runtime

import (
	"io/fs"
	"syscall"
)

// The system calls the handler makes that only Unix has (the bootstrap
// runs on Linux; sys_other.go lets the package build elsewhere, for the
// manifest and result types the CLI uses).

// oNoFollow makes open fail on a symlink.
const oNoFollow = syscall.O_NOFOLLOW

// fileIno is fi's inode number.
func fileIno(fi fs.FileInfo) uint64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}

// fsSpace returns the free (to unprivileged users) and total bytes of the
// file system of dir; ok is false when they are unknown.
func fsSpace(dir string) (free, size int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bsize := int64(st.Bsize)
	return int64(st.Bavail) * bsize, int64(st.Blocks) * bsize, true
}

// groupLeader starts a program as the leader of a new process group.
func groupLeader() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group pgid.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
