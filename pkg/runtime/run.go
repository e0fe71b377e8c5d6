package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// One run of the program on one record, in the order Handler.run takes
// its steps:
//
//   - prepareInput: the input downloaded to a file (file mode) or a pipe
//     for the program's stdin;
//   - prepareStdio: the program's stdout, a file followed as it grows
//     (spool_linux.go) or a pipe, and its stderr pipe;
//   - start: the program, in a process group of its own;
//   - watch: beside it, logStderr, feedStdin, wait (its exit, then the kill
//     of what it left behind) and the deadline's kill, each a goroutine;
//   - meanwhile consumeStdout reads stdout through the run's gate, which at
//     the end of stdout waits for the exit (settled) and fails if the run
//     did, so that no upload of a failed run completes;
//   - finish: waits for the program, the input and the stderr log, and
//     turns what happened into the record's error;
//   - close: releases the files.

// programRun is the state of one run of the program: its pipes, its
// process, and what the goroutines beside it report.
type programRun struct {
	h    *Handler
	r    *RecordResult
	body *inputReader
	outs *outputRun

	// inputDir holds inputName, the input file, in file mode; otherwise
	// stdin is the program's end of its input pipe and stdinW ours.
	inputDir, inputName string
	stdin, stdinW       *os.File
	// The program writes its stdout to outW and the run reads it from
	// outR: the spool sp, or the pipe outPipe behind an exitReader.
	sp            *spool
	outPipe, outW *os.File
	outR          io.ReadCloser
	errR, errW    *os.File

	cmd       *exec.Cmd
	progStart time.Time
	// pgid is the program's process group (its PID), started its start
	// time in clock ticks (for killLeftovers).
	pgid    int
	started uint64
	timer   *time.Timer // the deadline's, nil without one

	// tail keeps stderr's last lines.
	tail *lineTail
	// exited is closed once the program and its leftovers are gone, after
	// waitErr is set; stdinDone once the input stopped, after readErr is
	// set; stderrDone once stderr is logged to its end.
	exited, stdinDone, stderrDone chan struct{}
	waitErr, readErr              error
	timedOut                      atomic.Bool
	// gate is stdout as consumeStdout reads it; progErr the program's
	// status, which the gate computes at the end of stdout.
	gate    *gateReader
	progErr error
}

// run streams the object, the version pin names, through the program into
// the output object.
func (h *Handler) run(ctx context.Context, r *RecordResult, pin inputPin) error {
	body, err := openInput(ctx, h.opts.s3, r.Bucket, r.Key, pin, h.opts.inputBackoff, h.opts.logger)
	if err != nil {
		return recordFailure(r, "reading input", err)
	}
	defer body.Close()
	defer func() { r.InputRetries = int(body.retries.Load()) }()

	outs, err := h.prepareOutputs(ctx)
	if err != nil {
		return recordFailure(r, "running program", err)
	}
	defer outs.cleanup()
	if outs.snap != nil {
		defer h.resetOutDir(ctx, outs.snap)
	}

	p := newProgramRun(h, r, body, outs)
	defer p.close()
	if err := p.prepareInput(); err != nil {
		return err
	}
	if err := p.prepareStdio(); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	p.watch(ctx)
	upErr := h.consumeStdout(ctx, r, outs, p.gate)
	if err := p.finish(upErr); err != nil {
		return err
	}
	return h.finishOutputs(ctx, r, outs, pin)
}

// recordFailure is the record's error when op failed with err, the
// program's exit status playing no part.
func recordFailure(r *RecordResult, op string, err error) *RecordError {
	return &RecordError{Bucket: r.Bucket, Key: r.Key, Op: op, ExitCode: -1, Err: err}
}

// newProgramRun returns the state of a run of h's program on r's object,
// read from body, with the outputs outs.
func newProgramRun(h *Handler, r *RecordResult, body *inputReader, outs *outputRun) *programRun {
	p := &programRun{
		h: h, r: r, body: body, outs: outs,
		tail:       newLineTail(StderrLines),
		exited:     make(chan struct{}),
		stdinDone:  make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	p.gate = &gateReader{wait: p.settled}
	return p
}

// fail is the record's error when op failed with err.
func (p *programRun) fail(op string, err error) *RecordError { return recordFailure(p.r, op, err) }

// prepareInput downloads the input to a file of its own in file mode, or
// makes the pipe feedStdin fills.
func (p *programRun) prepareInput() error {
	if p.h.m.Input.Mode != InputFile {
		var err error
		if p.stdin, p.stdinW, err = os.Pipe(); err != nil {
			return p.fail("running program", err)
		}
		growPipe(p.stdinW)
		return nil
	}
	dir, err := os.MkdirTemp("", "extract-input-")
	if err != nil {
		return p.fail("reading input", err)
	}
	p.inputDir = dir
	// A fixed name: the key, which the uploader chooses, must not reach
	// the program's argv, where a shell may read it as code.
	p.inputName = filepath.Join(dir, inputFileName(p.h.m.Input.Suffix))
	if err := download(p.inputName, p.body); err != nil {
		return p.fail("reading input", err)
	}
	return nil
}

// prepareStdio makes the program's stdout, a file followed as it grows
// (spool_linux.go says why) or, with Output.Stdout "pipe" or where files
// cannot be followed, a pipe; then its stderr pipe.
func (p *programRun) prepareStdio() error {
	if p.h.m.Output.Stdout != StdoutPipe {
		sp, err := newSpool()
		if err != nil && !errors.Is(err, errNoSpool) {
			return p.fail("running program", fmt.Errorf("creating the file for its stdout: %w", err))
		}
		p.sp = sp
	}
	if p.sp != nil {
		p.outR, p.outW = p.sp, p.sp.w
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			return p.fail("running program", err)
		}
		growPipe(pr)
		p.outPipe, p.outW = pr, pw
		p.outR = &exitReader{f: pr, exited: p.exited}
	}
	p.gate.r = p.outR
	errR, errW, err := os.Pipe()
	if err != nil {
		p.outW.Close()
		return p.fail("running program", err)
	}
	p.errR, p.errW = errR, errW
	return nil
}

// start starts the program in a process group of its own and closes the
// ends of the pipes that are now the program's.
func (p *programRun) start() error {
	h := p.h
	p.cmd = &exec.Cmd{
		Path:        h.program,
		Args:        h.programArgs(p.inputName, p.outs),
		Env:         h.env,
		Dir:         h.dir,
		Stdout:      p.outW,
		Stderr:      p.errW,
		SysProcAttr: groupLeader(),
	}
	if p.stdin != nil {
		p.cmd.Stdin = p.stdin
	}
	p.progStart = time.Now()
	err := p.cmd.Start()
	p.outW.Close()
	p.errW.Close()
	if p.stdin != nil {
		p.stdin.Close()
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(h.program); serr == nil {
				// The file is there: the kernel did not find its loader.
				err = fmt.Errorf("%w (its program interpreter is missing: is the link %q to the task root in place?)", err, h.m.LinkDir)
			}
		}
		return p.fail("running program", fmt.Errorf("starting %s: %w", h.m.Program, err))
	}
	p.pgid = p.cmd.Process.Pid
	p.started = programStart(p.pgid)
	return nil
}

// watch starts what runs beside the program while its stdout is consumed:
// the stderr log, the stdin feed, the wait for its exit, the spool's
// back-pressure and the deadline.
func (p *programRun) watch(ctx context.Context) {
	go p.logStderr(ctx)
	if p.stdinW != nil {
		go p.feedStdin()
	} else {
		close(p.stdinDone)
	}
	go p.wait()
	if p.sp != nil {
		p.sp.start(p.pgid, p.exited)
	}
	p.killAtDeadline(ctx)
}

// kill kills the program's whole process group.
func (p *programRun) kill() { killGroup(p.pgid) }

// logStderr logs the program's stderr line by line, the last lines kept
// in tail.
func (p *programRun) logStderr(ctx context.Context) {
	defer close(p.stderrDone)
	_ = p.h.logLines(ctx, p.errR, p.r.Key, streamStderr, p.tail)
}

// feedStdin copies the object's body to the program's stdin until it ends
// or the program stops reading. Only a read error (from S3) fails the
// record.
func (p *programRun) feedStdin() {
	defer close(p.stdinDone)
	_, p.readErr = copyToPipe(p.stdinW, p.body)
	p.stdinW.Close()
}

// wait waits for the program's exit, then for the end of what it left
// behind, and closes exited.
func (p *programRun) wait() {
	p.waitErr = p.cmd.Wait()
	p.r.ProgramMS = time.Since(p.progStart).Milliseconds()
	// Leftovers of the group, or daemons the program started in groups
	// of their own, would hold the pipes open: they go with it. What
	// escapes (the bootstrap is no subreaper) is not waited for: stdin
	// stops, and stdout ends where the pipe runs dry.
	p.kill()
	killLeftovers(p.pgid, p.started)
	if p.stdinW != nil {
		_ = p.stdinW.SetWriteDeadline(time.Now())
	}
	close(p.exited)
	if p.sp == nil {
		// Wakes a read waiting on the pipe: it reads again, with a
		// deadline of its own.
		_ = p.outPipe.SetReadDeadline(time.Now())
	}
}

// killAtDeadline kills the whole process group killMargin before ctx's
// deadline, or when ctx is done first, unless the program exited.
func (p *programRun) killAtDeadline(ctx context.Context) {
	var timer <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		p.timer = time.NewTimer(time.Until(dl) - p.h.opts.killMargin)
		timer = p.timer.C
	}
	go func() {
		select {
		case <-timer:
			p.timedOut.Store(true)
			p.kill()
		case <-ctx.Done():
			// Both may be ready when this goroutine runs late: a
			// deadline is a time-out either way.
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				p.timedOut.Store(true)
			}
			p.kill()
		case <-p.exited:
		}
	}()
}

// settled is the gate's wait at the end of stdout: the upload only
// completes when the program succeeded, so it waits for the exit and the
// end of the input and turns a failure into errProgramFailed, a read
// error that makes the uploader abort.
func (p *programRun) settled() error {
	<-p.exited
	<-p.stdinDone
	p.progErr = p.h.status(p.r, p.waitErr, p.readErr, p.timedOut.Load())
	if p.progErr != nil {
		return errProgramFailed
	}
	return nil
}

// finish waits, once consumeStdout returned upErr, for the program, the
// input and (a second at most) the stderr log, counts the bytes, and
// returns the run's error: the upload's when it ended before stdout did,
// else the program's, else the upload's.
func (p *programRun) finish(upErr error) error {
	if upErr != nil {
		p.kill()
		p.outR.Close()
	}
	<-p.exited
	<-p.stdinDone
	select {
	case <-p.stderrDone:
	case <-time.After(time.Second):
	}
	r := p.r
	r.InputBytes = p.body.n.Load()
	if !writesFiles(p.h.m) {
		r.OutputBytes, r.OutputFiles = p.gate.n, 1
	}
	switch {
	case !p.gate.checked:
		// The upload failed before the end of the program's output.
		e := p.fail("writing output", fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, r.OutputKey, upErr))
		if upErr == nil {
			e.Err = errors.New("upload ended before the program's output did")
		}
		e.Stderr = p.tail.lines()
		return e
	case p.progErr != nil:
		var re *RecordError
		if errors.As(p.progErr, &re) {
			re.Stderr = p.tail.lines()
			p.h.diagnoseStorage(re)
		}
		return p.progErr
	case upErr != nil:
		e := p.fail("writing output", fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, r.OutputKey, upErr))
		e.Stderr = p.tail.lines()
		return e
	}
	return nil
}

// close releases the run's files, in the reverse order of their making;
// the program's ends of its pipes are closed by start.
func (p *programRun) close() {
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.errR != nil {
		p.errR.Close()
	}
	if p.outR != nil {
		p.outR.Close()
	}
	if p.stdinW != nil {
		p.stdinW.Close()
	}
	if p.stdin != nil && p.cmd == nil {
		p.stdin.Close() // the pipe was made, the program never started
	}
	if p.inputDir != "" {
		os.RemoveAll(p.inputDir)
	}
}

// status turns the program's exit into the record's error, nil on success.
func (h *Handler) status(r *RecordResult, waitErr, readErr error, timedOut bool) error {
	e := &RecordError{Bucket: r.Bucket, Key: r.Key, Op: "running program", ExitCode: -1, TimedOut: timedOut, KillMargin: h.opts.killMargin}
	var exitErr *exec.ExitError
	switch {
	case timedOut:
		if waitErr != nil {
			e.Err = waitErr
		}
		if errors.As(waitErr, &exitErr) {
			e.ExitCode = exitErr.ExitCode()
		}
		return e
	case errors.As(waitErr, &exitErr):
		e.ExitCode = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		}
		if readErr != nil {
			e.Op, e.Err = "reading input", readErr
		}
		return e
	case waitErr != nil:
		e.Err = waitErr
		return e
	case readErr != nil:
		e.Op, e.Err = "reading input", readErr
		return e
	}
	return nil
}
