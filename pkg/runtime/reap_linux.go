package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// prctl options (linux/prctl.h).
const (
	prSetChildSubreaper = 36
	prGetChildSubreaper = 37
)

// BecomeSubreaper makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER): what a program leaves behind when it exits —
// a daemon that called setsid, in a process group of its own — becomes
// a child of this process instead of init's, so the handler finds it and
// kills it after the run. The bootstrap calls it at start; without it, a
// leftover that holds the program's stdout no longer blocks the
// invocation (see Handler), but it lives on.
func BecomeSubreaper() error { return setSubreaper(true) }

func setSubreaper(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, v, 0); e != 0 {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", e)
	}
	return nil
}

// isSubreaper reports whether this process is a child subreaper.
func isSubreaper() bool {
	var v int32
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prGetChildSubreaper, uintptr(unsafe.Pointer(&v)), 0)
	return e == 0 && v != 0
}

// procStat holds the fields of /proc/PID/stat the reaper needs.
type procStat struct {
	ppid, pgrp int
	// start is the start time in clock ticks after boot.
	start uint64
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, pgrp 5, starttime 22.
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, pgrp: pgrp, start: start}, true
}

// programStart returns the start time of the process pid, 0 when unknown.
func programStart(pid int) uint64 {
	st, _ := readStat(pid)
	return st.start
}

// killLeftovers kills and reaps what the program started at start (clock
// ticks) left behind: the children of this process, a subreaper, that
// started since and are not the program itself. The bootstrap starts no
// other processes, so those are the program's descendants, reparented
// here when their parent exited. Each one's process group goes too (a
// daemon leads its own); their children, reparented in turn, are found
// by the next round. It returns how many processes it reaped.
func killLeftovers(program int, start uint64) int {
	if start == 0 || !isSubreaper() {
		return 0
	}
	self := os.Getpid()
	reaped := 0
	for round := 0; round < 100; round++ {
		var found []int
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, err := strconv.Atoi(filepath.Base(d))
			if err != nil || pid == program {
				continue
			}
			st, ok := readStat(pid)
			if !ok || st.ppid != self || st.start < start {
				continue
			}
			if st.pgrp == pid {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			found = append(found, pid)
		}
		if len(found) == 0 {
			return reaped
		}
		for _, pid := range found {
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err == nil {
				reaped++
			}
		}
	}
	return reaped
}
