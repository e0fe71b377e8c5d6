package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Defaults of the handler's options.
const (
	DefaultKillMargin        = 500 * time.Millisecond
	DefaultPartSize          = 8 << 20
	DefaultUploadConcurrency = 2
	// StderrLines is how many of the program's last stderr lines an error
	// carries.
	StderrLines = 20
	// maxLineLen bounds one logged stderr line.
	maxLineLen = 16 << 10
)

// Option configures a Handler.
type Option func(*options) error

type options struct {
	s3          S3API
	logger      *slog.Logger
	programLog  io.Writer
	logFormat   string
	killMargin  time.Duration
	partSize    int64
	concurrency int
	environ     []string
	// inputBackoff is the first wait before resuming a broken input
	// (tests shorten it).
	inputBackoff time.Duration
}

// WithS3Client sets the S3 client (default: NewS3Client, from the
// environment).
func WithS3Client(c S3API) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("nil S3 client")
		}
		o.s3 = c
		return nil
	}
}

// WithLogger sets the logger for the handler's own messages (default:
// discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithProgramLog sets where the program's stderr goes, line by line,
// each prefixed with the input key, and its stdout when the program's
// files are the output (default: discarded; the bootstrap passes its own
// stderr, which is the function's log). See WithLogFormat for the lines.
func WithProgramLog(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil program log writer")
		}
		o.programLog = w
		return nil
	}
}

// WithLogFormat sets the format of the program's lines in the program log
// (default LogFormatText): with LogFormatJSON each is a JSON object, as
// NewLogger writes them, with "source":"program", "stream" ("stderr" or
// "stdout") and "key"; in text, "[request] key: line", request being the
// request ID's first 8 characters ("key (stdout): line" for stdout).
func WithLogFormat(format string) Option {
	return func(o *options) error {
		o.logFormat = format
		return nil
	}
}

// WithKillMargin sets how long before the invocation deadline the program's
// process group is killed, leaving time to report the error (default
// 500ms).
func WithKillMargin(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("negative kill margin %v", d)
		}
		o.killMargin = d
		return nil
	}
}

// WithPartSize sets the multipart upload part size (default 8 MiB,
// minimum 5 MiB, S3's limit).
func WithPartSize(n int64) Option {
	return func(o *options) error {
		if n < MinPartSize {
			return fmt.Errorf("part size %d is below S3's minimum %d", n, MinPartSize)
		}
		if n > 1<<30 {
			return fmt.Errorf("part size %d is above 1 GiB: each part is held in memory", n)
		}
		o.partSize = n
		return nil
	}
}

// WithUploadConcurrency sets how many parts are uploaded at once (default
// 2); the output holds at most concurrency+1 parts in memory, allocated
// once and reused by every invocation.
func WithUploadConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("upload concurrency %d is below 1", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithEnviron sets the base environment the program's is computed from
// (default: os.Environ(), Lambda's environment).
func WithEnviron(env []string) Option {
	return func(o *options) error {
		o.environ = append([]string(nil), env...)
		return nil
	}
}

// Handler runs the manifest's program on the objects of S3 events.
type Handler struct {
	m        *Manifest
	program  string
	dir      string
	env      []string
	opts     options
	uploader *uploader
	plog     *programLog
	// outDir is the host directory of Output.Dir, outSrc the package's
	// copy of it ("" without one).
	outDir, outSrc string
	// bigUpload serializes the output directory's multipart uploads.
	bigUpload sync.Mutex
}

// NewHandler returns the handler for the package at taskRoot described by m.
// Call Setup first.
func NewHandler(ctx context.Context, m *Manifest, taskRoot string, opts ...Option) (*Handler, error) {
	o := options{
		logger:       slog.New(slog.DiscardHandler),
		programLog:   io.Discard,
		killMargin:   DefaultKillMargin,
		partSize:     DefaultPartSize,
		concurrency:  DefaultUploadConcurrency,
		inputBackoff: defaultInputBackoff,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if o.environ == nil {
		o.environ = os.Environ()
	}
	if o.s3 == nil {
		c, err := NewS3Client(ctx)
		if err != nil {
			return nil, err
		}
		o.s3 = c
	}
	prog, err := ProgramPath(m, taskRoot)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		m:       m,
		program: prog,
		dir:     WorkDir(m, taskRoot),
		env:     Environ(m, taskRoot, o.environ),
		opts:    o,
		plog:    newProgramLog(o.programLog, o.logFormat),
	}
	h.outDir, _ = outDirPath(m, taskRoot)
	if h.outDir != "" {
		h.outSrc = rootPath(m, taskRoot, m.Output.Dir)
	}
	h.uploader = newUploader(o.s3, int(o.partSize), o.concurrency, requestChecksum(os.Getenv), o.logger)
	return h, nil
}

// Result is what an invocation returns: one entry per record of the event.
type Result struct {
	Records []RecordResult `json:"records"`
}

// RecordResult describes what was done with one record.
type RecordResult struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Skipped gives the reason a record was not processed.
	Skipped      string `json:"skipped,omitempty"`
	OutputBucket string `json:"output_bucket,omitempty"`
	// OutputKey is the object of stdout or of the file that replaced
	// OutputPlaceholder; empty with Output.Dir and no such file.
	OutputKey string `json:"output_key,omitempty"`
	// StdoutKey is where stdout went with Output.StdoutAlso, ManifestKey
	// the OutputDirManifest of an Output.Dir run.
	StdoutKey   string `json:"stdout_key,omitempty"`
	ManifestKey string `json:"manifest_key,omitempty"`
	InputBytes  int64  `json:"input_bytes"`
	// OutputBytes and OutputFiles count the objects written, the
	// OutputDirManifest aside.
	OutputBytes int64 `json:"output_bytes"`
	OutputFiles int   `json:"output_files"`
	// DurationMS is the record's whole time, ProgramMS the program's, from
	// its start to its exit.
	DurationMS int64 `json:"duration_ms"`
	ProgramMS  int64 `json:"program_ms"`
	// InputRetries counts the ranged GETs that resumed the input after
	// its body broke.
	InputRetries int `json:"input_retries,omitempty"`
}

// Handle processes every record of ev in order. An s3:TestEvent (no
// records) succeeds doing nothing. Keys not under the input prefix, not
// ending in the input suffix, or under the output prefix of the same bucket
// are skipped (a second guard against the function triggering itself). The error, if any, holds a
// *RecordError for each record that failed. The last line it logs is the
// invocation's summary (see the package documentation).
func (h *Handler) Handle(ctx context.Context, ev events.S3Event) (Result, error) {
	res := Result{Records: []RecordResult{}}
	var errs []error
	defer func(start time.Time) { h.summary(ctx, res, errs, start) }(time.Now())
	if len(ev.Records) == 0 {
		h.opts.logger.InfoContext(ctx, "event without records ignored (s3:TestEvent)")
		return res, nil
	}
	for _, rec := range ev.Records {
		r, err := h.record(ctx, rec)
		res.Records = append(res.Records, r)
		if err != nil {
			h.opts.logger.ErrorContext(ctx, "record failed", "bucket", r.Bucket, "key", r.Key, "err", err)
			errs = append(errs, err)
		}
	}
	switch len(errs) {
	case 0:
		return res, nil
	case 1:
		return res, errs[0]
	default:
		return res, fmt.Errorf("%d of %d records failed: %w", len(errs), len(ev.Records), errors.Join(errs...))
	}
}

// OutputKey returns where the output for the input key goes: the output
// prefix, the key without the input prefix, the output suffix
// (input/day1.csv → output/day1.csv).
func OutputKey(m *Manifest, key string) string {
	return m.Output.Prefix + strings.TrimPrefix(key, m.Input.Prefix) + m.Output.Suffix
}

func (h *Handler) record(ctx context.Context, rec events.S3EventRecord) (RecordResult, error) {
	start := time.Now()
	r := RecordResult{Bucket: rec.S3.Bucket.Name, Key: rec.S3.Object.Key}
	key, err := url.QueryUnescape(rec.S3.Object.Key)
	if err != nil {
		return r, &RecordError{Bucket: r.Bucket, Key: r.Key, Op: "decoding key", ExitCode: -1, Err: err}
	}
	r.Key = key
	log := h.opts.logger.With("bucket", r.Bucket, "key", key)
	outBucket := h.m.Output.Bucket
	if outBucket == "" {
		outBucket = r.Bucket
	}
	switch {
	case r.Bucket == "" || key == "":
		r.Skipped = "no bucket or key"
	case outBucket == r.Bucket && strings.HasPrefix(key, h.m.Output.Prefix):
		r.Skipped = fmt.Sprintf("key is under the output prefix %q", h.m.Output.Prefix)
	case !strings.HasPrefix(key, h.m.Input.Prefix):
		r.Skipped = fmt.Sprintf("key is not under the input prefix %q", h.m.Input.Prefix)
	case !strings.HasSuffix(key, h.m.Input.Suffix):
		r.Skipped = fmt.Sprintf("key does not end in %q", h.m.Input.Suffix)
	}
	if r.Skipped != "" {
		log.InfoContext(ctx, "record skipped", "reason", r.Skipped)
		return r, nil
	}
	r.OutputBucket = outBucket
	r.OutputKey = OutputKey(h.m, key)
	dest := "s3://" + r.OutputBucket + "/" + r.OutputKey
	if h.m.Output.Dir != "" && !hasOutputPlaceholder(h.m.Args) {
		r.OutputKey = "" // nothing goes there
		dest = "s3://" + r.OutputBucket + "/" + OutputDirPrefix(h.m, key)
	}
	log.InfoContext(ctx, "processing", "output", dest)
	err = h.run(ctx, &r, pinOf(rec.S3.Object))
	r.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		// Nothing stays written.
		r.OutputFiles = 0
		if writesFiles(h.m) {
			r.OutputBytes = 0
		}
	}
	if err == nil {
		log.InfoContext(ctx, "done", "input_bytes", r.InputBytes, "output_bytes", r.OutputBytes, "output_files", r.OutputFiles,
			"input_retries", r.InputRetries, "program_ms", r.ProgramMS, "ms", r.DurationMS)
	}
	return r, err
}

// run streams the object, the version pin names, through the program into
// the output object.
func (h *Handler) run(ctx context.Context, r *RecordResult, pin inputPin) error {
	fail := func(op string, err error) *RecordError {
		return &RecordError{Bucket: r.Bucket, Key: r.Key, Op: op, ExitCode: -1, Err: err}
	}
	body, err := openInput(ctx, h.opts.s3, r.Bucket, r.Key, pin, h.opts.inputBackoff, h.opts.logger)
	if err != nil {
		return fail("reading input", err)
	}
	defer body.Close()
	defer func() { r.InputRetries = int(body.retries.Load()) }()

	outs, err := h.prepareOutputs(ctx)
	if err != nil {
		return fail("running program", err)
	}
	defer outs.cleanup()
	if outs.snap != nil {
		defer h.resetOutDir(ctx, outs.snap)
	}
	var inputName string
	var stdin *os.File
	var stdinW *os.File
	if h.m.Input.Mode == InputFile {
		dir, err := os.MkdirTemp("", "extract-input-")
		if err != nil {
			return fail("reading input", err)
		}
		defer os.RemoveAll(dir)
		// A fixed name: the key, which the uploader chooses, must not
		// reach the program's argv, where a shell may read it as code.
		inputName = filepath.Join(dir, inputFileName(h.m.Input.Suffix))
		if err := download(inputName, body); err != nil {
			return fail("reading input", err)
		}
	} else {
		stdin, stdinW, err = os.Pipe()
		if err != nil {
			return fail("running program", err)
		}
		defer stdinW.Close()
		growPipe(stdinW)
	}
	// stdout: a file followed as it grows (spool_linux.go says why), or
	// a pipe.
	waitDone := make(chan struct{}) // closed once the program and its leftovers are gone
	var outR io.ReadCloser
	var outW *os.File
	var sp *spool
	if h.m.Output.Stdout != StdoutPipe {
		if sp, err = newSpool(); err != nil && !errors.Is(err, errNoSpool) {
			return fail("running program", fmt.Errorf("creating the file for its stdout: %w", err))
		}
	}
	var outPipe *os.File
	if sp != nil {
		outR, outW = sp, sp.w
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail("running program", err)
		}
		growPipe(pr)
		outPipe, outW = pr, pw
		outR = &exitReader{f: pr, exited: waitDone}
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return fail("running program", err)
	}
	defer errR.Close()

	cmd := &exec.Cmd{
		Path:        h.program,
		Args:        h.programArgs(inputName, outs),
		Env:         h.env,
		Dir:         h.dir,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	progStart := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if stdin != nil {
		stdin.Close()
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(h.program); serr == nil {
				// The file is there: the kernel did not find its loader.
				err = fmt.Errorf("%w (its program interpreter is missing: is the link %q to the task root in place?)", err, h.m.LinkDir)
			}
		}
		return fail("running program", fmt.Errorf("starting %s: %w", h.m.Program, err))
	}
	pgid := cmd.Process.Pid
	started := programStart(pgid)
	killGroup := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

	// stderr: logged line by line, the last lines kept.
	tail := newLineTail(StderrLines)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		_ = h.logLines(ctx, errR, r.Key, streamStderr, tail)
	}()

	// stdin: the object's body, copied until it ends or the program stops
	// reading. Only a read error (from S3) fails the record.
	var readErr error
	stdinDone := make(chan struct{})
	if stdinW != nil {
		go func() {
			defer close(stdinDone)
			_, readErr = copyToPipe(stdinW, body)
			stdinW.Close()
		}()
	} else {
		close(stdinDone)
	}

	// The deadline kills the whole process group killMargin before it.
	var timedOut atomic.Bool
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		r.ProgramMS = time.Since(progStart).Milliseconds()
		// Leftovers of the group, or daemons the program started in
		// groups of their own, would hold the pipes open: they go with
		// it. What escapes (the bootstrap is no subreaper) is not waited
		// for: stdin stops, and stdout ends where the pipe runs dry.
		killGroup()
		killLeftovers(pgid, started)
		if stdinW != nil {
			_ = stdinW.SetWriteDeadline(time.Now())
		}
		close(waitDone)
		if sp == nil {
			// Wakes a read waiting on the pipe: it reads again, with a
			// deadline of its own.
			_ = outPipe.SetReadDeadline(time.Now())
		}
	}()
	if sp != nil {
		sp.start(pgid, waitDone)
	}
	var timer <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(dl) - h.opts.killMargin)
		defer t.Stop()
		timer = t.C
	}
	go func() {
		select {
		case <-timer:
			timedOut.Store(true)
			killGroup()
		case <-ctx.Done():
			// Both may be ready when this goroutine runs late: a
			// deadline is a time-out either way.
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				timedOut.Store(true)
			}
			killGroup()
		case <-waitDone:
		}
	}()

	// The upload only completes when the program succeeded: at the end of
	// its stdout, the gate waits for its exit and turns a failure into a
	// read error, which makes the uploader abort.
	var progErr error
	gate := &gateReader{r: outR, wait: func() error {
		<-waitDone
		<-stdinDone
		progErr = h.status(r, waitErr, readErr, timedOut.Load())
		if progErr != nil {
			return errProgramFailed
		}
		return nil
	}}
	upErr := h.consumeStdout(ctx, r, outs, gate)
	if upErr != nil {
		killGroup()
		outR.Close()
	}
	<-waitDone
	<-stdinDone
	select {
	case <-stderrDone:
	case <-time.After(time.Second):
	}
	r.InputBytes = body.n.Load()
	if !writesFiles(h.m) {
		r.OutputBytes, r.OutputFiles = gate.n, 1
	}
	if !gate.checked {
		// The upload failed before the end of the program's output.
		e := fail("writing output", fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, r.OutputKey, upErr))
		if upErr == nil {
			e.Err = errors.New("upload ended before the program's output did")
		}
		e.Stderr = tail.lines()
		return e
	}
	if progErr != nil {
		var re *RecordError
		if errors.As(progErr, &re) {
			re.Stderr = tail.lines()
			h.diagnoseStorage(re)
		}
		return progErr
	}
	if upErr != nil {
		e := fail("writing output", fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, r.OutputKey, upErr))
		e.Stderr = tail.lines()
		return e
	}
	return h.finishOutputs(ctx, r, outs, pin)
}

// exitGrace is how long, once the program has exited, a read of its stdout
// pipe waits for bytes before taking the output as ended: everything the
// program wrote is in the pipe by then, so only a descendant that escaped
// the kill could still write.
const exitGrace = 100 * time.Millisecond

// exitReader reads the program's stdout pipe, and once the program has
// exited, only what the pipe holds: a read that finds it empty for
// exitGrace ends the output, even if a daemon the program started still
// holds the pipe open.
type exitReader struct {
	f      *os.File
	exited <-chan struct{}
}

func (e *exitReader) Read(p []byte) (int, error) {
	for {
		var deadline time.Time
		select {
		case <-e.exited:
			deadline = time.Now().Add(exitGrace)
			_ = e.f.SetReadDeadline(deadline)
		default:
		}
		n, err := e.f.Read(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if deadline.IsZero() || time.Now().Before(deadline) {
				continue // woken by the exit, not by its own deadline
			}
			return n, io.EOF
		}
		return n, err
	}
}

func (e *exitReader) Close() error { return e.f.Close() }

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

var errProgramFailed = errors.New("program failed")

// gateReader passes r through and, at its end, returns wait's error
// instead of io.EOF when there is one.
type gateReader struct {
	r       io.Reader
	wait    func() error
	n       int64
	checked bool
	err     error
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.checked {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if err == io.EOF {
		g.checked = true
		g.err = io.EOF
		if werr := g.wait(); werr != nil {
			g.err = werr
		}
		return n, g.err
	}
	return n, err
}

// copyToPipe copies src to the program's stdin and returns src's read
// error; a write error (the program stopped reading) is not an error.
func copyToPipe(w io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// Drain nothing more: the program has closed its stdin.
				return total, nil
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// inputFileName is the name of the input file: "input" plus the trigger's
// suffix when it is an extension (".csv", ".tar.gz"), else plus the
// suffix's last extension ("_day.csv" → ".csv"); extensions of other
// characters than letters, digits, '.', '_' and '-' are left out. The
// key never counts: every key processed ends in the suffix anyway.
func inputFileName(suffix string) string {
	ext := suffix
	if !strings.HasPrefix(ext, ".") || !plainExt(ext) {
		ext = path.Ext(suffix)
	}
	if !plainExt(ext) {
		return "input"
	}
	return "input" + ext
}

// plainExt reports whether ext is a dot followed by letters, digits, '.',
// '_' or '-', at least one not a dot.
func plainExt(ext string) bool {
	if len(ext) < 2 || ext[0] != '.' || strings.Trim(ext, ".") == "" {
		return false
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// download writes src to a new file at name.
func download(name string, src io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
