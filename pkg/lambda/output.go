package lambda

import (
	"fmt"
	"strings"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// OutputSettingsError is returned when a package's output settings do not
// fit its command: StdoutAlso for a program whose output is stdout anyway
// (no "{output}" in its arguments, no output directory), or "{output}"
// together with an output directory (a run's output is one file or the
// files of one directory, not both).
type OutputSettingsError struct {
	// Args is the program's argv; Dir the output directory.
	Args []string
	Dir  string
	// StdoutAlso is set for the first problem, unset for the second.
	StdoutAlso bool
}

func (e *OutputSettingsError) Error() string {
	if e.StdoutAlso {
		return fmt.Sprintf("keeping stdout beside the output asks for an output file or directory, but the arguments %q hold no %s and no output directory is set: stdout is the output already",
			e.Args, xruntime.OutputPlaceholder)
	}
	return fmt.Sprintf("the arguments %q hold %s and the output directory is %q: the output is one file or one directory's files, not both; write the file into the directory instead, or drop the directory",
		e.Args, xruntime.OutputPlaceholder, e.Dir)
}

// checkOutput refuses output settings that do not fit the manifest's
// command (see OutputSettingsError).
func checkOutput(m xruntime.Manifest) error {
	file := hasPlaceholder(m.Args, xruntime.OutputPlaceholder)
	switch {
	case file && m.Output.Dir != "":
		return &OutputSettingsError{Args: m.Args, Dir: m.Output.Dir}
	case m.Output.StdoutAlso && !file && m.Output.Dir == "":
		return &OutputSettingsError{Args: m.Args, StdoutAlso: true}
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
