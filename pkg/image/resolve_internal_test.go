package image

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTraceCommand: the traced run gets the output placeholder replaced by
// TraceOutputPath in every argument, and the command it was given is left
// as it is.
func TestTraceCommand(t *testing.T) {
	cmd := &Command{Path: "/usr/bin/sort", Args: []string{"/usr/bin/sort", "-o", "{output}", "--x={output}.gz"}}
	got := traceCommand(cmd, "{output}")
	want := []string{"/usr/bin/sort", "-o", TraceOutputPath, "--x=" + TraceOutputPath + ".gz"}
	if diff := cmp.Diff(want, got.Args); diff != "" {
		t.Errorf("traceCommand args (-want +got):\n%s", diff)
	}
	if cmd.Args[2] != "{output}" {
		t.Errorf("traceCommand changed the command's own args: %q", cmd.Args)
	}
	if traceCommand(cmd, "") != cmd {
		t.Error("traceCommand without a placeholder made a copy")
	}
}
