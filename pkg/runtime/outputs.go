package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// What the program's stdout becomes, and what else a run uploads:
//
//   - Neither OutputPlaceholder in Args nor Output.Dir: stdout is the
//     output object, at OutputKey, as it always was.
//   - Otherwise the program's files are the output (the file that replaced
//     OutputPlaceholder at OutputKey, the files of Output.Dir under
//     OutputDirPrefix), and stdout goes to the function's log line by
//     line, marked as stdout, unless Output.StdoutAlso: then it is uploaded
//     to OutputKey + StdoutSuffix.
//
// Every object a run writes is written only after the program exited 0;
// if any of them fails, those already written are deleted (DeleteObject).

// StdoutSuffix is appended to the output key to name the object that keeps
// the program's stdout with Output.StdoutAlso.
const StdoutSuffix = ".stdout"

// maxObjectSize is S3's limit for one object (5 TiB).
const maxObjectSize = 5 << 40

// writesFiles reports whether the program's files, not its stdout, are the
// output: Args hold OutputPlaceholder or the manifest names Output.Dir.
func writesFiles(m *Manifest) bool {
	return m.Output.Dir != "" || hasOutputPlaceholder(m.Args)
}

// hasOutputPlaceholder reports whether an argument holds OutputPlaceholder.
func hasOutputPlaceholder(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, OutputPlaceholder) })
}

// outputRun is what one run writes besides what reaches stdout.
type outputRun struct {
	// file is the host path that replaces OutputPlaceholder ("" without
	// it), in tmp, the run's own directory.
	file, tmp string
	// snap is Output.Dir's state before the run (nil without it).
	snap map[string]fileState
	// written lists the keys uploaded so far, deleted if the run fails.
	written []string
	// output and stdout describe the objects of the output file and,
	// with Output.StdoutAlso, of stdout, once uploaded.
	output, stdout *OutputObject
}

// prepareOutputs makes the run's {output} path and takes Output.Dir's
// snapshot.
func (h *Handler) prepareOutputs(ctx context.Context) (*outputRun, error) {
	o := &outputRun{}
	if hasOutputPlaceholder(h.m.Args) {
		dir, err := os.MkdirTemp("", "extract-output-")
		if err != nil {
			return nil, fmt.Errorf("creating the directory of the output file: %w", err)
		}
		o.tmp = dir
		o.file = filepath.Join(dir, outputFileName(h.m.Input.Suffix+h.m.Output.Suffix))
	}
	if h.outDir != "" {
		if err := os.MkdirAll(h.outDir, 0o755); err != nil {
			o.cleanup()
			return nil, fmt.Errorf("creating the output directory %q: %w", h.m.Output.Dir, err)
		}
		snap, err := snapshot(ctx, h.outDir)
		if err != nil {
			o.cleanup()
			return nil, fmt.Errorf("listing the output directory %q: %w", h.m.Output.Dir, err)
		}
		o.snap = snap
	}
	return o, nil
}

// cleanup removes the run's own directory.
func (o *outputRun) cleanup() {
	if o.tmp != "" {
		_ = os.RemoveAll(o.tmp)
	}
}

// outputFileName is the name of the file that replaces OutputPlaceholder:
// "output" plus the extension of the suffixes every output key ends in
// (input suffix, then output suffix: ".csv" → output.csv), kept only when
// it is letters, digits and dots. The key itself, which the uploader
// chooses, never counts.
func outputFileName(suffix string) string {
	ext := path.Ext(suffix)
	if len(ext) < 2 || strings.ContainsFunc(ext[1:], func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.')
	}) {
		return "output"
	}
	return "output" + ext
}

// programArgs returns the manifest's Args with InputPlaceholder replaced by
// input (file mode), OutputPlaceholder by the run's output file, and
// Output.Dir pointed at its writable copy.
func (h *Handler) programArgs(input string, o *outputRun) []string {
	args := make([]string, len(h.m.Args))
	for i, a := range h.m.Args {
		if h.m.Input.Mode == InputFile {
			a = strings.ReplaceAll(a, InputPlaceholder, input)
		}
		if o.file != "" {
			a = strings.ReplaceAll(a, OutputPlaceholder, o.file)
		}
		if h.outDir != "" {
			a = pointArg(a, path.Clean(h.m.Output.Dir), h.outDir)
			if h.m.LinkDir != "" {
				a = pointArg(a, h.m.LinkDir+"/"+RootDir+path.Clean(h.m.Output.Dir), h.outDir)
			}
		}
		args[i] = a
	}
	return args
}

// pointArg replaces dir by host in a, where a is dir or a path under it,
// or ends in "=" followed by such a path (--out=/out/x).
func pointArg(a, dir, host string) string {
	at := func(i int) bool {
		rest := a[i+len(dir):]
		return rest == "" || rest[0] == '/'
	}
	if strings.HasPrefix(a, dir) && at(0) {
		return host + a[len(dir):]
	}
	if i := strings.Index(a, "="+dir); i >= 0 && at(i+1) {
		return a[:i+1] + host + a[i+1+len(dir):]
	}
	return a
}

// consumeStdout reads the program's stdout (gate, which fails at its end
// when the program did) to where it goes: the output object, the stdout
// object, or the log.
func (h *Handler) consumeStdout(ctx context.Context, r *RecordResult, o *outputRun, gate io.Reader) error {
	switch {
	case !writesFiles(h.m):
		return h.uploader.upload(ctx, r.OutputBucket, r.OutputKey, gate)
	case h.m.Output.StdoutAlso:
		key := OutputKey(h.m, r.Key) + StdoutSuffix
		hr := &hashReader{r: gate, h: sha256.New()}
		if err := h.uploader.upload(ctx, r.OutputBucket, key, hr); err != nil {
			return err
		}
		// Deleted if the files that follow fail.
		o.written = append(o.written, key)
		o.stdout = &OutputObject{Key: key, Size: hr.n, SHA256: hex.EncodeToString(hr.h.Sum(nil))}
		return nil
	default:
		return h.logLines(ctx, gate, r.Key, streamStdout, nil)
	}
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (x *hashReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	x.h.Write(p[:n])
	x.n += int64(n)
	return n, err
}

// finishOutputs uploads, after a successful exit, the output file and the
// files of the output directory, then the directory's manifest. If one
// fails, every object the run wrote is deleted.
func (h *Handler) finishOutputs(ctx context.Context, r *RecordResult, o *outputRun, pin inputPin) error {
	if o.file == "" && h.outDir == "" && o.stdout == nil {
		return nil
	}
	// A program that exited 0 on a full /tmp may have lost writes it
	// did not check.
	err := storageError(os.TempDir(), false)
	if err != nil {
		err = &RecordError{Bucket: r.Bucket, Key: r.Key, Op: "writing output", Err: err}
	}
	if err == nil {
		err = h.uploadOutputFile(ctx, r, o)
	}
	if err == nil && h.outDir != "" {
		err = h.uploadOutputDir(ctx, r, o, pin)
	}
	if err != nil {
		h.deleteObjects(ctx, r.OutputBucket, o.written)
		return err
	}
	if o.stdout != nil {
		r.StdoutKey = o.stdout.Key
		r.OutputBytes += o.stdout.Size
		r.OutputFiles++
	}
	return nil
}

// uploadOutputFile uploads the file that replaced OutputPlaceholder to the
// output key.
func (h *Handler) uploadOutputFile(ctx context.Context, r *RecordResult, o *outputRun) error {
	if o.file == "" {
		return nil
	}
	fail := func(err error) error {
		return &RecordError{Bucket: r.Bucket, Key: r.Key, Op: "writing output", Err: err}
	}
	f, err := os.Open(o.file)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("the program exited 0 without creating its output file (%s in its arguments, %s)", OutputPlaceholder, o.file))
	}
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("the output file %s is not a regular file (%s)", o.file, fi.Mode().Type()))
	}
	if fi.Size() > maxObjectSize {
		return fail(fmt.Errorf("the output file is %d bytes, over S3's limit of %d for one object", fi.Size(), int64(maxObjectSize)))
	}
	hr := &hashReader{r: f, h: sha256.New()}
	o.written = append(o.written, r.OutputKey) // an upload that failed may still have landed
	if err := h.uploader.upload(ctx, r.OutputBucket, r.OutputKey, hr); err != nil {
		return fail(fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, r.OutputKey, err))
	}
	o.output = &OutputObject{Key: r.OutputKey, Size: hr.n, SHA256: hex.EncodeToString(hr.h.Sum(nil))}
	r.OutputBytes += fi.Size()
	r.OutputFiles++
	return nil
}

// deleteObjects removes the objects a failed run wrote, even when ctx is
// done (its deadline is often why the run failed). A failed delete is
// logged: the object stays visible, so the warning names it.
func (h *Handler) deleteObjects(ctx context.Context, bucket string, keys []string) {
	if len(keys) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, k := range keys {
		if _, err := h.opts.s3.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
			h.opts.logger.WarnContext(dctx, "deleting an output object of a failed run failed: it stays visible", "bucket", bucket, "key", k, "err", err)
		}
	}
	h.opts.logger.InfoContext(dctx, "deleted the output objects of a failed run", "bucket", bucket, "objects", len(keys))
}

// check validates the output settings against the program's args.
func (o *Output) check(args []string) []error {
	var errs []error
	if o.Dir != "" && (!path.IsAbs(o.Dir) || path.Clean(o.Dir) == "/") {
		errs = append(errs, fmt.Errorf("output dir %q is not an absolute image path below /", o.Dir))
	}
	if o.StdoutAlso && o.Dir == "" && !hasOutputPlaceholder(args) {
		errs = append(errs, fmt.Errorf("stdout_also needs %s in the args or an output dir: stdout is the output otherwise", OutputPlaceholder))
	}
	return errs
}
