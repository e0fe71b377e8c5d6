//go:build linux

package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/comingout/extract/internal/syncio"
)

// startContained starts the command newCmd makes (with a SysProcAttr) so
// that no process it starts outlives it, or this process:
//
//   - it is PID 1 of a PID namespace of its own: when it ends (killed at
//     the end of the invocation, or by Pdeathsig), the kernel kills every
//     process of the namespace, also those that left its process group or
//     session (the bootstrap gives the program its own group, and the
//     program may call setsid);
//   - Pdeathsig kills it when this process dies. The signal comes when the
//     thread that forked it ends: the fork happens on a goroutine locked to
//     its thread that stays until the command exits, and never unlocks, so
//     Go ends the thread rather than reuse it. setup, when not nil, runs on
//     that thread before the fork (the image's mount namespace, which then
//     lives as long as the command);
//   - it leads a process group of its own, which cleanup kills.
//
// Making a PID namespace needs CAP_SYS_ADMIN. With fallback (a zip's
// bootstrap), a process that lacks it starts the command with Pdeathsig
// and its process group only, and says so in a debug message: processes
// that leave the group can then outlive the invocation. Without fallback
// (an image, which needs root anyway), that is an error.
//
// It sets inv.cmd and inv.exited, closed once the command has exited and
// inv.exitErr is set.
func (inv *invocation) startContained(newCmd func() *exec.Cmd, setup func() error, fallback bool) error {
	pidns := true
	if fallback && os.Geteuid() != 0 {
		pidns = false
		inv.o.logger.Debug("not root: no PID namespace for the bootstrap; processes it starts in another process group or session can outlive the invocation")
	}
	cmd, exited, err := startLockedThread(newCmd(), setup, pidns)
	if err != nil && pidns && fallback && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC)) {
		inv.o.logger.Debug("cannot make a PID namespace for the bootstrap; processes it starts in another process group or session can outlive the invocation", "error", err)
		cmd, exited, err = startLockedThread(newCmd(), setup, false)
	}
	if err != nil {
		return err
	}
	inv.cmd = cmd
	inv.exited = exited
	go func() {
		inv.exitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// startLockedThread starts cmd from a locked thread kept until exited is
// closed (see startContained), in a new PID namespace when pidns.
func startLockedThread(cmd *exec.Cmd, setup func() error, pidns bool) (*exec.Cmd, chan struct{}, error) {
	attr := cmd.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
		cmd.SysProcAttr = attr
	}
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	if pidns {
		attr.Cloneflags |= syscall.CLONE_NEWPID
	}
	exited := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if setup != nil {
			if err := setup(); err != nil {
				errc <- err
				return
			}
		}
		if err := cmd.Start(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		<-exited
	}()
	if err := <-errc; err != nil {
		return nil, nil, err
	}
	return cmd, exited, nil
}

// startBootstrap starts the package's bootstrap, contained by
// startContained: PID 1 of its own PID namespace when this process may make
// one (root), with Pdeathsig, in its own process group.
func (inv *invocation) startBootstrap(env []string) error {
	bin := filepath.Join(inv.dir, "bootstrap")
	fi, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("the package has no bootstrap: %w", err)
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("the package's bootstrap is not executable")
	}
	w := &syncio.Writer{W: inv.o.logWriter}
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{
			Path:        bin,
			Args:        []string{bin},
			Env:         env,
			Dir:         inv.dir,
			Stdout:      w,
			Stderr:      w,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
			WaitDelay:   time.Second,
		}
	}
	if err := inv.startContained(newCmd, nil, true); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			return fmt.Errorf("starting the bootstrap: %w (it is built for another architecture: run on such a host, or install qemu-user-static for its binfmt handler)", err)
		}
		return fmt.Errorf("starting the bootstrap: %w", err)
	}
	return nil
}

// kill ends the started command's process group, and with it, when the
// command is PID 1 of its own PID namespace, everything it started.
func (inv *invocation) kill() {
	_ = syscall.Kill(-inv.cmd.Process.Pid, syscall.SIGKILL)
}
