package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// logBuffer is the function's log of a test: the bootstrap's lines and the
// program's, written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) writer() lockedWriter { return lockedWriter{&l.mu, &l.buf} }

func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// mustLogged makes the handler of m logging in format to a logBuffer.
func mustLogged(t *testing.T, m Manifest, format string) (handlerSetup, *logBuffer) {
	t.Helper()
	var lb logBuffer
	s := mustHandlerWith(t, m, nil, WithLogger(NewLogger(lb.writer(), format)), WithProgramLog(lb.writer()), WithLogFormat(format))
	return s, &lb
}

const testRequestID = "8f5c3a2e-1b2c-4d5e-8f90-a1b2c3d4e5f6"

func TestHandleJSONLogs(t *testing.T) {
	s, lb := mustLogged(t, writerManifest("0", "a stdout line", "{output}=12345"), "json")
	input := []byte("x,y\n1,2\n")
	s.put(t, "input/day1.csv", input)
	ctx := withRequestID(context.Background(), testRequestID)
	if _, err := s.h.Handle(ctx, s3Event(s.bucket, "input/day1.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var program []string
	var last map[string]any
	for _, line := range lb.lines() {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		ts, _ := obj["timestamp"].(string)
		if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || time.Since(tm) > time.Minute {
			t.Errorf("timestamp %q is not a recent RFC 3339 UTC time (%v): %s", ts, err, line)
		}
		if obj["level"] == nil || obj["message"] == nil || obj["requestId"] != testRequestID {
			t.Errorf("log line lacks level, message or requestId %q: %s", testRequestID, line)
		}
		if obj["source"] == "program" {
			program = append(program, obj["stream"].(string)+": "+obj["message"].(string))
		}
		last = obj
	}
	if diff := cmp.Diff([]string{"stderr: wrote 1", "stdout: a stdout line"}, program, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("program lines (-want +got):\n%s", diff)
	}
	want := map[string]any{"message": "invocation summary", "records": 1.0, "input_bytes": float64(len(input)), "output_bytes": 5.0,
		"output_files": 1.0, "exit_status": 0.0, "failed": 0.0, "input_retries": 0.0}
	for k, v := range want {
		if last[k] != v {
			t.Errorf("last line: %s = %v, want %v (%v)", k, last[k], v, last)
		}
	}
	for _, k := range []string{"program_ms", "transfer_ms", "total_ms"} {
		if _, ok := last[k].(float64); !ok {
			t.Errorf("summary lacks %s: %v", k, last)
		}
	}
}

func TestHandleTextLogs(t *testing.T) {
	s, lb := mustLogged(t, writerManifest("0", "a stdout line", "{output}=12345"), "")
	s.put(t, "input/day1.csv", []byte("x\n"))
	ctx := withRequestID(context.Background(), testRequestID)
	if _, err := s.h.Handle(ctx, s3Event(s.bucket, "input/day1.csv")); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	lines := lb.lines()
	for _, want := range []string{"[8f5c3a2e] input/day1.csv: wrote 1", "[8f5c3a2e] input/day1.csv (stdout): a stdout line"} {
		if !strings.Contains(strings.Join(lines, "\n"), want+"\n") {
			t.Errorf("log lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	last := lines[len(lines)-1]
	for _, want := range []string{`msg="invocation summary"`, " input_bytes=2 ", " output_bytes=5 ", " exit_status=0 ", "requestId=" + testRequestID} {
		if !strings.Contains(last, want) {
			t.Errorf("summary line lacks %q: %s", want, last)
		}
	}
}

func TestInvokeFailureResponse(t *testing.T) {
	s, lb := mustLogged(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "fail", "3", "25", "7"},
		Input: Input{Suffix: ".csv"}}, LogFormatJSON)
	s.put(t, "a.csv", []byte("abc"))
	payload, err := json.Marshal(s3Event(s.bucket, "a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, resp := invoke(context.Background(), s.h, &invocation{id: testRequestID, deadline: time.Now().Add(time.Minute), payload: payload})
	if resp == nil || resp.ExitStatus == nil || *resp.ExitStatus != 3 {
		t.Fatalf("invoke = %+v, want an error response with exit status 3", resp)
	}
	if len(resp.Stderr) != StderrLines || resp.Stderr[StderrLines-1] != "error line 25" || resp.Stderr[0] != "error line 6" {
		t.Errorf("error response's stderr = %q, want error lines 6 to 25", resp.Stderr)
	}
	lines := lb.lines()
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["message"] != "invocation summary" || last["exit_status"] != 3.0 || last["failed"] != 1.0 || last["input_bytes"] != 3.0 || last["output_files"] != 0.0 || last["requestId"] != testRequestID {
		t.Errorf("summary = %v, want exit status 3, 1 failed, 3 input bytes, no output file and the request ID", last)
	}
	if keys := s.keys(t); len(keys) != 1 {
		t.Errorf("bucket holds %q, want only the input", keys)
	}
}
