package main

// adviceImage advises on the typed errors of pkg/image (see advice.go), or "".
func adviceImage(err error) string {
	return ""
}
