package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/comingout/extract/internal/testkit"
)

// TestInspectTrace runs inspect --trace on the host-true image: the TRACE
// section reports the run and the sizes, and --json carries what was seen.
func TestInspectTrace(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the trace runs the amd64 image's program")
	}
	testkit.Root(t, "the trace sandbox test runs as root")
	archive := hostTrueArchive(t)
	sample := filepath.Join(t.TempDir(), "sample.csv")
	if err := os.WriteFile(sample, []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runApp(t, "inspect", "--no-layers", "--trace", sample, "--trace-timeout", "20s", "docker-archive:"+archive)
	if err != nil {
		t.Fatalf("inspect --trace: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"TRACE (exit 0, 1 processes,",
		"static rules:    ",
		"with the trace:  ",
		"the trace added nothing the static rules missed",
		"seen at run time",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect --trace output lacks %q:\n%s", want, out)
		}
	}

	out, stderr, err = runApp(t, "inspect", "--no-layers", "--json", "--trace", sample, "docker-archive:"+archive)
	if err != nil {
		t.Fatalf("inspect --json --trace: %v\n%s", err, stderr)
	}
	var doc struct {
		Trace struct {
			Run struct {
				Paths    []string `json:"paths"`
				ExitCode int      `json:"exit_code"`
			} `json:"run"`
			Added       []string `json:"added"`
			StaticFiles int      `json:"static_files"`
			Files       int      `json:"files"`
		} `json:"trace"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if !slices.Contains(doc.Trace.Run.Paths, "/bin/true") || doc.Trace.Run.ExitCode != 0 {
		t.Errorf("inspect --json trace.run = %+v, want /bin/true seen and exit 0", doc.Trace.Run)
	}
	if doc.Trace.Files != doc.Trace.StaticFiles || len(doc.Trace.Added) != 0 {
		t.Errorf("inspect --json trace = %+v, want nothing added to the static closure of true", doc.Trace)
	}
}
