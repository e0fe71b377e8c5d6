package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/local"
)

// TestAdviceLocal: the errors of pkg/local say what went wrong (and why)
// without naming the command line; the CLI's message adds what to do.
func TestAdviceLocal(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"not Linux", fmt.Errorf("invoke: %w", &local.UnsupportedError{OS: "windows"}),
			[]string{"invoke: running a package locally needs Linux, and this is windows: a package's bootstrap and programs are Linux executables",
				"; run extract invoke on a Linux machine", "or deploy the package and invoke it on Lambda"}},
		{"image not as root", fmt.Errorf("invoke oci:x: %w", local.ErrImageNeedsRoot),
			[]string{"invoke oci:x: running an image package needs root: ", "; run extract invoke as root (sudo), or invoke a zip package (extract package --format zip)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := tt.err.Error(); strings.Contains(s, "--") || strings.Contains(s, "extract ") {
				t.Errorf("%T error %q names the command line", tt.err, s)
			}
			got := advised(tt.err).Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("advised(%v) = %q, want it to contain %q", tt.err, got, w)
				}
			}
		})
	}
}
