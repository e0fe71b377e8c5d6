package main

// adviceDeploy advises on the typed errors of pkg/deploy (see advice.go), or "".
func adviceDeploy(err error) string {
	return ""
}
