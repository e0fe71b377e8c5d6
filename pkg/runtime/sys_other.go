//go:build !unix

package runtime

import (
	"io/fs"
	"syscall"
)

// Stand-ins for sys_unix.go, so that the package builds where the
// bootstrap never runs (the CLI uses its manifest and result types).

const oNoFollow = 0

func fileIno(fs.FileInfo) uint64 { return 0 }

func fsSpace(string) (free, size int64, ok bool) { return 0, 0, false }

func groupLeader() *syscall.SysProcAttr { return nil }

func killGroup(int) {}
