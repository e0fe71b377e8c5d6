package local

import (
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

var localCRCTable = crc32.MakeTable(crc32.Castagnoli)

// localStore writes src to a new file in dir and returns the object.
func localStore(dir string, src io.Reader) (*localObject, error) {
	f, err := os.CreateTemp(dir, ".obj-*")
	if err != nil {
		return nil, err
	}
	h := crc32.New(localCRCTable)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, &s3Error{http.StatusBadRequest, "IncompleteBody", err.Error()}
	}
	return &localObject{files: []string{f.Name()}, sizes: []int64{n}, etag: localETag(h, ""), modTime: time.Now()}, nil
}

func localETag(h hash.Hash, suffix string) string {
	return `"` + hex.EncodeToString(h.Sum(nil)) + suffix + `"`
}

// commit publishes o as bucket/key, replacing an older version.
func (s *S3) commit(bucket, key string, o *localObject) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucket]
	if !ok {
		o.remove()
		return &s3Error{http.StatusNotFound, "NoSuchBucket", "the bucket " + bucket + " does not exist"}
	}
	if old, ok := b[key]; ok {
		old.remove()
	}
	b[key] = o
	return nil
}

func (s *S3) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if _, err := s.bucket(bucket); err != nil {
		return err
	}
	o, err := localStore(filepath.Join(s.dir, bucket), s3Body(r))
	if err != nil {
		return err
	}
	o.contentType = r.Header.Get("Content-Type")
	if err := s.commit(bucket, key, o); err != nil {
		return err
	}
	w.Header().Set("ETag", o.etag)
	w.WriteHeader(http.StatusOK)
	return nil
}

// PutObject stores data as bucket/key.
func (s *S3) PutObject(bucket, key string, data io.Reader) error {
	if _, err := s.bucket(bucket); err != nil {
		return err
	}
	o, err := localStore(filepath.Join(s.dir, bucket), data)
	if err != nil {
		return err
	}
	return s.commit(bucket, key, o)
}

// Object opens bucket/key for reading.
func (s *S3) Object(bucket, key string) (io.ReadSeekCloser, error) {
	o, err := s.object(bucket, key)
	if err != nil {
		return nil, err
	}
	return o.open()
}

func (s *S3) object(bucket, key string) (*localObject, error) {
	b, err := s.bucket(bucket)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := b[key]
	if !ok {
		return nil, &s3Error{http.StatusNotFound, "NoSuchKey", "the key " + key + " does not exist"}
	}
	return o, nil
}

func (s *S3) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	o, err := s.object(bucket, key)
	if err != nil {
		return err
	}
	f, err := o.open()
	if err != nil {
		// Replaced between the lookup and the open: the newer version.
		if o, err = s.object(bucket, key); err != nil {
			return err
		}
		if f, err = o.open(); err != nil {
			return err
		}
	}
	defer f.Close()
	h := w.Header()
	h.Set("ETag", o.etag)
	ct := o.contentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Accept-Ranges", "bytes")
	http.ServeContent(w, r, "", o.modTime, f)
	return nil
}

func (s *S3) deleteObject(w http.ResponseWriter, bucket, key string) error {
	b, err := s.bucket(bucket)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if o, ok := b[key]; ok {
		o.remove()
		delete(b, key)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// length is the object's size.
func (o *localObject) length() int64 {
	var n int64
	for _, s := range o.sizes {
		n += s
	}
	return n
}

// remove deletes the object's files.
func (o *localObject) remove() {
	for _, f := range o.files {
		os.Remove(f)
	}
	if o.dir != "" {
		os.RemoveAll(o.dir)
	}
}

// open opens the object for reading: its file itself when it has one (so a
// GET can send it with sendfile), else a reader over its parts in order.
func (o *localObject) open() (io.ReadSeekCloser, error) {
	if len(o.files) == 1 {
		return os.Open(o.files[0])
	}
	p := &partsReader{sizes: o.sizes}
	for _, name := range o.files {
		f, err := os.Open(name)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.files = append(p.files, f)
	}
	return struct {
		*io.SectionReader
		io.Closer
	}{io.NewSectionReader(p, 0, o.length()), p}, nil
}

// partsReader reads files as if they were one, in order.
type partsReader struct {
	files []*os.File
	sizes []int64
}

func (p *partsReader) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for i, f := range p.files {
		if len(b) == 0 {
			break
		}
		if off >= p.sizes[i] {
			off -= p.sizes[i]
			continue
		}
		want := min(int64(len(b)), p.sizes[i]-off)
		m, err := f.ReadAt(b[:want], off)
		n += m
		if err != nil && !(err == io.EOF && int64(m) == want) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // a part file shrank
			}
			return n, err
		}
		b, off = b[m:], 0
	}
	if len(b) > 0 {
		return n, io.EOF
	}
	return n, nil
}

func (p *partsReader) Close() error {
	for _, f := range p.files {
		f.Close()
	}
	return nil
}
