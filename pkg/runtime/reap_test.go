package runtime

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHandleDaemonHoldsStdout: a program that starts a daemon (setsid)
// keeping its stdout pipe, and exits, ends the invocation promptly with
// its own output. As a subreaper, as the bootstrap makes itself, the
// handler also kills the daemon; without, the daemon lives on but no
// longer blocks the invocation until its timeout.
func TestHandleDaemonHoldsStdout(t *testing.T) {
	if err := setSubreaper(false); err != nil {
		t.Skipf("no child subreapers here: %v", err)
	}
	for _, subreaper := range []bool{true, false} {
		t.Run(fmt.Sprintf("subreaper=%v", subreaper), func(t *testing.T) {
			if err := setSubreaper(subreaper); err != nil {
				t.Fatal(err)
			}
			defer setSubreaper(false)
			s := mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "daemon"},
				Output: Output{Stdout: StdoutPipe}})
			s.put(t, "a.csv", []byte("x\n"))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := s.h.Handle(ctx, s3Event(s.bucket, "a.csv"))
			elapsed := time.Since(start)
			var pid int
			for _, l := range strings.Split(s.log.String(), "\n") {
				fmt.Sscanf(l, "a.csv: daemon %d", &pid)
			}
			if pid == 0 {
				t.Fatalf("no daemon pid in the program log %q", s.log.String())
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Handle took %v, want it to end when the program did", elapsed)
			}
			if got, _ := s.get(t, "output/a.csv"); string(got) != "parent output\n" {
				t.Errorf("output = %q, want %q", got, "parent output\n")
			}
			if subreaper && alive(pid) {
				t.Errorf("daemon %d survived the run", pid)
			}
		})
	}
}
