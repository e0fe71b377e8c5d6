package main

// adviceLocal advises on the typed errors of pkg/local (see advice.go), or "".
func adviceLocal(err error) string {
	return ""
}
