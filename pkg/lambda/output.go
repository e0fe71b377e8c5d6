package lambda

import (
	"fmt"
	"strings"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// OutputSettingsError is returned when a package's output settings do not
// fit its command: StdoutAlso for a program whose output is stdout anyway,
// with no "{output}" in its arguments and no output directory.
type OutputSettingsError struct {
	// Args is the program's argv.
	Args []string
}

func (e *OutputSettingsError) Error() string {
	return fmt.Sprintf("keeping stdout beside the output asks for an output file or directory, but the arguments %q hold no %s and no output directory is set: stdout is the output already",
		e.Args, xruntime.OutputPlaceholder)
}

// checkOutput refuses output settings that do not fit the manifest's
// command (see OutputSettingsError). "{output}" and an output directory
// may go together: the file is then the output object, and the
// directory's files go beside it.
func checkOutput(m xruntime.Manifest) error {
	if m.Output.StdoutAlso && m.Output.Dir == "" && !hasPlaceholder(m.Args, xruntime.OutputPlaceholder) {
		return &OutputSettingsError{Args: m.Args}
	}
	return nil
}

// hasPlaceholder reports whether an argument holds ph.
func hasPlaceholder(args []string, ph string) bool {
	for _, a := range args {
		if strings.Contains(a, ph) {
			return true
		}
	}
	return false
}
