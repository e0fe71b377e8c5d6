// Package runtimeapi is the wire format of the Lambda Runtime API (version
// 2018-06-01), defined once for both of its ends in this module: the
// bootstrap's client loop (pkg/runtime) and the local emulator's server
// (pkg/local). It holds constants, two path builders and one type, and
// imports nothing, so the bootstrap's dependency set stays as it is.
package runtimeapi

// Prefix is the path every Runtime API request starts with: the API's
// version, then "runtime". A client prepends "http://" and the value of
// AWS_LAMBDA_RUNTIME_API (host:port).
const Prefix = "/2018-06-01/runtime"

// Paths under Prefix. ID in a name stands for the request ID.
const (
	// PathNext (GET) waits for the next invocation's event.
	PathNext = "/invocation/next"
	// PathInitError (POST) reports a runtime that failed to initialize.
	PathInitError = "/init/error"
)

// ResponsePath (POST) is the path of the answer to the invocation id.
func ResponsePath(id string) string { return "/invocation/" + id + "/response" }

// ErrorPath (POST) is the path of the error of the invocation id.
func ErrorPath(id string) string { return "/invocation/" + id + "/error" }

// Headers of the Runtime API: those of the event /next returns, then the
// one a runtime sets on an error it posts.
const (
	HeaderRequestID   = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMS  = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID     = "Lambda-Runtime-Trace-Id"
	// HeaderFunctionErrorType names an error's type; it wins over the
	// body's errorType (and, as a trailer, over both).
	HeaderFunctionErrorType = "Lambda-Runtime-Function-Error-Type"
)

// MaxResponseSize is the payload limit of a synchronous invocation's
// response (6 MB).
const MaxResponseSize = 6 << 20

// ErrorBody is the body of an invocation or init error, as the Runtime API
// documents it ({"errorMessage", "errorType", "stackTrace"}), with what
// the extract bootstrap adds for a failed record (the first, when several
// failed): the program's exit status and its last stderr lines, which
// ErrorMessage also holds. The emulator reports an invocation's failure
// with the same type, so the error a function posts arrives whole.
type ErrorBody struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
	// ExitStatus is the program's exit status, -1 when it did not exit
	// normally or never ran.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Stderr holds the program's last stderr lines.
	Stderr []string `json:"stderr,omitempty"`
}

// Error reads like "RecordError: processing s3://in/a.csv: ...", or the
// message alone when the type is empty.
func (e *ErrorBody) Error() string {
	if e.ErrorType == "" {
		return e.ErrorMessage
	}
	return e.ErrorType + ": " + e.ErrorMessage
}
