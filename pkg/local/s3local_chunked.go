package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

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
