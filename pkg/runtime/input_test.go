package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/comingout/extract/internal/mototest"
)

// putVersion uploads data at key and returns its ETag (unquoted, as S3
// events carry it) and version ID.
func (s handlerSetup) putVersion(t *testing.T, key string, data []byte) (etag, version string) {
	t.Helper()
	out, err := s.c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutObject(%q): %v", key, err)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`), aws.ToString(out.VersionId)
}

// pinnedEvent is the event of one upload of key, naming its ETag and
// version as S3 does.
func pinnedEvent(bucket, key, etag, version string) events.S3Event {
	ev := s3Event(bucket, key)
	ev.Records[0].S3.Object.ETag = etag
	ev.Records[0].S3.Object.VersionID = version
	return ev
}

// TestHandleStaleInput: the event of an older upload of the key is refused
// with ErrInputChanged and writes nothing; the newest one's event runs.
func TestHandleStaleInput(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	oldTag, _ := s.putVersion(t, "a.csv", []byte("old\n"))
	newTag, _ := s.putVersion(t, "a.csv", []byte("new\n"))
	if oldTag == newTag {
		t.Fatalf("both uploads have ETag %s", oldTag)
	}
	_, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", oldTag, ""))
	if !errors.Is(err, ErrInputChanged) {
		t.Fatalf("Handle(event of the older upload) = %v, want ErrInputChanged", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `no longer has the ETag "`+oldTag+`"`) || !strings.Contains(msg, "s3://"+s.bucket+"/a.csv") {
		t.Errorf("error %q does not name the object and the event's ETag", msg)
	}
	if _, ok := s.get(t, "output/a.csv"); ok {
		t.Error("output written for a stale event")
	}
	// Quoted, as some tools write it, the current ETag runs.
	if _, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", `"`+newTag+`"`, "")); err != nil {
		t.Fatalf("Handle(event of the current upload): %v", err)
	}
	if got, _ := s.get(t, "output/a.csv"); string(got) != "new\n" {
		t.Errorf("output/a.csv = %q, want %q", got, "new\n")
	}
}

// TestHandleInputVersion: in a versioned bucket, the event's VersionId is
// what the program reads, even after a newer upload.
func TestHandleInputVersion(t *testing.T) {
	s := mustHandler(t, "stdin", "cat")
	if _, err := s.c.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: &s.bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	oldTag, oldVersion := s.putVersion(t, "a.csv", []byte("old\n"))
	if oldVersion == "" {
		t.Fatal("no version ID from a versioned bucket")
	}
	s.putVersion(t, "a.csv", []byte("new\n"))
	if _, err := s.h.Handle(context.Background(), pinnedEvent(s.bucket, "a.csv", oldTag, oldVersion)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got, _ := s.get(t, "output/a.csv"); string(got) != "old\n" {
		t.Errorf("output/a.csv = %q, want the event's version %q", got, "old\n")
	}
}

// faultProxy is a reverse proxy in front of moto that breaks chosen
// GetObject answers: it sends their status, headers and the first bytes of
// the body, then resets the connection, as a network blip does mid-body.
type faultProxy struct {
	URL    string
	target *url.URL
	proxy  *httputil.ReverseProxy
	mu     sync.Mutex
	gets   int
	// multipart counts CreateMultipartUpload requests.
	multipart int
	// fin closes cut connections with a FIN, not a reset: the client gets
	// every byte sent, then an early end (a reset discards what the
	// client's kernel had not handed over yet).
	fin bool
	// cut says after how many body bytes the n-th GetObject (from 1) is
	// cut, -1 for not at all; it may act first (replace the object).
	cut func(n int) int64
}

func newFaultProxy(t *testing.T, cut func(n int) int64) *faultProxy {
	t.Helper()
	target, err := url.Parse(mototest.Shared(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, proxy: httputil.NewSingleHostReverseProxy(target), cut: cut}
	// Parts cancelled by an abort are no news.
	p.proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// getObjects says how many GetObject requests the proxy saw.
func (p *faultProxy) getObjects() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Query().Has("uploads") {
		p.mu.Lock()
		p.multipart++
		p.mu.Unlock()
	}
	// The SDK marks its GetObject requests with x-id=GetObject.
	if r.Method != http.MethodGet || r.URL.Query().Get("x-id") != "GetObject" {
		p.proxy.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.gets++
	n := p.gets
	p.mu.Unlock()
	cut := p.cut(n)
	if cut < 0 {
		p.proxy.ServeHTTP(w, r)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok && !p.fin {
		tc.SetLinger(0) // Close sends a reset
	}
	fmt.Fprintf(bw, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	resp.Header.Write(bw)
	bw.WriteString("\r\n")
	io.CopyN(bw, resp.Body, cut)
	bw.Flush()
}

// mustProxiedHandler is mustHandlerFor with the handler's S3 client going
// through a fault proxy (the setup's own client goes to moto directly), 5
// MiB parts and backoff waits of backoff.
func mustProxiedHandler(t *testing.T, m Manifest, backoff time.Duration, cut func(n int) int64) (handlerSetup, *faultProxy) {
	t.Helper()
	root := mustTaskRoot(t, m)
	lm, err := LoadManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(lm, root); err != nil {
		t.Fatal(err)
	}
	p := newFaultProxy(t, cut)
	env := map[string]string{"AWS_ENDPOINT_URL_S3": p.URL, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
	pc := newS3Client(func(k string) string { return env[k] })
	var log bytes.Buffer
	h, err := NewHandler(context.Background(), lm, root, WithS3Client(pc), WithProgramLog(&log), WithEnviron([]string{"TZ=UTC"}), WithPartSize(MinPartSize))
	if err != nil {
		t.Fatal(err)
	}
	h.opts.inputBackoff = backoff
	c := motoClient(t)
	return handlerSetup{h: h, c: c, bucket: mustBucket(t, c), log: &log}, p
}

// TestHandleInputResume: a reset in the middle of the input's body, once,
// is absorbed by a ranged GET: the output is byte for byte the input, and
// the record counts one retry. It logs what one reset costs on 12 MB.
func TestHandleInputResume(t *testing.T) {
	const size = 12 << 20
	data := randomData(t, size)
	for _, tt := range []struct {
		mode string
		args []string
	}{
		{InputStdin, []string{"testprog", "cat"}},
		{InputFile, []string{"testprog", "catfile", "{input}"}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			m := Manifest{Version: 1, Program: "/bin/testprog", Args: tt.args, Input: Input{Mode: tt.mode}}
			var cutAt atomic.Int64
			cutAt.Store(-1)
			s, p := mustProxiedHandler(t, m, defaultInputBackoff, func(n int) int64 {
				if n == 1 {
					return cutAt.Load()
				}
				return -1
			})
			s.put(t, "big.csv", data)
			var took [2]time.Duration
			for i, cut := range []int64{-1, 1 << 20} {
				cutAt.Store(cut)
				p.mu.Lock()
				p.gets = 0
				p.mu.Unlock()
				start := time.Now()
				res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "big.csv"))
				took[i] = time.Since(start)
				if err != nil {
					t.Fatalf("cut at %d: Handle: %v", cut, err)
				}
				wantRetries, wantGets := 0, 1
				if cut >= 0 {
					wantRetries, wantGets = 1, 2
				}
				if r := res.Records[0]; r.InputRetries != wantRetries || r.InputBytes != size || r.OutputBytes != size {
					t.Errorf("cut at %d: record %+v, want %d retries, %d bytes in and out", cut, r, wantRetries, size)
				}
				if g := p.getObjects(); g != wantGets {
					t.Errorf("cut at %d: %d GetObject requests, want %d", cut, g, wantGets)
				}
				got, _ := s.get(t, "output/big.csv")
				if !bytes.Equal(got, data) {
					t.Fatalf("cut at %d: output is %d bytes, differs from the %d input bytes", cut, len(got), len(data))
				}
			}
			t.Logf("12 MiB, %s: %v without a fault, %v with one reset after 1 MiB (1 retry, +%v)", tt.mode, took[0], took[1], took[1]-took[0])
		})
	}
}

// TestHandleInputBreaksEveryTime: a body that breaks at every GET fails
// the record after maxInputRetries resumed reads, with no output object
// and no multipart upload left (through stdin, the upload of two 5 MiB
// parts had started before the last break).
func TestHandleInputBreaksEveryTime(t *testing.T) {
	for _, mode := range []string{InputStdin, InputFile} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"testprog", "cat"}
			if mode == InputFile {
				args = []string{"testprog", "catfile", "{input}"}
			}
			m := Manifest{Version: 1, Program: "/bin/testprog", Args: args, Input: Input{Mode: mode}}
			s, p := mustProxiedHandler(t, m, time.Millisecond, func(int) int64 { return 2 << 20 })
			p.fin = true
			s.put(t, "big.csv", randomData(t, 16<<20))
			res, err := s.h.Handle(context.Background(), s3Event(s.bucket, "big.csv"))
			var re *RecordError
			if !errors.As(err, &re) || re.Op != "reading input" {
				t.Fatalf("Handle = %v, want a RecordError reading the input", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("after %d resumed reads", maxInputRetries)) {
				t.Errorf("error %q does not say how often it resumed", err)
			}
			if g, want := p.getObjects(), 1+maxInputRetries; g != want {
				t.Errorf("%d GetObject requests, want %d", g, want)
			}
			if r := res.Records[0]; r.InputRetries != maxInputRetries {
				t.Errorf("record counts %d retries, want %d", r.InputRetries, maxInputRetries)
			}
			if _, ok := s.get(t, "output/big.csv"); ok {
				t.Error("output written for a run whose input broke")
			}
			if n := s.uploadsInProgress(t); n != 0 {
				t.Errorf("%d multipart uploads left, want them aborted", n)
			}
			p.mu.Lock()
			started := p.multipart
			p.mu.Unlock()
			if mode == InputStdin && started != 1 {
				t.Errorf("%d multipart uploads started, want 1 (12 MiB, two parts, streamed through before the last break)", started)
			}
		})
	}
}

// TestHandleInputChangedMidway: the object replaced between the first GET
// and the resumed one is refused with ErrInputChanged, not spliced, also
// when the event named no ETag (the first answer's pins the rest).
func TestHandleInputChangedMidway(t *testing.T) {
	var s handlerSetup
	s, _ = mustProxiedHandler(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "cat"}}, time.Millisecond, func(n int) int64 {
		if n == 1 {
			return 1 << 20
		}
		s.put(t, "big.csv", randomData(t, 3<<20)) // before the resumed GET
		return -1
	})
	s.put(t, "big.csv", randomData(t, 3<<20))
	_, err := s.h.Handle(context.Background(), s3Event(s.bucket, "big.csv"))
	if !errors.Is(err, ErrInputChanged) {
		t.Fatalf("Handle = %v, want ErrInputChanged", err)
	}
	if !strings.Contains(err.Error(), "changed while the program read it") {
		t.Errorf("error %q does not say the object changed during the run", err)
	}
	if _, ok := s.get(t, "output/big.csv"); ok {
		t.Error("output written from two versions")
	}
	if n := s.uploadsInProgress(t); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
}
