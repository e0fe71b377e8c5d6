package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// dirUploadConcurrency bounds the files of Output.Dir uploaded at once.
const dirUploadConcurrency = 4

// OutputManifest is the content of OutputDirManifest, the object written
// last beside the files of an Output.Dir run.
type OutputManifest struct {
	// Version of this format: 1.
	Version int `json:"version"`
	// Input names the object the run read, at the version its event named.
	Input ManifestInput `json:"input"`
	// RequestID is the Lambda invocation's.
	RequestID string `json:"request_id,omitempty"`
	// Time is when the manifest was written (RFC 3339, UTC).
	Time string `json:"time"`
	// Files are the regular files the run created or changed in
	// Output.Dir, sorted by path.
	Files []OutputObject `json:"files"`
	// Output is the file that replaced OutputPlaceholder, when Args hold
	// it; Stdout the program's stdout, with Output.StdoutAlso.
	Output *OutputObject `json:"output,omitempty"`
	Stdout *OutputObject `json:"stdout,omitempty"`
}

// ManifestInput names a run's input object.
type ManifestInput struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"version_id,omitempty"`
}

// OutputObject is one object a run wrote.
type OutputObject struct {
	// Path is the file's path relative to Output.Dir, slash-separated
	// (only for the directory's files).
	Path   string `json:"path,omitempty"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// OutputDirPrefix returns the key prefix of an Output.Dir run's files for
// the input key: Output.Prefix, the key without Input.Prefix and
// Input.Suffix, "/" (input/day1.csv → output/day1/).
func OutputDirPrefix(m *Manifest, key string) string {
	stem := strings.TrimSuffix(strings.TrimPrefix(key, m.Input.Prefix), m.Input.Suffix)
	return m.Output.Prefix + stem + "/"
}

// outDirPath returns the host directory the program writes Output.Dir's
// files into, and whether it is in the writable copy of the WORKDIR: when
// Dir is the WORKDIR, or under a WORKDIR (not /) that has a writable copy,
// so that relative paths from the working directory reach it; else a copy
// of its own under the temporary directory, made by Setup.
func outDirPath(m *Manifest, taskRoot string) (string, bool) {
	if m.Output.Dir == "" {
		return "", false
	}
	if dir, ok := writableWorkDir(m, taskRoot); ok {
		wd, od := path.Clean("/"+m.WorkDir), path.Clean("/"+m.Output.Dir)
		if od == wd {
			return dir, true
		}
		if wd != "/" && strings.HasPrefix(od, wd+"/") {
			return filepath.Join(dir, filepath.FromSlash(od[len(wd)+1:])), true
		}
	}
	sum := sha256.Sum256([]byte(taskRoot + "\x00" + m.Output.Dir))
	return filepath.Join(os.TempDir(), "extract-outdir-"+hex.EncodeToString(sum[:6])), false
}

// isWorkDir reports whether Output.Dir is the WORKDIR.
func isWorkDir(m *Manifest) bool {
	return m.Output.Dir != "" && path.Clean("/"+m.Output.Dir) == path.Clean("/"+m.WorkDir)
}

// fileState is what tells a file the run created or changed.
type fileState struct {
	mode  fs.FileMode // type bits only
	size  int64
	mtime int64
	ino   uint64
}

// snapshot lists the tree at dir: every entry's state by slash-separated
// relative path. Symlinks are not followed.
func snapshot(ctx context.Context, dir string) (map[string]fileState, error) {
	snap := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		st.ino = fileIno(fi)
		snap[filepath.ToSlash(rel)] = st
		return nil
	})
	return snap, err
}

// changedFiles returns the regular files of now not in before or changed
// since (size, modification time, inode), sorted; it logs the new
// symlinks, which are not uploaded.
func (h *Handler) changedFiles(ctx context.Context, before, now map[string]fileState) []string {
	var files []string
	for rel, st := range now {
		if old, ok := before[rel]; ok && old == st {
			continue
		}
		switch {
		case st.mode.IsRegular():
			files = append(files, rel)
		case st.mode&fs.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(h.outDir, filepath.FromSlash(rel)))
			where := "inside"
			if t := path.Clean(path.Join(path.Dir(rel), target)); path.IsAbs(target) || t == ".." || strings.HasPrefix(t, "../") {
				where = "outside"
			}
			h.opts.logger.InfoContext(ctx, "output directory: a symlink is not uploaded (only regular files are)", "path", rel, "target", target, "points", where+" the directory")
		}
	}
	slices.Sort(files)
	return files
}

// uploadOutputDir uploads the files the run created or changed in
// Output.Dir, then the manifest.
func (h *Handler) uploadOutputDir(ctx context.Context, r *RecordResult, o *outputRun, pin inputPin) error {
	fail := func(err error) error {
		return &RecordError{Bucket: r.Bucket, Key: r.Key, Op: "writing output", Err: err}
	}
	now, err := snapshot(ctx, h.outDir)
	if err != nil {
		return fail(fmt.Errorf("listing the output directory %q: %w", h.m.Output.Dir, err))
	}
	files := h.changedFiles(ctx, o.snap, now)
	for _, rel := range files {
		if now[rel].size > maxObjectSize {
			return fail(fmt.Errorf("output file %q is %d bytes, over S3's limit of %d for one object", rel, now[rel].size, int64(maxObjectSize)))
		}
	}
	prefix := OutputDirPrefix(h.m, r.Key)
	objs, err := h.uploadFiles(ctx, r.OutputBucket, prefix, files, o)
	if err != nil {
		return fail(err)
	}
	man := OutputManifest{Version: 1, Input: ManifestInput{Bucket: r.Bucket, Key: r.Key, ETag: pin.etag, VersionID: pin.versionID},
		RequestID: requestID(ctx), Time: time.Now().UTC().Format(time.RFC3339Nano), Files: objs, Output: o.output, Stdout: o.stdout}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fail(err)
	}
	key := prefix + OutputDirManifest
	o.written = append(o.written, key)
	if _, err := h.opts.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &r.OutputBucket, Key: &key, Body: bytes.NewReader(append(b, '\n')),
		ContentType: aws.String("application/json"), ChecksumAlgorithm: h.uploader.checksum}); err != nil {
		return fail(fmt.Errorf("s3://%s/%s: %w", r.OutputBucket, key, err))
	}
	for _, f := range objs {
		r.OutputBytes += f.Size
	}
	r.OutputFiles += len(objs)
	r.ManifestKey = key
	return nil
}

// uploadFiles uploads the files of the output directory, at most
// dirUploadConcurrency at once, each to prefix + its relative path, and
// returns them in order. After the first error it starts no more uploads
// and waits for those under way: each key is in o.written from the start
// of its upload, so that one whose outcome is unknown is deleted too.
func (h *Handler) uploadFiles(ctx context.Context, bucket, prefix string, files []string, o *outputRun) ([]OutputObject, error) {
	objs := make([]OutputObject, len(files))
	sem := make(chan struct{}, dirUploadConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return first != nil }
	for i, rel := range files {
		sem <- struct{}{}
		if failed() || ctx.Err() != nil {
			break
		}
		key := prefix + rel
		o.written = append(o.written, key)
		wg.Go(func() {
			defer func() { <-sem }()
			obj, err := h.uploadFile(ctx, bucket, key, filepath.Join(h.outDir, filepath.FromSlash(rel)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("output file %q: %w", rel, err)
			}
			obj.Path = rel
			objs[i] = obj
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return nil, first
	}
	return objs, nil
}

// uploadFile hashes the file at name, then uploads it to key: with one
// PutObject streamed from the file when it fits in a part, else through
// the uploader (one such upload at a time: its part buffers are shared).
func (h *Handler) uploadFile(ctx context.Context, bucket, key, name string) (OutputObject, error) {
	// The listing saw a regular file: a symlink put there since is not
	// followed.
	f, err := os.OpenFile(name, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return OutputObject{}, err
	}
	defer f.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, f)
	if err != nil {
		return OutputObject{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return OutputObject{}, err
	}
	obj := OutputObject{Key: key, Size: n, SHA256: hex.EncodeToString(sum.Sum(nil))}
	if n <= int64(h.uploader.partSize) {
		_, err = h.opts.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: io.NewSectionReader(f, 0, n),
			ContentLength: &n, ChecksumAlgorithm: h.uploader.checksum})
	} else {
		h.bigUpload.Lock()
		err = h.uploader.upload(ctx, bucket, key, io.LimitReader(f, n))
		h.bigUpload.Unlock()
	}
	if err != nil {
		return OutputObject{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	return obj, nil
}

// resetOutDir puts Output.Dir back as it was before the run, so runs do not
// fill the ephemeral storage: what the run created is removed, and the
// package's files it changed or removed are copied back.
func (h *Handler) resetOutDir(ctx context.Context, before map[string]fileState) {
	now, err := snapshot(context.WithoutCancel(ctx), h.outDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.opts.logger.WarnContext(ctx, "output directory: listing it after the run", "err", err)
	}
	for rel, st := range now {
		if old, ok := before[rel]; ok && (old == st || old.mode.IsDir() && st.mode.IsDir()) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(h.outDir, filepath.FromSlash(rel)))
	}
	for rel, old := range before {
		if st, ok := now[rel]; ok && st == old || !old.mode.IsRegular() {
			continue
		}
		src := filepath.Join(h.outSrc, filepath.FromSlash(rel))
		dst := filepath.Join(h.outDir, filepath.FromSlash(rel))
		if fi, err := os.Lstat(src); err == nil && fi.Mode().IsRegular() {
			_ = os.MkdirAll(filepath.Dir(dst), 0o755)
			_ = os.Remove(dst)
			if err := copyFile(src, dst, fi.Mode().Perm()|0o600); err != nil {
				h.opts.logger.WarnContext(ctx, "output directory: restoring a file of the package", "path", rel, "err", err)
			}
		}
	}
}

// diagnoseStorage adds to the error of a failed run that it ran out of
// ephemeral storage, when its stderr says a write found no space or /tmp
// is (nearly) full.
func (h *Handler) diagnoseStorage(re *RecordError) {
	serr := storageError(os.TempDir(), false)
	if serr == nil && noSpaceSymptom(re.Stderr) {
		serr = storageError(os.TempDir(), true)
	}
	if serr != nil {
		re.Err = errors.Join(serr, re.Err)
	}
}

// ErrStorageFull is wrapped by the error of a run that filled the
// function's ephemeral storage (/tmp).
var ErrStorageFull = errors.New("the function needs more ephemeral storage")

// storageFullMargin: a file system with less free space than this is
// taken as full.
const storageFullMargin = 1 << 20

// storageError returns an error wrapping ErrStorageFull, naming the
// storage's size, when the file system of dir is (nearly) full or
// symptom is set; nil otherwise.
func storageError(dir string, symptom bool) error {
	free, size, ok := fsSpace(dir)
	if !ok {
		return nil
	}
	if !symptom && free >= storageFullMargin {
		return nil
	}
	return fmt.Errorf("out of space: the ephemeral storage (%s, %d MiB) has %d KiB free: %w", dir, size>>20, free>>10, ErrStorageFull)
}

// noSpaceSymptom reports whether the program's last stderr lines say a
// write failed for want of space.
func noSpaceSymptom(lines []string) bool {
	for _, l := range lines {
		l = strings.ToLower(l)
		for _, s := range []string{"no space left on device", "enospc", "disk full", "disk quota exceeded", "file too large"} {
			if strings.Contains(l, s) {
				return true
			}
		}
	}
	return false
}
