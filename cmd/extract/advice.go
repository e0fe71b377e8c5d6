package main

import (
	"fmt"
)

// The packages under pkg/ return typed errors that say what went wrong in
// their own terms: they are libraries, and know no command line. Only the
// CLI knows its flags, so the advice that names one (the flag or command that
// gets past an error) is added here, one function per package, each in the
// file advice_PACKAGE.go.

// advisers are asked in turn; the first that knows the error advises.
var advisers = []func(error) string{adviceImage, adviceLambda, adviceDeploy, adviceLocal}

// advice is the CLI's advice for err, or "".
func advice(err error) string {
	for _, a := range advisers {
		if s := a(err); s != "" {
			return s
		}
	}
	return ""
}

// advised is err with the CLI's advice after it, as the user reads it:
// "what went wrong; what to do". The error chain is kept, so exit codes
// still see the typed errors.
func advised(err error) error {
	if err == nil {
		return nil
	}
	a := advice(err)
	if a == "" {
		return err
	}
	return &advisedError{err: err, advice: a}
}

type advisedError struct {
	err    error
	advice string
}

func (e *advisedError) Error() string { return fmt.Sprintf("%v; %s", e.err, e.advice) }
func (e *advisedError) Unwrap() error { return e.err }
