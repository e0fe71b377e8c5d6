package local

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckOS: Invoke runs on Linux only, and elsewhere says so, and why.
func TestCheckOS(t *testing.T) {
	if err := checkOS("linux"); err != nil {
		t.Errorf(`checkOS("linux") = %v, want nil`, err)
	}
	for _, goos := range []string{"darwin", "windows", "freebsd"} {
		err := checkOS(goos)
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.OS != goos {
			t.Fatalf("checkOS(%q) = %#v, want an *UnsupportedError for %s", goos, err, goos)
		}
		for _, w := range []string{"needs Linux", "this is " + goos, "Linux executables", "namespace"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("checkOS(%q) = %q, want it to contain %q", goos, err, w)
			}
		}
	}
}
