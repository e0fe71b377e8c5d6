//go:build linux && (amd64 || arm64)

package image

// The ptrace engine of Trace: it starts the sandbox helper, waits for the
// program's exec, then follows every process and thread of the sandbox from
// stop to stop until none is left (see the comment at the top of
// trace_linux.go). Syscall stops are decoded in syscalls_linux.go.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptrace options: follow every process and thread, tell syscall stops from
// signal stops, report execs, and kill the tracees if the tracer dies.
const traceOptionsMask = unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK |
	unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_EXITKILL

// sandboxStart is how run starts the sandbox helper.
type sandboxStart struct {
	argv []string
	attr *syscall.ProcAttr
	// errR and errW are the helper's error pipe; run closes errW once
	// the helper runs.
	errR, errW *os.File
}

// pidfdOpen is unix.PidfdOpen; tests replace it to take the kill path of
// kernels without pidfds.
var pidfdOpen = unix.PidfdOpen

// kill kills the sandbox: its PID 1 (pid), and with it every process of
// its PID namespace. Through pidfd when there is one; otherwise (Linux
// before 5.3, or pidfd_open refused) with kill(2) on the process group and
// the process, unless run already reaped pid (its number could be reused).
func (t *tracer) kill(pid, pidfd int) {
	if pidfd >= 0 {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		return
	}
	if pid > 0 && !t.reaped.Load() {
		unix.Kill(-pid, unix.SIGKILL)
		unix.Kill(pid, unix.SIGKILL)
	}
}

// run starts the program and traces it until no tracee is left. It runs on
// the locked tracer thread.
func (t *tracer) run(argv0 string, helper *sandboxStart, startCh chan<- started, res *TraceResult) error {
	pid, pidfd, err := t.startHelper(argv0, helper)
	if err != nil {
		return err
	}
	startCh <- started{pid: pid, pidfd: pidfd}
	t.tracees[pid] = &tracee{attached: true}
	t.count = 1
	// The first exec happened before the tracing began: record the
	// program as named and as run (a script's interpreter).
	t.record(pid, argv0)
	t.exec(pid)
	kill := func() { t.kill(pid, pidfd) }
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		kill()
	}
	return t.traceLoop(pid, kill, res)
}

// startHelper starts the sandbox helper and waits until the program it
// execs stops at that exec, traced with traceOptionsMask. It returns the
// sandbox's PID 1 and a pidfd on it (-1 where pidfd_open fails).
func (t *tracer) startHelper(argv0 string, helper *sandboxStart) (pid, pidfd int, err error) {
	pid, err = syscall.ForkExec("/proc/self/exe", helper.argv, helper.attr)
	helper.errW.Close()
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			return 0, 0, fmt.Errorf("trace: starting %s in the sandbox: %w (the trace needs root, or unprivileged user namespaces)", argv0, err)
		}
		return 0, 0, fmt.Errorf("trace: starting %s in the sandbox: %w", argv0, err)
	}
	pidfd, err = pidfdOpen(pid, 0)
	if err != nil {
		t.log.Debug("pidfd_open failed: the sandbox will be killed by its process ID", "error", err)
		pidfd = -1
	}
	closePidfd := func() {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
	}
	ws, err := t.waitExec(pid)
	if err != nil {
		t.kill(pid, pidfd)
		closePidfd()
		return 0, 0, fmt.Errorf("trace: waiting for %s: %w", argv0, err)
	}
	if !ws.Stopped() {
		t.reaped.Store(true)
		closePidfd()
		// The helper exited: its error pipe says why.
		if msg, _ := io.ReadAll(helper.errR); len(msg) > 0 {
			return 0, 0, fmt.Errorf("trace: setting up the sandbox for %s: %s", argv0, msg)
		}
		return 0, 0, fmt.Errorf("trace: %s did not stop after exec (status %#x)", argv0, uint32(ws))
	}
	if err := unix.PtraceSetOptions(pid, traceOptionsMask); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		closePidfd()
		return 0, 0, fmt.Errorf("trace: PTRACE_SETOPTIONS: %w", err)
	}
	return pid, pidfd, nil
}

// waitExec waits until the helper pid stops at the SIGTRAP of the
// program's exec (PTRACE_TRACEME) or ends. Before that, a signal to its main
// thread (Go's preemption signals) stops it too: each is passed on.
func (t *tracer) waitExec(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ws, err
		}
		if !ws.Stopped() || ws.StopSignal() == unix.SIGTRAP {
			return ws, nil
		}
		if err := unix.PtraceCont(pid, int(ws.StopSignal())); err != nil && !errors.Is(err, unix.ESRCH) {
			t.log.Debug("PTRACE_CONT of the sandbox helper", "error", err)
		}
	}
}

// traceLoop waits for the stops of every tracee and resumes each, until no
// tracee is left. pid is the sandbox's PID 1, whose end goes to res; kill
// kills the sandbox.
func (t *tracer) traceLoop(pid int, kill func(), res *TraceResult) error {
	var ws unix.WaitStatus
	for {
		// __WNOTHREAD: only this thread's children and tracees, never a
		// child another goroutine started.
		wpid, err := unix.Wait4(-1, &ws, unix.WALL|unix.WNOTHREAD, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			return nil
		}
		if err != nil {
			kill()
			return fmt.Errorf("trace: wait4: %w", err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.ended(wpid, ws, pid, res)
		case ws.Stopped():
			t.stopped(wpid, ws, kill)
		}
	}
}

// ended forgets the tracee wpid, which exited or was killed; the end of
// the sandbox's PID 1 (pid) is the run's exit code or signal.
func (t *tracer) ended(wpid int, ws unix.WaitStatus, pid int, res *TraceResult) {
	delete(t.tracees, wpid)
	delete(t.pending, wpid)
	if wpid == pid {
		t.reaped.Store(true)
		if ws.Exited() {
			res.ExitCode = ws.ExitStatus()
		} else {
			res.ExitCode, res.Signal = -1, ws.Signal().String()
		}
	}
}

// stopped handles a stop of the tracee wpid (a syscall, a ptrace event, a
// signal) and resumes it to its next syscall stop, passing signals on. At
// a forbidden syscall it kills the sandbox instead.
func (t *tracer) stopped(wpid int, ws unix.WaitStatus, kill func()) {
	tr, ok := t.tracees[wpid]
	if !ok {
		tr = &tracee{}
		t.tracees[wpid] = tr
		t.count++
	}
	sig := ws.StopSignal()
	inject := 0
	switch {
	case sig == unix.SIGTRAP|0x80:
		if !t.syscallStop(wpid) {
			kill()
			unix.Kill(wpid, unix.SIGKILL)
			return
		}
	case sig == unix.SIGTRAP && ws.TrapCause() > 0:
		t.event(wpid, ws.TrapCause())
	case sig == unix.SIGSTOP && !tr.attached:
		// The initial stop of an auto-attached thread.
	case isStopSignal(sig) && groupStop(wpid):
		// A group stop: resume (a batch program has nobody to
		// continue it).
	default:
		inject = int(sig)
	}
	tr.attached = true
	if err := unix.PtraceSyscall(wpid, inject); err != nil && !errors.Is(err, unix.ESRCH) {
		t.log.Debug("PTRACE_SYSCALL", "pid", wpid, "error", err)
	}
}

// event handles the ptrace event stop of wpid: a new process or thread is
// a tracee from now on; after an exec, its executable is recorded.
func (t *tracer) event(wpid, cause int) {
	switch cause {
	case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
		if msg, err := unix.PtraceGetEventMsg(wpid); err == nil {
			if _, ok := t.tracees[int(msg)]; !ok {
				t.tracees[int(msg)] = &tracee{}
				t.count++
			}
		}
	case unix.PTRACE_EVENT_EXEC:
		if msg, err := unix.PtraceGetEventMsg(wpid); err == nil && int(msg) != wpid {
			// A thread other than the leader exec'ed: it now
			// has the leader's ID.
			if p, ok := t.pending[int(msg)]; ok {
				t.pending[wpid] = p
				delete(t.pending, int(msg))
			}
		}
		t.exec(wpid)
	}
}

func isStopSignal(sig syscall.Signal) bool {
	return sig == unix.SIGSTOP || sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU
}

// groupStop reports whether the stop of pid is a group stop rather than a
// signal-delivery stop: PTRACE_GETSIGINFO fails with EINVAL for those.
func groupStop(pid int) bool {
	var si [128]byte
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(pid), 0, uintptr(unsafe.Pointer(&si[0])), 0, 0)
	return e == unix.EINVAL
}
