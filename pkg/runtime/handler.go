package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

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
