//go:build linux && (amd64 || arm64)

package image

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/comingout/extract/internal/testkit"
)

// TestTraceKillWithoutPidfd: where pidfd_open fails (Linux before 5.3, or a
// seccomp profile refusing it), the timeout still kills the sandbox, by its
// process ID. The program sleeps 60 s in two processes; the trace must end
// soon after its 1 s timeout with the program killed.
func TestTraceKillWithoutPidfd(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the trace fixtures are amd64: run on an amd64 host")
	}
	testkit.Root(t, "the trace sandbox test runs as root")
	v1img, _ := testkit.FixtureImage(t, "sh-tools")
	img := fromV1(t, v1img)
	idx, err := BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ResolveCommand(img, idx, Override{Entrypoint: []string{"/bin/sh", "-c", "sleep 60 & sleep 60; wait"}, EntrypointSet: true, CmdSet: true})
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(input, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	pidfdOpen = func(int, int) (int, error) {
		calls.Add(1)
		return -1, unix.ENOSYS
	}
	t.Cleanup(func() { pidfdOpen = unix.PidfdOpen })

	start := time.Now()
	tr, err := Trace(context.Background(), img, idx, cmd, input, WithTraceTimeout(time.Second))
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	took := time.Since(start)
	if calls.Load() == 0 {
		t.Fatal("the pidfd_open hook was not called: the test does not take the fallback path")
	}
	if !tr.TimedOut || tr.ExitCode != -1 || tr.Signal != "killed" {
		t.Errorf("Trace(sleep 60, 1s, no pidfd) = timed out %v, exit %d, signal %q; want killed at the timeout", tr.TimedOut, tr.ExitCode, tr.Signal)
	}
	if tr.RunDuration > 20*time.Second {
		t.Errorf("the program ran %s after a 1 s timeout: it was not killed", tr.RunDuration)
	}
	t.Logf("trace %s, program %s", took, tr.RunDuration)
}
