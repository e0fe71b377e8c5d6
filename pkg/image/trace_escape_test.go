//go:build linux && (amd64 || arm64)

package image_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

const (
	escapePath = "/usr/local/bin/escape"
	probePath  = "/usr/local/bin/probe"
)

// staticProgramImage is the sh-tools fixture plus the program
// testdata/trace/src, linked statically, at the image path progPath, as its
// entrypoint.
func staticProgramImage(t *testing.T, src, progPath string) (*image.Image, *image.Index) {
	t.Helper()
	base, _ := testkit.FixtureImage(t, "sh-tools")
	img := withLayer(t, base, v1.Config{Entrypoint: []string{progPath}, WorkingDir: "/work"},
		testkit.File{Name: strings.TrimPrefix(progPath, "/"), Mode: 0o755, Body: string(mustGCC(t, src, "-static"))})
	return openImage(t, img, "linux/amd64")
}

// TestTraceEscape is issue 11's proof of concept: a static program makes a
// child with clone(CLONE_UNTRACED), which ptrace does not follow, and the
// child climbs out of the sandbox's root (chroot into a subdirectory,
// chdir("..") up, chroot(".")), lists the root it reached and creates a
// marker file in a host directory anyone may write to. The marker must not
// appear, the listing must show no host-only entry, and the trace must
// still finish and report what the program opened. TestTraceUnprivileged
// runs it again as nobody.
func TestTraceEscape(t *testing.T) {
	traceable(t)
	ctx := context.Background()
	img, idx := staticProgramImage(t, "escape.c", escapePath)
	// Not t.TempDir: the escaped child is not root on the host (as root,
	// the image's root is host ID 1<<30), so the directory must be open
	// to it for the test to see an escape.
	dir, err := os.MkdirTemp("", "extract-escape-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "marker")
	cmd, err := image.ResolveCommand(img, idx, image.Override{Cmd: []string{marker}, CmdSet: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := image.Trace(ctx, img, idx, cmd, mustInput(t, "x\n"), image.WithTraceTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	t.Logf("exit code %d, stderr:\n%s", tr.ExitCode, tr.Stderr)
	if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the untraced child escaped the sandbox and wrote %s on the host (Lstat: %v)", marker, err)
	}
	// What the child listed as "/" must be the sandbox's root, never the
	// host's.
	hostRoot, err := os.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(tr.Stderr, "\n") {
		if name, ok := strings.CutPrefix(line, "root: "); ok {
			listed[name] = true
		}
	}
	// The sandbox adds /dev, /tmp and the WORKDIR to the image.
	sandboxMade := map[string]bool{"dev": true, "tmp": true, "work": true}
	for _, e := range hostRoot {
		if _, _, err := idx.Resolve("/" + e.Name()); err != nil && listed[e.Name()] && !sandboxMade[e.Name()] {
			t.Errorf("the untraced child listed the host's /%s", e.Name())
		}
	}
	if tr.TimedOut {
		t.Errorf("the trace timed out")
	}
	for _, p := range []string{escapePath, "/etc/passwd"} {
		if !slices.Contains(tr.Paths, p) {
			t.Errorf("Trace paths lack %s; got %q", p, tr.Paths)
		}
	}
}

// TestTraceSandboxProbe checks each layer of the sandbox from inside, with
// testdata/trace/probe.c: no_new_privs, a seccomp filter, no capabilities
// in any set, no descriptors but 0-2, SIGKILL as parent-death signal, and
// the filter's answers to calls the tracer lets through
// (clone with CLONE_UNTRACED or CLONE_NEWUSER, clone3, keyctl, bpf); and,
// from the host while it sleeps, that its root is the root of its own mount
// (pivot_root), not a directory of the host's file system (chroot).
// TestTraceUnprivileged runs it again as nobody.
func TestTraceSandboxProbe(t *testing.T) {
	traceable(t)
	img, idx := staticProgramImage(t, "probe.c", probePath)
	cmd, err := image.ResolveCommand(img, idx, image.Override{Cmd: []string{"2"}, CmdSet: true})
	if err != nil {
		t.Fatal(err)
	}
	// The probe's root as the host reads it in /proc/PID/root: "/" after a
	// pivot_root (its mount is not reachable from the host's root), the
	// sandbox directory's host path under a chroot.
	roots := make(chan string, 1)
	stop := make(chan struct{})
	go func() {
		defer close(roots)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			procs, _ := os.ReadDir("/proc")
			for _, p := range procs {
				exe, err := os.Readlink(filepath.Join("/proc", p.Name(), "exe"))
				if err != nil || !strings.HasSuffix(exe, probePath) {
					continue
				}
				if root, err := os.Readlink(filepath.Join("/proc", p.Name(), "root")); err == nil {
					roots <- root
					return
				}
			}
		}
	}()
	tr, err := image.Trace(context.Background(), img, idx, cmd, mustInput(t, "x\n"), image.WithTraceTimeout(20*time.Second))
	close(stop)
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	if root, ok := <-roots; !ok {
		t.Errorf("the probe's process was not found in /proc while it slept")
	} else if root != "/" {
		t.Errorf("the probe's root, read from the host, is %q: a directory of the host's file system, not a pivot_root", root)
	}
	if tr.ExitCode != 0 {
		t.Fatalf("probe: exit code %d, stderr:\n%s", tr.ExitCode, tr.Stderr)
	}
	got := map[string]string{}
	for _, line := range strings.Split(tr.Stderr, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	want := map[string]string{
		"nnp":            "1",
		"seccomp":        "2",
		"cap_eff":        "0",
		"cap_prm":        "0",
		"cap_inh":        "0",
		"cap_bnd":        "0",
		"fds":            "0,1,2",
		"pdeathsig":      "9", // SIGKILL: the program dies with the tracer
		"clone_untraced": "EPERM",
		"clone_newuser":  "EPERM",
		"clone3":         "ENOSYS",
		"keyctl":         "EPERM",
		"bpf":            "EPERM",
	}
	for k, w := range want {
		v, ok := got[k]
		if strings.HasPrefix(k, "cap_") && k != "cap_bnd" {
			v = strings.TrimLeft(v, "0")
			if v == "" && ok {
				v = "0"
			}
		}
		if !ok || v != w {
			t.Errorf("in the sandbox %s = %q, want %q", k, got[k], w)
		}
	}
	if t.Failed() {
		t.Logf("probe stderr:\n%s", tr.Stderr)
	}
}

// TestTraceForeignABI: the seccomp filter kills a process making a syscall
// of another ABI than the host's (an i386 int $0x80 from an x86_64
// program), whose numbers its table would read as other calls.
func TestTraceForeignABI(t *testing.T) {
	traceable(t)
	img, idx := staticProgramImage(t, "probe.c", probePath)
	cmd, err := image.ResolveCommand(img, idx, image.Override{Cmd: []string{"int80"}, CmdSet: true})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := image.Trace(context.Background(), img, idx, cmd, mustInput(t, "x\n"), image.WithTraceTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	if tr.ExitCode != -1 || tr.Signal != "bad system call" {
		t.Errorf("probe int80: exit %d, signal %q; want killed by SIGSYS; stderr:\n%s", tr.ExitCode, tr.Signal, tr.Stderr)
	}
}
