package local

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3 is a minimal S3-compatible endpoint on 127.0.0.1 for local
// invocations and tests: path-style addressing, object bodies kept in files
// under a directory. Requests to its listener must name its address (URL's
// host) in their Host header, which defeats DNS rebinding; after
// RequireAccessKey, every request must be signed with that access key ID
// (signatures themselves are not checked).
// It serves what the SDK's client and upload manager use: CreateBucket,
// HeadBucket, ListObjectsV2 (prefix, max-keys, continuation), PutObject,
// GetObject and HeadObject (with ranges), DeleteObject and the multipart
// calls (Create, UploadPart, Complete, Abort). Bodies sent with
// Content-Encoding aws-chunked (the SDK's streaming checksum trailers) are
// decoded.
//
// ETags are content hashes (CRC-32C here, not MD5): stable for the same
// content, cheap on large objects.
type S3 struct {
	dir     string
	ownDir  bool
	ln      net.Listener
	srv     *http.Server
	logger  *slog.Logger
	mu      sync.Mutex
	buckets map[string]map[string]*localObject
	uploads map[string]*localUpload
	// accessKey, when set, is the only access key ID accepted.
	accessKey string
}

// localObject is a stored object. Its bytes are in files, in order: one
// file for a PutObject, the part files for a completed multipart upload.
// The parts are kept as they are, in the upload's directory (dir, removed
// with the object): joining them would copy the whole object once more
// before CompleteMultipartUpload could answer.
type localObject struct {
	files       []string
	sizes       []int64
	dir         string
	etag        string
	contentType string
	modTime     time.Time
}

type localUpload struct {
	bucket, key string
	contentType string
	dir         string
	parts       map[int]*localObject
}

// NewS3 starts a local S3 endpoint storing objects under dir (a new
// temporary directory, removed by Close, when dir is empty).
func NewS3(dir string, logger *slog.Logger) (*S3, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &S3{dir: dir, logger: logger, buckets: map[string]map[string]*localObject{}, uploads: map[string]*localUpload{}}
	if dir == "" {
		d, err := os.MkdirTemp("", "extract-s3-")
		if err != nil {
			return nil, fmt.Errorf("starting local S3: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("starting local S3: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if s.ownDir {
			os.RemoveAll(s.dir)
		}
		return nil, fmt.Errorf("starting local S3: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveLocal), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// RequireAccessKey makes the endpoint refuse (403 InvalidAccessKeyId)
// every request not signed with the access key ID id: Invoke generates one
// per invocation and gives it to the bootstrap only, so that other local
// processes cannot use the endpoint. Call it before the endpoint's URL is
// handed out.
func (s *S3) RequireAccessKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKey = id
}

// requestAccessKey returns the access key ID a request is signed with
// (Signature Version 4: the Authorization header's Credential, or a
// presigned URL's X-Amz-Credential), or "".
func requestAccessKey(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, rest, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return ""
		}
		cred, _, _ = strings.Cut(rest, ",")
	}
	id, _, _ := strings.Cut(strings.TrimSpace(cred), "/")
	return id
}

// serveLocal serves a request that came to the endpoint's own listener:
// its Host header must name the listener's address, as a client given URL
// sends, where a web page that had its own name resolve to 127.0.0.1 (DNS
// rebinding) sends that name.
func (s *S3) serveLocal(w http.ResponseWriter, r *http.Request) {
	if r.Host != s.ln.Addr().String() {
		s.logger.Debug("s3 request refused: wrong Host", "host", r.Host)
		writeS3Error(w, r, &s3Error{http.StatusForbidden, "AccessDenied", fmt.Sprintf("Host %q is not this endpoint's %s", r.Host, s.ln.Addr())})
		return
	}
	s.ServeHTTP(w, r)
}

// authorize checks a request's access key, after RequireAccessKey.
func (s *S3) authorize(r *http.Request) error {
	s.mu.Lock()
	want := s.accessKey
	s.mu.Unlock()
	if want != "" && subtle.ConstantTimeCompare([]byte(requestAccessKey(r)), []byte(want)) != 1 {
		return &s3Error{http.StatusForbidden, "InvalidAccessKeyId", "the request is not signed with this endpoint's access key"}
	}
	return nil
}

// URL is the endpoint's base URL, for AWS_ENDPOINT_URL_S3.
func (s *S3) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server and removes the directory it made.
func (s *S3) Close() error {
	err := s.srv.Close()
	if s.ownDir {
		if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// s3Error is an S3 error response.
type s3Error struct {
	status  int
	code    string
	message string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func writeS3Error(w http.ResponseWriter, r *http.Request, err error) {
	var e *s3Error
	if !errors.As(err, &e) {
		e = &s3Error{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string
		Message  string
		Resource string
	}{Code: e.code, Message: e.message, Resource: r.URL.Path})
}

func writeS3XML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

const s3XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"

// ServeHTTP routes a path-style S3 request (with no Host check: the
// endpoint's own listener makes it, a handler in front of it may serve
// another address).
func (s *S3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	s.logger.Debug("s3 request", "method", r.Method, "bucket", bucket, "key", key, "query", r.URL.RawQuery)
	err := s.authorize(r)
	switch {
	case err != nil:
		s.logger.Debug("s3 request refused", "error", err)
	case bucket == "":
		err = &s3Error{http.StatusBadRequest, "InvalidRequest", "path-style requests only: /bucket/key"}
	case key == "" && r.Method == http.MethodPut:
		err = s.createBucket(bucket)
	case key == "" && r.Method == http.MethodHead:
		_, err = s.bucket(bucket)
	case key == "" && r.Method == http.MethodGet:
		err = s.list(w, bucket, q)
	case key == "":
		err = &s3Error{http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method + " on a bucket"}
	case r.Method == http.MethodPost && q.Has("uploads"):
		err = s.createUpload(w, r, bucket, key)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		err = s.completeUpload(w, r, bucket, key, q.Get("uploadId"))
	case r.Method == http.MethodPut && q.Has("uploadId"):
		err = s.uploadPart(w, r, q.Get("uploadId"), q.Get("partNumber"))
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		err = s.abortUpload(w, q.Get("uploadId"))
	case r.Method == http.MethodPut:
		err = s.putObject(w, r, bucket, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		err = s.getObject(w, r, bucket, key)
	case r.Method == http.MethodDelete:
		err = s.deleteObject(w, bucket, key)
	default:
		err = &s3Error{http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method + " on an object"}
	}
	if err != nil {
		writeS3Error(w, r, err)
	}
}

func (s *S3) createBucket(name string) error {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return &s3Error{http.StatusBadRequest, "InvalidBucketName", name}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		if err := os.MkdirAll(filepath.Join(s.dir, name), 0o755); err != nil {
			return err
		}
		s.buckets[name] = map[string]*localObject{}
	}
	return nil
}

// CreateBucket creates a bucket (no error when it exists).
func (s *S3) CreateBucket(name string) error { return s.createBucket(name) }

func (s *S3) bucket(name string) (map[string]*localObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return nil, &s3Error{http.StatusNotFound, "NoSuchBucket", "the bucket " + name + " does not exist"}
	}
	return b, nil
}

func (s *S3) list(w http.ResponseWriter, bucket string, q map[string][]string) error {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	b, err := s.bucket(bucket)
	if err != nil {
		return err
	}
	prefix := get("prefix")
	after := get("start-after")
	if t := get("continuation-token"); t != "" {
		after = t
	}
	maxKeys := 1000
	if v := get("max-keys"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < maxKeys {
			maxKeys = n
		}
	}
	type content struct {
		Key          string
		LastModified string
		ETag         string
		Size         int64
		StorageClass string
	}
	res := struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		Xmlns                 string   `xml:"xmlns,attr"`
		Name                  string
		Prefix                string
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		ContinuationToken     string `xml:",omitempty"`
		NextContinuationToken string `xml:",omitempty"`
		StartAfter            string `xml:",omitempty"`
		Contents              []content
	}{Xmlns: s3XMLNS, Name: bucket, Prefix: prefix, MaxKeys: maxKeys, ContinuationToken: get("continuation-token"), StartAfter: get("start-after")}
	s.mu.Lock()
	keys := make([]string, 0, len(b))
	for k := range b {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == maxKeys {
			res.IsTruncated = true
			res.NextContinuationToken = keys[i-1]
			break
		}
		o := b[k]
		res.Contents = append(res.Contents, content{k, o.modTime.UTC().Format("2006-01-02T15:04:05.000Z"), o.etag, o.length(), "STANDARD"})
	}
	s.mu.Unlock()
	res.KeyCount = len(res.Contents)
	writeS3XML(w, res)
	return nil
}

// s3Body returns the request's payload, decoding aws-chunked encoding.
func s3Body(r *http.Request) io.Reader {
	enc := r.Header.Get("Content-Encoding")
	sha := r.Header.Get("X-Amz-Content-Sha256")
	if strings.Contains(enc, "aws-chunked") || strings.HasPrefix(sha, "STREAMING-") {
		return &awsChunkedReader{r: bufio.NewReaderSize(r.Body, 64<<10)}
	}
	return r.Body
}

// awsChunkedReader decodes the aws-chunked content encoding: chunks of
// "hex-size[;chunk-signature=...]\r\n" + data + "\r\n", ended by a
// zero-size chunk and optional trailer lines (checksums).
type awsChunkedReader struct {
	r    *bufio.Reader
	left int64
	done bool
	err  error
}

func (c *awsChunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.done {
			c.err = io.EOF
			return 0, io.EOF
		}
		if err := c.header(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		err = c.crlf()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// header reads a chunk header; a zero-size chunk ends the body and its
// trailer is consumed.
func (c *awsChunkedReader) header() error {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("aws-chunked: reading chunk header: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	sizeStr, _, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(strings.TrimSpace(sizeStr), 16, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("aws-chunked: bad chunk header %q", line)
	}
	if size > 0 {
		c.left = size
		return nil
	}
	c.done = true
	for { // trailer lines, then an empty line (or the end)
		l, err := c.r.ReadString('\n')
		if strings.TrimRight(l, "\r\n") == "" || err != nil {
			return nil
		}
	}
}

func (c *awsChunkedReader) crlf() error {
	b := make([]byte, 2)
	if _, err := io.ReadFull(c.r, b); err != nil || string(b) != "\r\n" {
		return errors.New("aws-chunked: chunk not followed by CRLF")
	}
	return nil
}

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

func (s *S3) createUpload(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if _, err := s.bucket(bucket); err != nil {
		return err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp(filepath.Join(s.dir, bucket), ".upload-")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.uploads[id] = &localUpload{bucket: bucket, key: key, contentType: r.Header.Get("Content-Type"), dir: dir, parts: map[int]*localObject{}}
	s.mu.Unlock()
	writeS3XML(w, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadId string
	}{Xmlns: s3XMLNS, Bucket: bucket, Key: key, UploadId: id})
	return nil
}

func (s *S3) upload(id string) (*localUpload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		return nil, &s3Error{http.StatusNotFound, "NoSuchUpload", "the upload " + id + " does not exist"}
	}
	return u, nil
}

func (s *S3) uploadPart(w http.ResponseWriter, r *http.Request, id, number string) error {
	n, err := strconv.Atoi(number)
	if err != nil || n < 1 || n > 10000 {
		return &s3Error{http.StatusBadRequest, "InvalidArgument", "part number " + number}
	}
	u, err := s.upload(id)
	if err != nil {
		return err
	}
	o, err := localStore(u.dir, s3Body(r))
	if err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.uploads[id]; !ok { // aborted meanwhile
		s.mu.Unlock()
		o.remove()
		return &s3Error{http.StatusNotFound, "NoSuchUpload", "the upload " + id + " does not exist"}
	}
	if old, ok := u.parts[n]; ok {
		old.remove()
	}
	u.parts[n] = o
	s.mu.Unlock()
	w.Header().Set("ETag", o.etag)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *S3) completeUpload(w http.ResponseWriter, r *http.Request, bucket, key, id string) error {
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(s3Body(r)).Decode(&req); err != nil {
		return &s3Error{http.StatusBadRequest, "MalformedXML", err.Error()}
	}
	u, err := s.upload(id)
	if err != nil {
		return err
	}
	if u.bucket != bucket || u.key != key {
		return &s3Error{http.StatusNotFound, "NoSuchUpload", "the upload " + id + " is for another key"}
	}
	if len(req.Parts) == 0 {
		return &s3Error{http.StatusBadRequest, "MalformedXML", "no parts"}
	}
	s.mu.Lock()
	files := make([]*localObject, 0, len(req.Parts))
	last := 0
	for _, p := range req.Parts {
		o, ok := u.parts[p.PartNumber]
		switch {
		case p.PartNumber <= last:
			err = &s3Error{http.StatusBadRequest, "InvalidPartOrder", "parts are not in ascending order"}
		case !ok || strings.Trim(p.ETag, `"`) != strings.Trim(o.etag, `"`):
			err = &s3Error{http.StatusBadRequest, "InvalidPart", fmt.Sprintf("part %d was not uploaded or its ETag differs", p.PartNumber)}
		}
		if err != nil {
			s.mu.Unlock()
			return err
		}
		last = p.PartNumber
		files = append(files, o)
	}
	// Claim the upload: a concurrent UploadPart or Abort now finds none.
	if _, ok := s.uploads[id]; !ok {
		s.mu.Unlock()
		return &s3Error{http.StatusNotFound, "NoSuchUpload", "the upload " + id + " does not exist"}
	}
	delete(s.uploads, id)
	s.mu.Unlock()
	o := &localObject{dir: u.dir, contentType: u.contentType, modTime: time.Now()}
	sums := crc32.New(localCRCTable)
	used := map[*localObject]bool{}
	for _, p := range files {
		used[p] = true
		o.files = append(o.files, p.files...)
		o.sizes = append(o.sizes, p.sizes...)
		io.WriteString(sums, p.etag)
	}
	for _, p := range u.parts { // uploaded but not listed: S3 drops them
		if !used[p] {
			p.remove()
		}
	}
	o.etag = localETag(sums, "-"+strconv.Itoa(len(files)))
	if err := s.commit(bucket, key, o); err != nil {
		return err
	}
	writeS3XML(w, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Xmlns: s3XMLNS, Location: s.URL() + "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: o.etag})
	return nil
}

func (s *S3) abortUpload(w http.ResponseWriter, id string) error {
	s.mu.Lock()
	u, ok := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if !ok {
		return &s3Error{http.StatusNotFound, "NoSuchUpload", "the upload " + id + " does not exist"}
	}
	os.RemoveAll(u.dir)
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

// Uploads returns how many multipart uploads are in progress (neither
// completed nor aborted).
func (s *S3) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}
