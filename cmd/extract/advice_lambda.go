package main

// adviceLambda advises on the typed errors of pkg/lambda (see advice.go), or "".
func adviceLambda(err error) string {
	return ""
}
