//go:build linux && (amd64 || arm64)

package image

// How Trace runs a program and what it sees (see also docs/trace.md).
//
// Tracer: ptrace, not fanotify. fanotify needs CAP_SYS_ADMIN in the initial
// user namespace, reports opens by file (not by the path the program used,
// which decides the symlinks a package needs), and cannot tell our sandbox's
// processes from any other process touching the same file system. ptrace
// works wherever the tracer may trace its own children, follows every
// process and thread with PTRACE_O_TRACEFORK|VFORK|CLONE, and sees each
// path argument. Syscalls are decoded with PTRACE_GET_SYSCALL_INFO (Linux
// 5.3), which says whether a stop is a syscall's entry or exit and which ABI
// it uses (x86_64, i386 compat, aarch64), so no register layout is needed;
// only the syscall numbers are per ABI. A syscall of another ABI (x32), or a
// kernel without PTRACE_GET_SYSCALL_INFO, kills the run: the forbidden
// calls below could not be recognized. All ptrace requests are made from
// one goroutine locked to its OS thread (ptrace ties tracees to a thread),
// and that thread is never returned to the Go scheduler.
//
// What is recorded: the path arguments of open, openat, openat2 (unless
// opened write-only), execve and execveat, when the call succeeds, and the
// executable of every process after exec (/proc/PID/exe: a script's
// interpreter, which the kernel opens itself). mmap'ed libraries were opened
// first; PT_INTERP loaders, also opened by the kernel, come with the ELF
// program through the closure. Relative paths are resolved against the
// process's working directory (/proc/PID/cwd) or the directory fd
// (/proc/PID/fd/N), both read from the host: below the sandbox's
// pivot_root they read as image paths. Paths are kept as the program named them, so that the
// closure adds the symlinks on the way.
//
// Sandbox: the whole flattened image is written to a fresh temporary
// directory (image.Flatten, through an os.Root: symlinks are created, never
// followed on the host; setuid/setgid bits dropped), with /tmp (1777), the
// WORKDIR and /dev/{null,zero,full,random,urandom} added. The program runs
// there in new user, mount, PID, network (loopback only, down), IPC and UTS
// namespaces, with the image's ENV, WORKDIR and USER, the input as stdin,
// stdout discarded and the tail of stderr kept. When extract runs as root
// the image's user IDs 0-65535 are mapped to host IDs from 1<<30 on, so even
// the image's root is an unprivileged nobody-like user on the host;
// otherwise the single image user is mapped to the caller (unprivileged user
// namespaces must be enabled). /proc and /sys are not mounted. A helper
// (sandbox_linux.go: this executable started again) pivot_roots into the
// root with the host's root detached, drops every capability, sets
// no_new_privs and installs a seccomp filter (seccomp_linux.go) before it
// execs the program: the filter binds every process of the sandbox, also
// one the tracer does not trace (CLONE_UNTRACED is refused anyway). The
// tracer also kills the sandbox at the entry of any traced call that changes
// roots or mounts or enters namespaces (chroot, pivot_root, mount, umount,
// the new mount API, unshare, setns, ptrace, process_vm_writev,
// open_by_handle_at), before the filter refuses it, and reports it. The run
// is bounded by the timeout: the sandbox's PID 1 is killed (through a
// pidfd, or by its process ID where pidfd_open fails), and with it every
// process of its PID namespace. The temporary directory is removed at the
// end.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// traceIDBase is the first host user and group ID the image's IDs are
// mapped to when extract runs as root: far above any real user's IDs and the
// usual subordinate ranges (/etc/subuid starts at 100000).
const traceIDBase = 1 << 30

// Trace runs cmd (see ResolveCommand) once on the file input inside a
// sandbox made of the flattened image and records the image files the
// program and all its descendants open for reading or execute (see the
// comment at the top of trace_linux.go). Pass TraceResult.Paths to Closure
// with WithTraced to add them to the closure.
//
// The image must be built for the host's architecture (amd64 or arm64):
// anything else is an error wrapping ErrTraceUnsupported. The program's
// failure (a non-zero exit, a signal) and the timeout are not errors: they
// are reported in the result, with what was seen until then. A program that
// tries to leave the sandbox (chroot, mount, unshare...) is killed and that
// is an error. Trace needs root, or unprivileged user namespaces.
func Trace(ctx context.Context, img *Image, idx *Index, cmd *Command, input string, opts ...TraceOption) (*TraceResult, error) {
	start := time.Now()
	o, err := makeTraceOptions(opts...)
	if err != nil {
		return nil, err
	}
	if img == nil || idx == nil || cmd == nil {
		return nil, errors.New("trace: image, index and command are required")
	}
	if cmd.Path == "" || len(cmd.Args) == 0 {
		return nil, errors.New("trace: command has no resolved path (use ResolveCommand)")
	}
	if err := checkTraceArch(img, idx, cmd); err != nil {
		return nil, err
	}
	in, err := os.Open(input)
	if err != nil {
		return nil, fmt.Errorf("trace input: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("trace input %q: not a file", input)
	}

	dir, err := os.MkdirTemp(o.dir, "extract-trace-")
	if err != nil {
		return nil, fmt.Errorf("creating the trace sandbox: %w", err)
	}
	res, err := traceIn(ctx, o, img, idx, cmd, in, dir)
	if rerr := removeSandbox(dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("removing the trace sandbox %s: %w", dir, rerr))
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	o.logger.Info("trace done", "program", cmd.Path, "paths", len(res.Paths), "processes", res.Processes,
		"exit_code", res.ExitCode, "timed_out", res.TimedOut, "run", res.RunDuration, "total", res.Duration)
	return res, nil
}

// traceIn writes the sandbox below dir and runs the traced program there.
func traceIn(ctx context.Context, o *traceOptions, img *Image, idx *Index, cmd *Command, in *os.File, dir string) (*TraceResult, error) {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	ids := sandboxUser(idx, cmd.User, os.Geteuid() == 0)
	o.logger.Debug("writing the trace sandbox", "root", root, "uid", ids.uid, "gid", ids.gid, "privileged", ids.privileged)
	if err := writeSandbox(ctx, img, idx, root, cmd, ids, o.logger); err != nil {
		return nil, fmt.Errorf("writing the trace sandbox: %w", err)
	}

	args := append([]string(nil), cmd.Args...)
	stdin := in
	if o.placeholder != "" {
		name := "/tmp/input" + path.Ext(in.Name())
		if err := copyInto(root, name, in); err != nil {
			return nil, fmt.Errorf("copying the trace input: %w", err)
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, o.placeholder, name)
		}
		if stdin, err = os.Open(os.DevNull); err != nil {
			return nil, err
		}
		defer stdin.Close()
	}
	t := &tracer{
		root:    root,
		log:     o.logger,
		seen:    map[string]bool{},
		pending: map[int]string{},
		tracees: map[int]*tracee{},
		pivoted: true,
	}
	res, err := t.start(ctx, o, cmd, args, sandboxEnv(idx, cmd, ids), stdin, ids)
	if err != nil {
		return nil, err
	}
	res.Paths = t.imagePaths(idx)
	return res, nil
}

// checkTraceArch refuses images the host cannot run natively.
func checkTraceArch(img *Image, idx *Index, cmd *Command) error {
	host := platformMachine("linux/" + runtime.GOARCH)
	if arch := img.Platform.Architecture; arch != "" {
		if want := platformMachine("linux/" + arch); want != host {
			return fmt.Errorf("trace: the image is for %s and this host is %s; the trace runs the program, so it only works on a host of the image's architecture: %w",
				img.Platform.String(), "linux/"+runtime.GOARCH, ErrTraceUnsupported)
		}
	}
	if _, e, err := idx.Resolve(cmd.Path); err == nil && e.ELF != nil && e.ELF.Machine != host {
		return fmt.Errorf("trace: %s is built for %s and this host is %s: %w", cmd.Path, e.ELF.Machine, host, ErrTraceUnsupported)
	}
	return nil
}

// sandboxIDs says who the program runs as.
type sandboxIDs struct {
	// uid and gid inside the sandbox (the image's USER).
	uid, gid int
	// privileged: extract runs as root and maps the image's IDs to
	// traceIDBase + ID; otherwise the one image user is the caller.
	privileged bool
	home       string
}

// hostUID returns the host ID of the image's ID id.
func (s sandboxIDs) host(id int) int {
	if s.privileged {
		return traceIDBase + id
	}
	return os.Geteuid()
}

// sandboxUser reads the image's USER ("uid[:gid]" or "name[:group]") the way
// container runtimes do: names through the image's /etc/passwd and
// /etc/group, a name the image does not know as nobody (65534).
func sandboxUser(idx *Index, user string, privileged bool) sandboxIDs {
	ids := sandboxIDs{privileged: privileged, home: "/"}
	name, group, hasGroup := strings.Cut(user, ":")
	passwd, _ := idx.Content("/etc/passwd")
	fields := func(match func(f []string) bool) []string {
		for _, line := range strings.Split(string(passwd), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && match(f) {
				return f
			}
		}
		return nil
	}
	var pw []string
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		ids.uid = n
		pw = fields(func(f []string) bool { return f[2] == name })
	} else if name != "" {
		pw = fields(func(f []string) bool { return f[0] == name })
		ids.uid, ids.gid = 65534, 65534
		if pw != nil {
			ids.uid, _ = strconv.Atoi(pw[2])
		}
	}
	if pw != nil {
		ids.gid, _ = strconv.Atoi(pw[3])
		if pw[5] != "" {
			ids.home = pw[5]
		}
	} else if name == "" || name == "0" || name == "root" {
		ids.home = "/root"
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil && n >= 0 {
			ids.gid = n
		} else {
			ids.gid = 65534
			gr, _ := idx.Content("/etc/group")
			for _, line := range strings.Split(string(gr), "\n") {
				if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == group {
					ids.gid, _ = strconv.Atoi(f[2])
				}
			}
		}
	}
	return ids
}

// sandboxEnv is the program's environment: the image's ENV, with PATH and
// HOME added when it lacks them, as container runtimes do.
func sandboxEnv(idx *Index, cmd *Command, ids sandboxIDs) []string {
	env := append([]string(nil), cmd.Env...)
	if _, ok := envValue(env, "PATH"); !ok {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if _, ok := envValue(env, "HOME"); !ok {
		env = append(env, "HOME="+ids.home)
	}
	return env
}

// writeSandbox writes the flattened image to root (a new directory) through
// an os.Root: directories, symlinks as symlinks (never followed on the
// host), regular files with their permission bits (setuid and setgid
// dropped); devices and fifos are left out. Then /tmp, the WORKDIR and a few
// device nodes are added, and the tree is given to the image's root user.
func writeSandbox(ctx context.Context, img *Image, idx *Index, root string, cmd *Command, ids sandboxIDs, log *slog.Logger) error {
	if err := Flatten(ctx, img, idx, root); err != nil {
		return err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, d := range []string{"tmp", "dev"} {
		if err := r.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("making /%s: %w", d, err)
		}
	}
	if err := r.Chmod("tmp", 0o777|os.ModeSticky); err != nil {
		return err
	}
	wd := strings.TrimPrefix(path.Clean("/"+cmd.WorkingDir), "/")
	if wd != "" {
		if err := r.MkdirAll(wd, 0o755); err != nil {
			return fmt.Errorf("making the WORKDIR %s: %w", cmd.WorkingDir, err)
		}
	}
	if ids.privileged {
		makeDevices(r, log)
		// Everything belongs to the image's root, mapped to traceIDBase.
		err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, traceIDBase, traceIDBase)
		})
		if err != nil {
			return err
		}
		if wd != "" {
			if err := r.Chown(wd, ids.host(ids.uid), ids.host(ids.gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// makeDevices creates the character devices programs expect in /dev (root
// only; a device that cannot be made is logged and left out).
func makeDevices(r *os.Root, log *slog.Logger) {
	fi, err := r.Lstat("dev")
	if err != nil || !fi.IsDir() {
		return
	}
	d, err := r.OpenFile("dev", os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer d.Close()
	for _, dev := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}} {
		unix.Unlinkat(int(d.Fd()), dev.name, 0)
		if err := unix.Mknodat(int(d.Fd()), dev.name, unix.S_IFCHR|0o666, int(unix.Mkdev(dev.major, dev.minor))); err != nil {
			log.Debug("cannot make a device in the trace sandbox", "device", "/dev/"+dev.name, "error", err)
			continue
		}
		unix.Fchmodat(int(d.Fd()), dev.name, 0o666, 0)
	}
}

// copyInto copies r to the image path name below root.
func copyInto(root, name string, r io.Reader) error {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer rt.Close()
	f, err := rt.OpenFile(strings.TrimPrefix(name, "/"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeSandbox removes the sandbox directory, first making its
// directories writable (the image's read-only directories would refuse
// their entries' removal to an unprivileged caller). WalkDir does not follow
// symlinks, so only the sandbox is touched.
func removeSandbox(dir string) error {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// tracer is the state of one traced run. All its methods but imagePaths run
// on the tracing OS thread.
type tracer struct {
	root string
	log  *slog.Logger
	// seen are the image paths recorded.
	seen map[string]bool
	// pending holds, per thread, the image path of the syscall it is in.
	pending map[int]string
	tracees map[int]*tracee
	count   int
	// violation is set when the program called a forbidden syscall.
	violation error
	// pivoted: the sandbox's processes have the sandbox root as their
	// root, so the paths the host reads in /proc/PID (cwd, fd, exe) are
	// already image paths.
	pivoted bool
	// reaped is set once the sandbox's PID 1 was waited for: from then on
	// its process ID may name another process.
	reaped atomic.Bool
}

// tracee is one traced thread.
type tracee struct {
	// attached is false until the initial SIGSTOP of an auto-attached
	// thread was seen.
	attached bool
}

// started is what the tracing goroutine sends once the program runs.
type started struct {
	pid, pidfd int
}

// start runs the program under the tracer on a locked OS thread and waits
// for it, killing the sandbox at the timeout or when ctx is done.
func (t *tracer) start(ctx context.Context, o *traceOptions, cmd *Command, args, env []string, stdin *os.File, ids sandboxIDs) (*TraceResult, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, err
	}
	defer errR.Close()
	res := &TraceResult{}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		n, _ := io.Copy(io.Discard, outR)
		res.StdoutBytes = n
	}()
	tail := &tailBuffer{max: o.outputLimit}
	go func() {
		defer readers.Done()
		io.Copy(tail, errR)
	}()

	// The sandbox helper (sandbox_linux.go) starts in the new namespaces
	// as the caller, with the capabilities (in its user namespace) it
	// needs to pivot_root, empty the bounding set and become the image's
	// user; it drops them all before the exec.
	sys := &syscall.SysProcAttr{
		Setsid:    true,
		Pdeathsig: syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		GidMappingsEnableSetgroups: ids.privileged,
		AmbientCaps:                []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP, unix.CAP_SETUID, unix.CAP_SETGID},
	}
	if ids.privileged {
		sys.UidMappings = idMaps(ids.uid)
		sys.GidMappings = idMaps(ids.gid)
	} else {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: ids.uid, HostID: os.Geteuid(), Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: ids.gid, HostID: os.Getegid(), Size: 1}}
	}
	wd := cmd.WorkingDir
	if wd == "" {
		wd = "/"
	}
	spec, err := json.Marshal(sandboxSpec{Root: t.root, Dir: wd, UID: ids.uid, GID: ids.gid, SetGroups: ids.privileged,
		Path: cmd.Path, Args: args, Env: env})
	if err != nil {
		outW.Close()
		errW.Close()
		return nil, err
	}
	// The helper's error pipe: see sandbox_linux.go.
	helperR, helperW, err := os.Pipe()
	if err != nil {
		outW.Close()
		errW.Close()
		return nil, err
	}
	defer helperR.Close()
	attr := &syscall.ProcAttr{
		Env:   []string{sandboxHelperEnv + "=1"},
		Files: []uintptr{stdin.Fd(), outW.Fd(), errW.Fd(), helperW.Fd()},
		Sys:   sys,
	}
	helper := &sandboxStart{argv: []string{sandboxHelperArg0, string(spec)}, attr: attr, errR: helperR, errW: helperW}

	startCh := make(chan started, 1)
	done := make(chan error, 1)
	go func() {
		// The tracer thread: never unlocked, so Go ends it with the
		// goroutine instead of reusing a thread that had tracees.
		runtime.LockOSThread()
		done <- t.run(cmd.Path, helper, startCh, res)
	}()
	var st started
	select {
	case st = <-startCh:
	case err := <-done:
		outW.Close()
		errW.Close()
		readers.Wait()
		if err == nil {
			err = errors.New("trace: the program did not start")
		}
		return nil, err
	}
	outW.Close()
	errW.Close()
	runStart := time.Now()
	t.log.Debug("traced program started", "pid", st.pid, "args", args)

	kill := func() { t.kill(st.pid, st.pidfd) }
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	var runErr error
	select {
	case runErr = <-done:
	case <-timer.C:
		res.TimedOut = true
		t.log.Warn("trace timeout: killing the sandbox", "timeout", o.timeout)
		kill()
		runErr = <-done
	case <-ctx.Done():
		kill()
		<-done
		runErr = ctx.Err()
	}
	if st.pidfd >= 0 {
		unix.Close(st.pidfd)
	}
	res.RunDuration = time.Since(runStart)
	readers.Wait()
	res.Stderr = tail.String()
	if runErr != nil {
		return nil, runErr
	}
	if t.violation != nil {
		return nil, t.violation
	}
	res.Processes = t.count
	return res, nil
}

// idMaps maps the image's IDs 0-65535 (and id, when beyond) to host IDs
// from traceIDBase.
func idMaps(id int) []syscall.SysProcIDMap {
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: traceIDBase, Size: 65536}}
	if id >= 65536 {
		m = append(m, syscall.SysProcIDMap{ContainerID: id, HostID: traceIDBase + 65536, Size: 1})
	}
	return m
}

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
	pid, err := syscall.ForkExec("/proc/self/exe", helper.argv, helper.attr)
	helper.errW.Close()
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("trace: starting %s in the sandbox: %w (the trace needs root, or unprivileged user namespaces)", argv0, err)
		}
		return fmt.Errorf("trace: starting %s in the sandbox: %w", argv0, err)
	}
	pidfd, err := pidfdOpen(pid, 0)
	if err != nil {
		t.log.Debug("pidfd_open failed: the sandbox will be killed by its process ID", "error", err)
		pidfd = -1
	}
	// The helper stops at the SIGTRAP of the program's exec
	// (PTRACE_TRACEME). Before that, a signal to its main thread (Go's
	// preemption signals) stops it too: each is passed on.
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.kill(pid, pidfd)
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
			return fmt.Errorf("trace: waiting for %s: %w", argv0, err)
		}
		if !ws.Stopped() || ws.StopSignal() == unix.SIGTRAP {
			break
		}
		if err := unix.PtraceCont(pid, int(ws.StopSignal())); err != nil && !errors.Is(err, unix.ESRCH) {
			t.log.Debug("PTRACE_CONT of the sandbox helper", "error", err)
		}
	}
	if !ws.Stopped() {
		t.reaped.Store(true)
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		// The helper exited: its error pipe says why.
		if msg, _ := io.ReadAll(helper.errR); len(msg) > 0 {
			return fmt.Errorf("trace: setting up the sandbox for %s: %s", argv0, msg)
		}
		return fmt.Errorf("trace: %s did not stop after exec (status %#x)", argv0, uint32(ws))
	}
	if err := unix.PtraceSetOptions(pid, traceOptionsMask); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return fmt.Errorf("trace: PTRACE_SETOPTIONS: %w", err)
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
			continue
		case !ws.Stopped():
			continue
		}
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
				continue
			}
		case sig == unix.SIGTRAP && ws.TrapCause() > 0:
			switch ws.TrapCause() {
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

// ignoredDirs are the run-time file systems whose files are never packaged.
var ignoredDirs = []string{"/proc", "/dev", "/sys", "/tmp"}

func ignoredPath(p string) bool {
	for _, d := range ignoredDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// imagePaths returns the recorded paths that name regular files of the
// image, outside the ignored directories, sorted.
func (t *tracer) imagePaths(idx *Index) []string {
	out := []string{}
	for p := range t.seen {
		if ignoredPath(p) {
			continue
		}
		real, e, err := idx.Resolve(p)
		if err != nil || e.Kind != Regular || ignoredPath(real) {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
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

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
