package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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

// openUploads returns how many multipart uploads are in progress (neither
// completed nor aborted).
func (s *S3) openUploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}
