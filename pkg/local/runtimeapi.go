package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/comingout/extract/internal/runtimeapi"
)

// timeoutGrace is how long past the deadline Invoke waits for an answer
// before it calls the invocation timed out.
const timeoutGrace = 250 * time.Millisecond

// Error types of failures the Runtime API itself reports, named like
// Lambda's own.
const (
	ErrorTypeTimeout   = "Sandbox.Timedout"
	ErrorTypeInitError = "Runtime.InitError"
	ErrorTypeExitError = "Runtime.ExitError"
)

// RuntimeAPIOptions configures a RuntimeAPI. Zero values get the
// documented defaults.
type RuntimeAPIOptions struct {
	// FunctionName names the function in the invoked ARN (default "extract").
	FunctionName string
	// Region goes into the invoked ARN (default "us-east-1").
	Region string
	// Logger receives the server's debug messages (default: discard).
	Logger *slog.Logger
}

// InvokeResult is the outcome of one invocation.
type InvokeResult struct {
	// RequestID is the invocation's Lambda-Runtime-Aws-Request-Id.
	RequestID string `json:"request_id"`
	// Response is the function's response (JSON from the extract
	// bootstrap); empty when the invocation failed.
	Response json.RawMessage `json:"response,omitempty"`
	// Error is set when the invocation failed: the function reported an
	// error, timed out, or its runtime failed to start.
	Error *FunctionError `json:"error,omitempty"`
	// Duration runs from the event's delivery (the runtime's /next
	// returning it) to the function's answer, as Lambda's billed duration
	// does: the runtime's initialization is InitDuration's.
	Duration time.Duration `json:"duration_ns"`
	// InitDuration runs from starting the bootstrap to its first request
	// for an invocation (set by Invoke).
	InitDuration time.Duration `json:"init_duration_ns,omitempty"`
	// Output is the output object's content, fetched after an invocation
	// made with WithCSV; OutputBucket and OutputKey name it.
	Output       []byte `json:"-"`
	OutputBucket string `json:"output_bucket,omitempty"`
	OutputKey    string `json:"output_key,omitempty"`
	// Outputs lists every object the run wrote, after a successful
	// WithCSV invocation: the output object, the kept stdout, an output
	// directory's files and its manifest (see WithSaveOutputs).
	Outputs []InvokeOutput `json:"outputs,omitempty"`
}

// FunctionError is an invocation error: the Runtime API's error body as
// the function posted it, its ErrorType from the
// Lambda-Runtime-Function-Error-Type header when set; or one the emulator
// reports itself (ErrorTypeTimeout, ErrorTypeExitError).
type FunctionError = runtimeapi.ErrorBody

// RuntimeAPI is a local server of the Lambda Runtime API (2018-06-01), on
// 127.0.0.1 and a free port, for one runtime process (requests must name
// that address in their Host header): Invoke queues an
// event, the runtime fetches it with GET /runtime/invocation/next and
// answers with POST /runtime/invocation/{id}/response or /error; an init
// failure arrives on POST /runtime/init/error.
type RuntimeAPI struct {
	ln     net.Listener
	srv    *http.Server
	arn    string
	logger *slog.Logger

	queue  chan *pendingInvoke
	closed chan struct{}
	once   sync.Once

	mu        sync.Mutex
	inflight  map[string]*pendingInvoke
	firstNext time.Time
	initErr   *FunctionError
	initDone  chan struct{} // closed when an init error arrives
}

type pendingInvoke struct {
	id      string
	payload []byte
	timeout time.Duration
	// deadline is set when the event is delivered, as is delivered
	// (closed): the invocation's time starts then, as Lambda's billed
	// duration does, not while the runtime is still initializing.
	deadline  time.Time
	started   time.Time
	delivered chan struct{}
	done      chan *InvokeResult // buffered, one answer
	answered  bool
}

// NewRuntimeAPI starts a Runtime API server on 127.0.0.1 and a free port.
func NewRuntimeAPI(opts RuntimeAPIOptions) (*RuntimeAPI, error) {
	if opts.FunctionName == "" {
		opts.FunctionName = "extract"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the runtime API: %w", err)
	}
	a := &RuntimeAPI{
		ln:       ln,
		arn:      fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", opts.Region, opts.FunctionName),
		logger:   opts.Logger,
		queue:    make(chan *pendingInvoke, 64),
		closed:   make(chan struct{}),
		inflight: map[string]*pendingInvoke{},
		initDone: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimeapi.Prefix+runtimeapi.PathNext, a.next)
	mux.HandleFunc("POST "+runtimeapi.Prefix+runtimeapi.ResponsePath("{id}"), a.response)
	mux.HandleFunc("POST "+runtimeapi.Prefix+runtimeapi.ErrorPath("{id}"), a.invocationError)
	mux.HandleFunc("POST "+runtimeapi.Prefix+runtimeapi.PathInitError, a.initError)
	a.srv = &http.Server{Handler: a.checkHost(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// Addr is the server's host:port, the value of AWS_LAMBDA_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return a.ln.Addr().String() }

// checkHost refuses (403) a request whose Host header is not exactly
// Addr, the 127.0.0.1:port the runtime was given: a web page that has a
// name of its own resolve to 127.0.0.1 (DNS rebinding) sends its own name,
// and another local process would have to be told the port (the Runtime
// API has fixed paths, so it cannot carry a secret prefix).
func (a *RuntimeAPI) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != a.Addr() {
			a.logger.Debug("runtime API request refused: wrong Host", "host", r.Host, "path", r.URL.Path)
			apiError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("Host %q is not this runtime API's %s", r.Host, a.Addr()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FirstNext is when the runtime first asked for an invocation (zero until
// it does): the end of its initialization.
func (a *RuntimeAPI) FirstNext() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstNext
}

// InitError returns the error the runtime reported on /runtime/init/error,
// if any.
func (a *RuntimeAPI) InitError() *FunctionError {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.initErr
}

// Invoke queues payload as an invocation with the given timeout and waits
// for the runtime's answer. The deadline the runtime sees is timeout after
// the event was delivered (a runtime still initializing must ask for it
// within timeout too). A function error, a timeout (no answer by the
// deadline) or an init error is reported in the result's Error; the error
// return is for ctx ending or the server closing.
func (a *RuntimeAPI) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (*InvokeResult, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("invocation timeout %v is not positive", timeout)
	}
	p := &pendingInvoke{id: newRequestID(), payload: payload, timeout: timeout, delivered: make(chan struct{}), done: make(chan *InvokeResult, 1)}
	queued := time.Now()
	select {
	case a.queue <- p:
	case <-a.closed:
		return nil, errors.New("runtime API closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a.logger.Debug("invocation queued", "request_id", p.id, "timeout", timeout)
	// Until delivery the runtime initializes, bounded by the timeout too;
	// from delivery, the invocation has its whole timeout.
	start, delivered, initDone := queued, p.delivered, a.initDone
	timer := time.NewTimer(timeout + timeoutGrace)
	defer timer.Stop()
	for {
		select {
		case <-delivered:
			a.mu.Lock()
			start = p.started
			a.mu.Unlock()
			delivered, initDone = nil, nil
			timer.Reset(time.Until(start.Add(timeout + timeoutGrace)))
		case res := <-p.done:
			res.Duration = time.Since(start)
			return res, nil
		case <-initDone:
			return &InvokeResult{RequestID: p.id, Error: a.InitError(), Duration: time.Since(queued)}, nil
		case <-timer.C:
			a.forget(p)
			return &InvokeResult{RequestID: p.id, Duration: time.Since(start), Error: &FunctionError{
				ErrorType:    ErrorTypeTimeout,
				ErrorMessage: fmt.Sprintf("task timed out after %.2f seconds", timeout.Seconds()),
			}}, nil
		case <-a.closed:
			return nil, errors.New("runtime API closed")
		case <-ctx.Done():
			a.forget(p)
			return nil, context.Cause(ctx)
		}
	}
}

// forget drops p so a late answer is refused.
func (a *RuntimeAPI) forget(p *pendingInvoke) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p.answered = true
	delete(a.inflight, p.id)
}

// Close stops the server; pending Invoke calls return an error.
func (a *RuntimeAPI) Close() error {
	a.once.Do(func() { close(a.closed) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		return a.srv.Close()
	}
	return nil
}

func (a *RuntimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.firstNext.IsZero() {
		a.firstNext = time.Now()
	}
	a.mu.Unlock()
	for {
		select {
		case p := <-a.queue:
			a.mu.Lock()
			if p.answered { // its Invoke gave up while queued
				a.mu.Unlock()
				continue
			}
			a.inflight[p.id] = p
			p.started = time.Now()
			p.deadline = p.started.Add(p.timeout)
			a.mu.Unlock()
			close(p.delivered)
			h := w.Header()
			h.Set(runtimeapi.HeaderRequestID, p.id)
			h.Set(runtimeapi.HeaderDeadlineMS, strconv.FormatInt(p.deadline.UnixMilli(), 10))
			h.Set(runtimeapi.HeaderFunctionARN, a.arn)
			h.Set(runtimeapi.HeaderTraceID, traceID())
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(p.payload)
			a.logger.Debug("invocation delivered", "request_id", p.id)
			return
		case <-r.Context().Done():
			return
		case <-a.closed:
			apiError(w, http.StatusGone, "Runtime.Closed", "the runtime API is closing")
			return
		}
	}
}

// take returns the in-flight invocation id names and marks it answered.
func (a *RuntimeAPI) take(w http.ResponseWriter, id string) *pendingInvoke {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.inflight[id]
	if !ok || p.answered {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("no invocation %q is waiting for an answer", id))
		return nil
	}
	p.answered = true
	delete(a.inflight, id)
	return p
}

func (a *RuntimeAPI) response(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, runtimeapi.MaxResponseSize+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	p := a.take(w, r.PathValue("id"))
	if p == nil {
		return
	}
	res := &InvokeResult{RequestID: p.id}
	if len(body) > runtimeapi.MaxResponseSize {
		res.Error = &FunctionError{ErrorType: "Function.ResponseSizeTooLarge", ErrorMessage: fmt.Sprintf("response payload size exceeded maximum allowed payload size (%d bytes)", runtimeapi.MaxResponseSize)}
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", res.Error.ErrorMessage)
	} else {
		res.Response = asJSON(body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
	}
	p.done <- res
}

func (a *RuntimeAPI) invocationError(w http.ResponseWriter, r *http.Request) {
	fe, err := readFunctionError(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	p := a.take(w, r.PathValue("id"))
	if p == nil {
		return
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
	p.done <- &InvokeResult{RequestID: p.id, Error: fe}
}

func (a *RuntimeAPI) initError(w http.ResponseWriter, r *http.Request) {
	fe, err := readFunctionError(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	a.mu.Lock()
	first := a.initErr == nil
	if first {
		a.initErr = fe
	}
	a.mu.Unlock()
	if !first {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "an init error was already reported")
		return
	}
	close(a.initDone)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// readFunctionError reads an error body ({"errorMessage", "errorType"});
// the error type header wins over the body's, and a trailer of that name
// (aws-lambda-go sends one when its body fails) over both.
func readFunctionError(r *http.Request) (*FunctionError, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, runtimeapi.MaxResponseSize))
	if err != nil {
		return nil, err
	}
	fe := &FunctionError{}
	if json.Unmarshal(body, fe) != nil || (fe.ErrorMessage == "" && fe.ErrorType == "") {
		fe = &FunctionError{ErrorMessage: strings.TrimSpace(string(body))}
	}
	if t := r.Header.Get(runtimeapi.HeaderFunctionErrorType); t != "" {
		fe.ErrorType = t
	}
	if t := r.Trailer.Get(runtimeapi.HeaderFunctionErrorType); t != "" {
		fe.ErrorType = t
	}
	if fe.ErrorType == "" {
		fe.ErrorType = "Unhandled"
	}
	return fe, nil
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&runtimeapi.ErrorBody{ErrorType: typ, ErrorMessage: msg})
}

// asJSON returns b when it is JSON, else b as a JSON string.
func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// newRequestID returns a random UUID (version 4), as Lambda's request IDs.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// traceID returns an X-Ray trace header value like Lambda's.
func traceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}
