//go:build !linux

package local

import (
	"os/exec"
	"syscall"
)

// startContained starts the command newCmd makes in a process group of its
// own, which cleanup kills. Only Linux has PID namespaces and Pdeathsig:
// here, processes that leave the group, and the command itself when this
// process dies, outlive the invocation. setup must be nil; fallback is
// always taken.
func (inv *invocation) startContained(newCmd func() *exec.Cmd, setup func() error, fallback bool) error {
	inv.o.logger.Debug("no PID namespace on this system: processes the bootstrap starts in another process group can outlive the invocation")
	cmd := newCmd()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return err
	}
	inv.cmd = cmd
	inv.exited = make(chan struct{})
	go func() {
		inv.exitErr = cmd.Wait()
		close(inv.exited)
	}()
	return nil
}
