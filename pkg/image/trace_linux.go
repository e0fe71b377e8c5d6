//go:build linux && (amd64 || arm64)

package image

// How Trace runs a program and what it sees (see also docs/trace.md).
//
// Files: this one runs a trace and gathers its result;
// trace_sandbox_linux.go builds the sandbox, sandbox_linux.go is the helper
// that enters it and seccomp_linux.go its filter; ptrace_linux.go is the
// ptrace engine and syscalls_linux.go decodes the syscall stops.
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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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

// tracer is the state of one traced run. run and the methods it calls run
// on the tracing OS thread; start, helperStart, await and kill on the
// caller's goroutine, imagePaths after the run.
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
	res := &TraceResult{}
	out, err := captureOutput(o.outputLimit, res)
	if err != nil {
		return nil, err
	}
	defer out.closeReaders()
	helper, err := t.helperStart(cmd, args, env, stdin, out, ids)
	if err != nil {
		out.closeWriters()
		return nil, err
	}
	defer helper.errR.Close()

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
		out.closeWriters()
		out.wait()
		if err == nil {
			err = errors.New("trace: the program did not start")
		}
		return nil, err
	}
	out.closeWriters()
	runStart := time.Now()
	t.log.Debug("traced program started", "pid", st.pid, "args", args)

	runErr := t.await(ctx, o.timeout, st, done, res)
	res.RunDuration = time.Since(runStart)
	res.Stderr = out.wait()
	if runErr != nil {
		return nil, runErr
	}
	if t.violation != nil {
		return nil, t.violation
	}
	res.Processes = t.count
	return res, nil
}

// await waits for the traced run (done) to end, killing the sandbox at the
// timeout (res.TimedOut) or when ctx is done, then closes its pidfd.
func (t *tracer) await(ctx context.Context, timeout time.Duration, st started, done <-chan error, res *TraceResult) error {
	kill := func() { t.kill(st.pid, st.pidfd) }
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var runErr error
	select {
	case runErr = <-done:
	case <-timer.C:
		res.TimedOut = true
		t.log.Warn("trace timeout: killing the sandbox", "timeout", timeout)
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
	return runErr
}

// helperStart prepares the start of the sandbox helper (sandbox_linux.go)
// for the program: its spec, its error pipe, and stdin plus the output pipes
// as its descriptors 0-2. The caller closes errR.
func (t *tracer) helperStart(cmd *Command, args, env []string, stdin *os.File, out *programOutput, ids sandboxIDs) (*sandboxStart, error) {
	wd := cmd.WorkingDir
	if wd == "" {
		wd = "/"
	}
	spec, err := json.Marshal(sandboxSpec{Root: t.root, Dir: wd, UID: ids.uid, GID: ids.gid, SetGroups: ids.privileged,
		Path: cmd.Path, Args: args, Env: env})
	if err != nil {
		return nil, err
	}
	// The helper's error pipe: see sandbox_linux.go.
	helperR, helperW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	attr := &syscall.ProcAttr{
		Env:   []string{sandboxHelperEnv + "=1"},
		Files: []uintptr{stdin.Fd(), out.outW.Fd(), out.errW.Fd(), helperW.Fd()},
		Sys:   sandboxProcAttr(ids),
	}
	return &sandboxStart{argv: []string{sandboxHelperArg0, string(spec)}, attr: attr, errR: helperR, errW: helperW}, nil
}

// programOutput is the traced program's stdout, drained and counted into
// TraceResult.StdoutBytes, and its stderr, of which the tail is kept.
type programOutput struct {
	outR, outW, errR, errW *os.File
	readers                sync.WaitGroup
	tail                   *tailBuffer
}

// captureOutput makes the output pipes and starts reading them.
func captureOutput(limit int, res *TraceResult) (*programOutput, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	p := &programOutput{outR: outR, outW: outW, errR: errR, errW: errW, tail: &tailBuffer{max: limit}}
	p.readers.Add(2)
	go func() {
		defer p.readers.Done()
		n, _ := io.Copy(io.Discard, outR)
		res.StdoutBytes = n
	}()
	go func() {
		defer p.readers.Done()
		io.Copy(p.tail, errR)
	}()
	return p, nil
}

// closeWriters closes our ends of the writers, once the program has its
// own (or will never start), so that the readers see the end.
func (p *programOutput) closeWriters() {
	p.outW.Close()
	p.errW.Close()
}

// closeReaders closes the read ends.
func (p *programOutput) closeReaders() {
	p.outR.Close()
	p.errR.Close()
}

// wait waits for the readers (after closeWriters) and returns the tail of
// stderr.
func (p *programOutput) wait() string {
	p.readers.Wait()
	return p.tail.String()
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
