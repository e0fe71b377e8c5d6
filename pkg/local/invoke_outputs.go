package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// InvokeOutput is one object a WithCSV invocation's run wrote.
type InvokeOutput struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	// Path is the local file WithSaveOutputs wrote it to.
	Path string `json:"path,omitempty"`
}

// maxOutputManifest bounds the _manifest.json Invoke reads.
const maxOutputManifest = 16 << 20

// WithSaveOutputs saves every object a WithCSV invocation's run wrote —
// the output object, the kept stdout (OUTPUT_KEY.stdout), an output
// directory's files and its _manifest.json — under dir, each at its key
// without the package's output prefix ("output/day1/plots/a.png" →
// dir/day1/plots/a.png), and records the paths in the result's Outputs.
// dir is created if missing; a key that is no safe relative path ("..",
// an empty element) is refused, and nothing is written outside dir,
// symlinks there included. The output object is then not streamed to
// WithOutputWriter nor kept in the result's Output.
func WithSaveOutputs(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("empty directory for the outputs")
		}
		o.saveDir = dir
		return nil
	}
}

// fetchOutput reads what the function wrote for the CSV: it lists the
// objects in the result's Outputs and saves them (WithSaveOutputs), or
// reads the main one into Output or WithOutputWriter's writer.
func (inv *invocation) fetchOutput(ctx context.Context, res *InvokeResult) error {
	var r xruntime.Result
	if err := json.Unmarshal(res.Response, &r); err != nil {
		return fmt.Errorf("reading the function's response: %w", err)
	}
	if len(r.Records) != 1 {
		return fmt.Errorf("the function's response has %d records, want 1", len(r.Records))
	}
	rec := r.Records[0]
	if rec.Skipped != "" {
		return fmt.Errorf("the function skipped s3://%s/%s: %s", rec.Bucket, rec.Key, rec.Skipped)
	}
	res.OutputBucket, res.OutputKey = rec.OutputBucket, rec.OutputKey
	objs, main, err := inv.outputObjects(ctx, rec)
	if err != nil {
		return err
	}
	res.Outputs = objs
	if inv.o.saveDir != "" {
		return inv.saveOutputs(ctx, res.Outputs)
	}
	for i := range res.Outputs {
		if res.Outputs[i].Key != main {
			continue
		}
		w := inv.o.output
		var buf bytes.Buffer
		if w == nil {
			w = &buf
		}
		n, err := inv.copyObject(ctx, w, rec.OutputBucket, main)
		if err != nil {
			return err
		}
		res.Outputs[i].Size = n
		if inv.o.output == nil {
			res.Output = buf.Bytes()
		}
	}
	return nil
}

// outputObjects lists the objects the record's run wrote and names the
// main one: with an output directory, those its _manifest.json names
// (the "{output}" file, the kept stdout, the directory's files) and the
// manifest itself, the main one being the "{output}" file or else the
// manifest; without one, the output object (the main one) and the kept
// stdout. Sizes not in a manifest are read from S3.
func (inv *invocation) outputObjects(ctx context.Context, rec xruntime.RecordResult) ([]InvokeOutput, string, error) {
	b := rec.OutputBucket
	if rec.ManifestKey == "" {
		keys := []string{rec.OutputKey}
		if rec.StdoutKey != "" {
			keys = append(keys, rec.StdoutKey)
		}
		var objs []InvokeOutput
		for _, k := range keys {
			size, err := inv.objectSize(ctx, b, k)
			if err != nil {
				return nil, "", err
			}
			objs = append(objs, InvokeOutput{Bucket: b, Key: k, Size: size})
		}
		return objs, rec.OutputKey, nil
	}
	var buf bytes.Buffer
	if _, err := inv.copyObject(ctx, &limitedWriter{w: &buf, n: maxOutputManifest}, b, rec.ManifestKey); err != nil {
		return nil, "", err
	}
	var m xruntime.OutputManifest
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		return nil, "", fmt.Errorf("reading s3://%s/%s: %w", b, rec.ManifestKey, err)
	}
	var objs []InvokeOutput
	main := rec.ManifestKey
	for _, o := range []*xruntime.OutputObject{m.Output, m.Stdout} {
		if o != nil {
			objs = append(objs, InvokeOutput{Bucket: b, Key: o.Key, Size: o.Size})
		}
	}
	if m.Output != nil {
		main = m.Output.Key
	}
	for _, f := range m.Files {
		objs = append(objs, InvokeOutput{Bucket: b, Key: f.Key, Size: f.Size})
	}
	objs = append(objs, InvokeOutput{Bucket: b, Key: rec.ManifestKey, Size: int64(buf.Len())})
	return objs, main, nil
}

// saveOutputs writes each object under the save directory (see
// WithSaveOutputs), each to a temporary name first, renamed once complete.
func (inv *invocation) saveOutputs(ctx context.Context, objs []InvokeOutput) error {
	dir := inv.o.saveDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("opening the output directory: %w", err)
	}
	defer root.Close()
	for i, o := range objs {
		rel, err := localOutputPath(o.Key, inv.outputPrefix)
		if err != nil {
			return err
		}
		if d := path.Dir(rel); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("saving s3://%s/%s: %w", o.Bucket, o.Key, err)
			}
		}
		tmp := rel + ".extract-partial"
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("saving s3://%s/%s: %w", o.Bucket, o.Key, err)
		}
		n, err := inv.copyObject(ctx, f, o.Bucket, o.Key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = root.Rename(tmp, rel)
		}
		if err != nil {
			_ = root.Remove(tmp)
			return fmt.Errorf("saving s3://%s/%s: %w", o.Bucket, o.Key, err)
		}
		objs[i].Size = n
		objs[i].Path = filepath.Join(dir, filepath.FromSlash(rel))
	}
	return nil
}

// localOutputPath is the relative local path of an output key: the key
// without the output prefix. Keys come from the function: one that is no
// clean relative path is refused.
func localOutputPath(key, prefix string) (string, error) {
	rel := key
	if prefix != "" && strings.HasPrefix(key, prefix) {
		rel = strings.TrimPrefix(key, prefix)
	}
	if !fs.ValidPath(rel) || rel == "." || strings.Contains(rel, "\\") {
		return "", fmt.Errorf("output key %q: %q is not a safe relative path to save it at", key, rel)
	}
	return rel, nil
}

// copyObject copies bucket/key to w.
func (inv *invocation) copyObject(ctx context.Context, w io.Writer, bucket, key string) (int64, error) {
	var body io.ReadCloser
	if inv.s3local != nil {
		o, err := inv.s3local.Object(bucket, key)
		if err != nil {
			return 0, fmt.Errorf("reading the output s3://%s/%s: %w", bucket, key, err)
		}
		body = o
	} else {
		out, err := inv.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return 0, fmt.Errorf("reading the output s3://%s/%s: %w", bucket, key, err)
		}
		body = out.Body
	}
	defer body.Close()
	n, err := io.Copy(w, body)
	if err != nil {
		return n, fmt.Errorf("copying the output s3://%s/%s: %w", bucket, key, err)
	}
	return n, nil
}

// objectSize returns the size of bucket/key.
func (inv *invocation) objectSize(ctx context.Context, bucket, key string) (int64, error) {
	if inv.s3local != nil {
		o, err := inv.s3local.Object(bucket, key)
		if err != nil {
			return 0, fmt.Errorf("reading the output s3://%s/%s: %w", bucket, key, err)
		}
		defer o.Close()
		return o.Seek(0, io.SeekEnd)
	}
	out, err := inv.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return 0, fmt.Errorf("reading the output s3://%s/%s: %w", bucket, key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// limitedWriter fails once more than n bytes are written.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("more than %d bytes", maxOutputManifest)
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
