package local

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/runtimeapi"
)

func mustRuntimeAPI(t *testing.T) *RuntimeAPI {
	t.Helper()
	a, err := NewRuntimeAPI(RuntimeAPIOptions{FunctionName: "fn", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// apiCall makes one request to the Runtime API and returns the response
// with its body read.
func apiCall(t *testing.T, a *RuntimeAPI, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.Addr()+"/2018-06-01/runtime"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

type invokeOutcome struct {
	res *InvokeResult
	err error
}

func goInvoke(a *RuntimeAPI, payload string, timeout time.Duration) chan invokeOutcome {
	ch := make(chan invokeOutcome, 1)
	go func() {
		res, err := a.Invoke(context.Background(), []byte(payload), timeout)
		ch <- invokeOutcome{res, err}
	}()
	return ch
}

func TestRuntimeAPIResponse(t *testing.T) {
	a := mustRuntimeAPI(t)
	if !a.FirstNext().IsZero() {
		t.Fatalf("FirstNext() = %v before any request, want zero", a.FirstNext())
	}
	ch := goInvoke(a, `{"Records":[]}`, 5*time.Second)
	before := time.Now()
	resp, body := apiCall(t, a, "GET", "/invocation/next", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("next: %s %s", resp.Status, body)
	}
	if body != `{"Records":[]}` {
		t.Errorf("next body = %q, want the queued payload", body)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if len(id) != 36 {
		t.Errorf("request ID %q is not a UUID", id)
	}
	ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil {
		t.Fatalf("deadline header: %v", err)
	}
	if d := time.UnixMilli(ms).Sub(before); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("deadline is %v from now, want about 5s", d)
	}
	if got, want := resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"), "arn:aws:lambda:eu-west-1:000000000000:function:fn"; got != want {
		t.Errorf("function ARN = %q, want %q", got, want)
	}
	if !strings.HasPrefix(resp.Header.Get("Lambda-Runtime-Trace-Id"), "Root=1-") {
		t.Errorf("trace ID = %q", resp.Header.Get("Lambda-Runtime-Trace-Id"))
	}
	if a.FirstNext().IsZero() {
		t.Error("FirstNext() is zero after a next request")
	}
	resp, body = apiCall(t, a, "POST", "/invocation/"+id+"/response", `{"ok":true}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("response: %s %s", resp.Status, body)
	}
	out := <-ch
	if out.err != nil {
		t.Fatal(out.err)
	}
	if out.res.Error != nil || string(out.res.Response) != `{"ok":true}` || out.res.RequestID != id {
		t.Errorf("Invoke = %+v, want response {\"ok\":true} for %s", out.res, id)
	}
	// A second answer for the same invocation is refused.
	resp, _ = apiCall(t, a, "POST", "/invocation/"+id+"/response", `{}`, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("second response: %s, want 400", resp.Status)
	}
}

func TestRuntimeAPIErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		header map[string]string
		want   FunctionError
	}{
		{"body", `{"errorMessage":"boom","errorType":"RecordError"}`, nil, FunctionError{ErrorType: "RecordError", ErrorMessage: "boom"}},
		{"header wins", `{"errorMessage":"boom","errorType":"X"}`, map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.Y"}, FunctionError{ErrorType: "Runtime.Y", ErrorMessage: "boom"}},
		{"not JSON", "plain words", nil, FunctionError{ErrorType: "Unhandled", ErrorMessage: "plain words"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustRuntimeAPI(t)
			ch := goInvoke(a, `{}`, 5*time.Second)
			resp, _ := apiCall(t, a, "GET", "/invocation/next", "", nil)
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			resp, body := apiCall(t, a, "POST", "/invocation/"+id+"/error", tt.body, tt.header)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("error: %s %s", resp.Status, body)
			}
			out := <-ch
			if out.err != nil {
				t.Fatal(out.err)
			}
			if out.res.Error == nil {
				t.Fatalf("Invoke error = nil, want %+v", tt.want)
			}
			if diff := cmp.Diff(tt.want, *out.res.Error); diff != "" {
				t.Errorf("Invoke error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRuntimeAPIUnknownRequest(t *testing.T) {
	a := mustRuntimeAPI(t)
	resp, body := apiCall(t, a, "POST", "/invocation/nope/response", `{}`, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("response for unknown ID: %s, want 400", resp.Status)
	}
	var e map[string]string
	if err := json.Unmarshal([]byte(body), &e); err != nil || e["errorType"] != "InvalidRequestID" {
		t.Errorf("body = %s, want errorType InvalidRequestID", body)
	}
}

func TestRuntimeAPITimeout(t *testing.T) {
	a := mustRuntimeAPI(t)
	ch := goInvoke(a, `{}`, 300*time.Millisecond)
	resp, _ := apiCall(t, a, "GET", "/invocation/next", "", nil)
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	out := <-ch
	if out.err != nil {
		t.Fatal(out.err)
	}
	if out.res.Error == nil || out.res.Error.ErrorType != ErrorTypeTimeout {
		t.Fatalf("Invoke = %+v, want a %s error", out.res, ErrorTypeTimeout)
	}
	resp, _ = apiCall(t, a, "POST", "/invocation/"+id+"/response", `{}`, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("late response: %s, want 400", resp.Status)
	}
}

func TestRuntimeAPIInitError(t *testing.T) {
	a := mustRuntimeAPI(t)
	ch := goInvoke(a, `{}`, 5*time.Second)
	resp, body := apiCall(t, a, "POST", "/init/error", `{"errorMessage":"no manifest","errorType":"Runtime.ExtractInitError"}`,
		map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.ExtractInitError"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("init error: %s %s", resp.Status, body)
	}
	out := <-ch
	if out.err != nil {
		t.Fatal(out.err)
	}
	want := &FunctionError{ErrorType: "Runtime.ExtractInitError", ErrorMessage: "no manifest"}
	if diff := cmp.Diff(want, out.res.Error); diff != "" {
		t.Errorf("Invoke error (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, a.InitError()); diff != "" {
		t.Errorf("InitError() (-want +got):\n%s", diff)
	}
}

func TestRuntimeAPIClose(t *testing.T) {
	a := mustRuntimeAPI(t)
	ch := goInvoke(a, `{}`, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	a.Close()
	select {
	case out := <-ch:
		if out.err == nil {
			t.Errorf("Invoke after Close = %+v, want an error", out.res)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Invoke did not return after Close")
	}
}

// The invocation's time starts at delivery, as Lambda's does: a runtime that
// initializes for a while still gets its whole timeout, and Duration leaves
// the initialization out.
func TestRuntimeAPIDurationFromDelivery(t *testing.T) {
	a := mustRuntimeAPI(t)
	const initTime, timeout = 400 * time.Millisecond, 2 * time.Second
	ch := goInvoke(a, `{}`, timeout)
	time.Sleep(initTime) // the runtime initializing
	delivered := time.Now()
	resp, _ := apiCall(t, a, "GET", "/invocation/next", "", nil)
	ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil {
		t.Fatalf("deadline header: %v", err)
	}
	if d := time.UnixMilli(ms).Sub(delivered); d < timeout-50*time.Millisecond {
		t.Errorf("deadline is %v after delivery, want the whole %v timeout", d, timeout)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if resp, body := apiCall(t, a, "POST", "/invocation/"+id+"/response", `{}`, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("response: %s %s", resp.Status, body)
	}
	out := <-ch
	if out.err != nil || out.res.Error != nil {
		t.Fatalf("Invoke = %+v, %v", out.res, out.err)
	}
	if out.res.Duration >= initTime {
		t.Errorf("Duration = %v, includes the %v the runtime took to ask for the event", out.res.Duration, initTime)
	}
}

// TestRuntimeAPIHostCheck: a request naming another host than the
// runtime's 127.0.0.1:port (a DNS-rebinding page, a request through a name)
// is refused with 403 and delivers no event.
func TestRuntimeAPIHostCheck(t *testing.T) {
	a := mustRuntimeAPI(t)
	ch := goInvoke(a, `{"n":1}`, 5*time.Second)
	_, port, _ := strings.Cut(a.Addr(), ":")
	for _, host := range []string{"evil.example:" + port, "localhost:" + port, "127.0.0.1", "127.0.0.1:1"} {
		req, err := http.NewRequest("GET", "http://"+a.Addr()+"/2018-06-01/runtime/invocation/next", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET next with Host %q: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET next with Host %q: %s %s, want 403", host, resp.Status, body)
		}
		if resp.Header.Get(runtimeapi.HeaderRequestID) != "" {
			t.Fatalf("GET next with Host %q delivered the event", host)
		}
	}
	// The runtime's own Host still gets the event.
	resp, body := apiCall(t, a, "GET", "/invocation/next", "", nil)
	if resp.StatusCode != http.StatusOK || body != `{"n":1}` {
		t.Fatalf("GET next with the right Host: %s %s", resp.Status, body)
	}
	id := resp.Header.Get(runtimeapi.HeaderRequestID)
	if resp, _ := apiCall(t, a, "POST", "/invocation/"+id+"/response", `"ok"`, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("response: %s", resp.Status)
	}
	if out := <-ch; out.err != nil || string(out.res.Response) != `"ok"` {
		t.Errorf("Invoke = %+v, %v", out.res, out.err)
	}
}
