package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// RecordError reports an S3 record whose program run or object transfer did
// not succeed. Nothing is written to the output key when it occurs.
type RecordError struct {
	// Bucket and Key name the input object.
	Bucket, Key string
	// Op is what failed: "reading input", "running program" or
	// "writing output".
	Op string
	// ExitCode is the program's exit status, -1 when it did not exit
	// normally (or was never started).
	ExitCode int
	// Signal names the signal that ended the program, if one did.
	Signal string
	// TimedOut says the program's process group was killed KillMargin
	// before the invocation deadline.
	TimedOut   bool
	KillMargin time.Duration
	// Stderr holds the last lines the program wrote to stderr.
	Stderr []string
	// Err is the underlying error, if any beyond the program's status.
	Err error
}

// Error reads like "processing s3://in/a.csv: program exited with status 3;
// last stderr lines: ...".
func (e *RecordError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "processing s3://%s/%s: ", e.Bucket, e.Key)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "timed out: killed the program's process group %v before the invocation deadline", e.KillMargin)
	case e.Signal != "":
		fmt.Fprintf(&b, "program killed by signal %s", e.Signal)
	case e.ExitCode > 0:
		fmt.Fprintf(&b, "program exited with status %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "%s: %v", e.Op, e.Err)
	}
	if e.Err != nil && (e.TimedOut || e.Signal != "" || e.ExitCode > 0) {
		fmt.Fprintf(&b, " (%s: %v)", e.Op, e.Err)
	}
	if len(e.Stderr) > 0 {
		b.WriteString("; last stderr lines:")
		for _, l := range e.Stderr {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *RecordError) Unwrap() error { return e.Err }

// exitStatus returns the program's exit status err reports: a
// RecordError's ExitCode, else -1.
func exitStatus(err error) int {
	var re *RecordError
	if errors.As(err, &re) {
		return re.ExitCode
	}
	return -1
}
