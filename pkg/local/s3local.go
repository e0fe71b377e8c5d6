package local

import (
	"crypto/subtle"
	"encoding/xml"
	"errors"
	"fmt"
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
// host) in their Host header, which defeats DNS rebinding; under Invoke,
// every request must also be signed with the invocation's access key ID
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

// requireAccessKey makes the endpoint refuse (403 InvalidAccessKeyId)
// every request not signed with the access key ID id: Invoke generates one
// per invocation and gives it to the bootstrap only, so that other local
// processes cannot use the endpoint. Call it before the endpoint's URL is
// handed out.
func (s *S3) requireAccessKey(id string) {
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
	s.route(w, r)
}

// authorize checks a request's access key, after requireAccessKey.
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

// route routes a path-style S3 request (with no Host check: the
// endpoint's own listener makes it, a handler in front of it may serve
// another address).
func (s *S3) route(w http.ResponseWriter, r *http.Request) {
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
