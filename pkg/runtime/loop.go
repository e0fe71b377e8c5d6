package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/comingout/extract/internal/runtimeapi"
)

// The error types the loop reports itself, and the deadline of an event
// that names none.
const (
	errorTypeUnmarshal   = "Runtime.UnmarshalError"
	errorTypePanic       = "Runtime.HandlerPanic"
	defaultInvokeTimeout = 15 * time.Minute
)

// ErrorResponse is the body of an invocation or init error, as the Runtime
// API documents it, with, for a failed record (the first, when several
// failed), the program's exit status and last stderr lines (at most
// StderrLines), which ErrorMessage also holds. It is the one definition
// the local emulator reads too.
type ErrorResponse = runtimeapi.ErrorBody

// Serve runs the Runtime API loop against api (host:port, as in
// AWS_LAMBDA_RUNTIME_API): it fetches each invocation, decodes it as an S3
// event, runs h.Handle with the invocation's deadline and posts the result
// or the error. It returns only when ctx is done or the API fails.
//
// The loop is this package's own rather than aws-lambda-go's lambda.Start:
// that one links net/rpc, whose reflection keeps every method of the S3
// client alive and puts the bootstrap at 15 MB instead of under 10 MiB.
func Serve(ctx context.Context, api string, h *Handler) error {
	c := &apiClient{
		base: "http://" + api + runtimeapi.Prefix,
		http: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}},
	}
	for {
		inv, err := c.next(ctx)
		if err != nil {
			return err
		}
		resp, herr := invoke(ctx, h, inv)
		if herr != nil {
			err = c.post(ctx, runtimeapi.ErrorPath(inv.id), herr, herr.ErrorType)
		} else {
			err = c.post(ctx, runtimeapi.ResponsePath(inv.id), resp, "")
		}
		if err != nil {
			return err
		}
	}
}

type invocation struct {
	id       string
	deadline time.Time
	payload  []byte
}

// invoke runs one invocation and returns its response or its error.
func invoke(ctx context.Context, h *Handler, inv *invocation) (resp any, errResp *ErrorResponse) {
	defer func() {
		if p := recover(); p != nil {
			resp, errResp = nil, &ErrorResponse{ErrorMessage: fmt.Sprint(p), ErrorType: errorTypePanic}
		}
	}()
	var ev events.S3Event
	if err := json.Unmarshal(inv.payload, &ev); err != nil {
		return nil, &ErrorResponse{ErrorMessage: fmt.Sprintf("decoding the S3 event: %v", err), ErrorType: errorTypeUnmarshal}
	}
	ctx, cancel := context.WithDeadline(withRequestID(ctx, inv.id), inv.deadline)
	defer cancel()
	res, err := h.Handle(ctx, ev)
	if err != nil {
		e := &ErrorResponse{ErrorMessage: err.Error(), ErrorType: errorType(err)}
		var re *RecordError
		if errors.As(err, &re) {
			e.ExitStatus, e.Stderr = &re.ExitCode, re.Stderr
		}
		return nil, e
	}
	return res, nil
}

// errorType names err's type the way Lambda runtimes do: the type name,
// without pointer or package ("RecordError").
func errorType(err error) string {
	var re *RecordError
	if errors.As(err, &re) {
		return "RecordError"
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == "" {
		return "Error"
	}
	return t.Name()
}

type apiClient struct {
	base string
	http *http.Client
}

func (c *apiClient) next(ctx context.Context) (*invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+runtimeapi.PathNext, nil)
	if err != nil {
		return nil, fmt.Errorf("runtime API next: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("runtime API next: %w", err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("runtime API next: reading the event: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("runtime API next: %s: %s", resp.Status, bytes.TrimSpace(payload))
	}
	inv := &invocation{id: resp.Header.Get(runtimeapi.HeaderRequestID), payload: payload}
	if inv.id == "" {
		return nil, errors.New("runtime API next: no request ID")
	}
	inv.deadline = time.Now().Add(defaultInvokeTimeout)
	if ms, err := strconv.ParseInt(resp.Header.Get(runtimeapi.HeaderDeadlineMS), 10, 64); err == nil {
		inv.deadline = time.UnixMilli(ms)
	}
	return inv, nil
}

func (c *apiClient) post(ctx context.Context, path string, v any, errType string) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("runtime API %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("runtime API %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if errType != "" {
		req.Header.Set(runtimeapi.HeaderFunctionErrorType, errType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("runtime API %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("runtime API %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
