package runtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log formats, as Lambda sets AWS_LAMBDA_LOG_FORMAT for the function's
// LoggingConfig.LogFormat.
const (
	LogFormatText = "Text"
	LogFormatJSON = "JSON"
)

// Program line streams (the "stream" attribute of a program line).
const (
	streamStderr = "stderr"
	streamStdout = "stdout"
)

// NewLogger returns the bootstrap's logger writing to w: with format
// LogFormatJSON (any case), one JSON object per line with the keys
// timestamp (RFC 3339, nanoseconds, UTC), level, message and requestId
// (the invocation's, when the context carries one), then the record's
// attributes; else slog's text lines, with requestId=... as the last
// attribute during an invocation.
func NewLogger(w io.Writer, format string) *slog.Logger {
	return slog.New(newLogHandler(w, format))
}

func newLogHandler(w io.Writer, format string) slog.Handler {
	if strings.EqualFold(format, LogFormatJSON) {
		return requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: lambdaJSONKeys})}
	}
	return requestIDHandler{slog.NewTextHandler(w, nil)}
}

// lambdaJSONKeys renames slog's built-in keys to those of Lambda's JSON
// log format: time → timestamp (UTC), msg → message.
func lambdaJSONKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("timestamp", a.Value.Time().UTC().Format(time.RFC3339Nano))
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// requestIDHandler adds the context's request ID to every record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

type requestIDKey struct{}

// withRequestID returns ctx carrying the invocation's request ID.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID returns the request ID ctx carries, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// programLog writes the program's lines to the function's log: in JSON
// format as objects with "source":"program", "stream" and "key"; in text
// as "[request] key: line" (stderr) or "[request] key (stdout): line",
// where request is the request ID's first 8 characters.
type programLog struct {
	mu   sync.Mutex
	w    io.Writer
	json *slog.Logger // nil in text format
}

func newProgramLog(w io.Writer, format string) *programLog {
	p := &programLog{w: w}
	if strings.EqualFold(format, LogFormatJSON) {
		p.json = slog.New(newLogHandler(lockedWriter{&p.mu, w}, format))
	}
	return p
}

func (p *programLog) line(ctx context.Context, key, stream, s string) {
	if p.json != nil {
		p.json.LogAttrs(ctx, slog.LevelInfo, s, slog.String("source", "program"), slog.String("stream", stream), slog.String("key", key))
		return
	}
	var prefix string
	if id := requestID(ctx); id != "" {
		prefix = "[" + id[:min(8, len(id))] + "] "
	}
	tag := ""
	if stream == streamStdout {
		tag = " (stdout)"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s%s%s: %s\n", prefix, key, tag, s)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// logLines writes each line of r to the program log, and keeps the last
// ones in tail when tail is not nil. It returns r's error, nil at io.EOF.
func (h *Handler) logLines(ctx context.Context, r io.Reader, key, stream string, tail *lineTail) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	emit := func() {
		s := string(line)
		if tail != nil {
			tail.add(s)
		}
		h.plog.line(ctx, key, stream, s)
	}
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(line)+len(chunk) <= maxLineLen {
			line = append(line, chunk...)
		}
		if err != nil {
			if len(line) > 0 {
				emit()
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
		if isPrefix {
			continue
		}
		emit()
		line = line[:0]
	}
}

// lineTail keeps the last n lines.
type lineTail struct {
	mu   sync.Mutex
	n    int
	buf  []string
	next int
	full bool
}

func newLineTail(n int) *lineTail { return &lineTail{n: n, buf: make([]string, n)} }

func (t *lineTail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf[t.next] = s
	t.next = (t.next + 1) % t.n
	if t.next == 0 {
		t.full = true
	}
}

func (t *lineTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return append([]string(nil), t.buf[:t.next]...)
	}
	return append(append([]string(nil), t.buf[t.next:]...), t.buf[:t.next]...)
}

// summary logs the invocation's one summary line: how many records were
// processed, skipped and failed, the bytes read and written, the objects
// written, the program's wall time (start to exit, summed over records),
// the transfer time (the records' total time minus the program's: the
// input's download before the program starts in file mode, the uploads
// after it exits; a transfer that overlaps the run, stdin streamed in or
// stdout uploaded as it grows, counts as program time), the exit status
// (0, or the last failed record's; -1 when a program did not exit
// normally or never ran) and the input's resumed reads.
func (h *Handler) summary(ctx context.Context, res Result, errs []error, start time.Time) {
	var in, out, total, prog int64
	var files, retries, processed, skipped int
	for _, r := range res.Records {
		if r.Skipped != "" {
			skipped++
			continue
		}
		processed++
		in += r.InputBytes
		out += r.OutputBytes
		files += r.OutputFiles
		total += r.DurationMS
		prog += r.ProgramMS
		retries += r.InputRetries
	}
	status := 0
	for _, err := range errs {
		status = exitStatus(err)
	}
	h.opts.logger.LogAttrs(ctx, slog.LevelInfo, "invocation summary",
		slog.Int("records", len(res.Records)), slog.Int("processed", processed), slog.Int("skipped", skipped), slog.Int("failed", len(errs)),
		slog.Int64("input_bytes", in), slog.Int64("output_bytes", out), slog.Int("output_files", files),
		slog.Int64("program_ms", prog), slog.Int64("transfer_ms", max(total-prog, 0)), slog.Int64("total_ms", time.Since(start).Milliseconds()),
		slog.Int("exit_status", status), slog.Int("input_retries", retries))
}
