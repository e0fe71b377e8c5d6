package main

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/testkit"
)

// closureCommands are the commands that compute a closure from an image.
var closureCommands = []string{"inspect", "package", "deploy"}

// TestClosureFlagsShared: inspect, package and deploy accept every closure
// flag, each defined as closureFlags defines it (name, aliases, usage,
// default), so a flag means the same on all three.
func TestClosureFlagsShared(t *testing.T) {
	want := map[string]string{}
	var names []string
	for _, f := range closureFlags() {
		want[f.Names()[0]] = f.String()
		names = append(names, f.Names()[0])
	}
	for _, n := range []string{"entrypoint", "cmd", "include", "exclude", "gconv", "no-scan", "no-data", "input", "trace", "trace-timeout"} {
		if _, ok := want[n]; !ok {
			t.Errorf("closureFlags() lacks --%s", n)
		}
	}
	app := newApp()
	for _, name := range closureCommands {
		cmd := app.Command(name)
		if cmd == nil {
			t.Fatalf("no %s command", name)
		}
		got := map[string]string{}
		for _, f := range cmd.Flags {
			if _, ok := want[f.Names()[0]]; ok {
				got[f.Names()[0]] = f.String()
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s's closure flags differ from closureFlags() (-want +got):\n%s", name, diff)
		}
	}
	t.Logf("closure flags on %v: %v", closureCommands, names)
}

// TestTraceTimeoutMeaning: --trace-timeout must be above 0 on every
// command that traces; 0 is a usage error, not a default or "no limit".
func TestTraceTimeoutMeaning(t *testing.T) {
	missing := "docker-archive:" + filepath.Join(t.TempDir(), "none.tar")
	for _, name := range closureCommands {
		for _, d := range []string{"0", "0s", "-1s"} {
			args := []string{name, "--trace", "sample", "--trace-timeout", d}
			if name == "deploy" {
				args = append(args, "--function", "f", "--bucket", "b")
			}
			_, stderr, code := runCLI(t, append(args, missing)...)
			if code != exitUsage || !strings.Contains(stderr, "--trace-timeout") {
				t.Errorf("%s --trace-timeout %s: exit %d, stderr %q; want %d naming --trace-timeout", name, d, code, stderr, exitUsage)
			}
		}
	}
}

// TestGconvMeaning: --gconv adds glibc's gconv directory to the closure
// inspect shows and to the closure package packages, the same files.
func TestGconvMeaning(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap")
	}
	const gconv = "/usr/lib/x86_64-linux-gnu/gconv"
	archive := "docker-archive:" + hostTrueArchive(t, map[string]string{
		gconv + "/gconv-modules": gconv + "/gconv-modules",
		gconv + "/UTF-16.so":     gconv + "/UTF-16.so",
	})
	closurePaths := func(args ...string) []string {
		t.Helper()
		stdout, stderr, code := runCLI(t, append(args, "--json", archive)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d, stderr:\n%s", args, code, stderr)
		}
		var doc struct {
			Closure struct {
				Files []struct {
					Path string `json:"path"`
				} `json:"files"`
			} `json:"closure"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatalf("%v --json: %v\n%s", args, err, stdout)
		}
		var paths []string
		for _, f := range doc.Closure.Files {
			paths = append(paths, f.Path)
		}
		return paths
	}
	zip := filepath.Join(t.TempDir(), "fn.zip")
	for _, gconvFlag := range []bool{false, true} {
		flag := "--gconv=" + map[bool]string{false: "false", true: "true"}[gconvFlag]
		inspected := closurePaths("inspect", "--no-layers", flag)
		packaged := closurePaths("package", "-o", zip, flag)
		if diff := cmp.Diff(inspected, packaged); diff != "" {
			t.Errorf("%s: inspect's and package's closures differ (-inspect +package):\n%s", flag, diff)
		}
		for _, p := range []string{gconv + "/gconv-modules", gconv + "/UTF-16.so"} {
			if slices.Contains(inspected, p) != gconvFlag {
				t.Errorf("inspect %s: closure has %s = %v, want %v (closure %q)", flag, p, !gconvFlag, gconvFlag, inspected)
			}
		}
	}
}

// TestTraceInputMeaning: in a traced run, {input} is the sample's path with
// --input file and stays as written with --input stdin (the sample is then
// stdin), on inspect and package alike: cat {input} succeeds only with file.
func TestTraceInputMeaning(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the trace runs the amd64 image's program")
	}
	testkit.Root(t, "the trace sandbox test runs as root")
	archive := "docker-archive:" + hostTrueArchive(t, map[string]string{"/usr/bin/cat": "/usr/bin/cat"})
	sample := testkit.WriteFile(t, filepath.Join(t.TempDir(), "sample.csv"), []byte("a,b\n"))
	zip := filepath.Join(t.TempDir(), "fn.zip")
	for _, mode := range []string{"file", "stdin"} {
		wantExit := map[string]int{"file": 0, "stdin": 1}[mode]
		for _, args := range [][]string{{"inspect", "--no-layers"}, {"package", "-o", zip}} {
			args = append(args, "--json", "--entrypoint", "/usr/bin/cat", "--cmd", `["{input}"]`, "--input", mode, "--trace", sample, archive)
			stdout, stderr, code := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("%v: exit %d, stderr:\n%s", args, code, stderr)
			}
			var doc struct {
				Trace struct {
					Run struct {
						ExitCode int    `json:"exit_code"`
						Stderr   string `json:"stderr"`
					} `json:"run"`
				} `json:"trace"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stdout)
			}
			if doc.Trace.Run.ExitCode != wantExit {
				t.Errorf("%s --input %s: traced cat {input} exited %d (stderr %q), want %d", args[0], mode, doc.Trace.Run.ExitCode, doc.Trace.Run.Stderr, wantExit)
			}
		}
	}
}
