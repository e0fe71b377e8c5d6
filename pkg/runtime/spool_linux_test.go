package runtime

import (
	"context"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestHandleStdoutModes runs the same program with each stdout mode: it
// sees a regular file by default and a pipe when asked, and the output is
// the same either way.
func TestHandleStdoutModes(t *testing.T) {
	for mode, want := range map[string]string{"": "regular file", StdoutFile: "regular file", StdoutPipe: "pipe"} {
		t.Run("mode="+mode, func(t *testing.T) {
			s := mustHandlerFor(t, Manifest{Version: 1, Program: "/bin/testprog", Args: []string{"testprog", "stdout-type"},
				Output: Output{Stdout: mode}})
			s.put(t, "a.csv", []byte("x\n"))
			if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, "a.csv")); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			got, _ := s.get(t, "output/a.csv")
			if string(got) != want+"\n" {
				t.Errorf("the program's stdout was %q, want %q", got, want+"\n")
			}
		})
	}
}

// TestSpoolBackPressure starts a program that writes far more than the
// spool's high mark, as fast as it can, and reads nothing for a while: the
// program is stopped past the mark instead of filling /tmp, and once read,
// every byte comes through while the file's blocks stay far under what was
// written (what was read is punched out).
func TestSpoolBackPressure(t *testing.T) {
	const total = 8 * spoolHigh
	sp, err := newSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cmd := exec.Command(testProg, "zeros", strconv.Itoa(total))
	cmd.Stdout = sp.w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	sp.start(cmd.Process.Pid, exited)

	// Nobody reads: the program must be stopped, then stay stopped. How
	// far past the mark it gets depends on the monitor's tick and on the
	// machine's load, so what is checked is that it stops and stays.
	deadline := time.Now().Add(20 * time.Second)
	for sp.stops.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the program was never stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	size := func() int64 {
		fi, err := sp.r.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(100 * time.Millisecond) // a write in flight lands
	held := size()
	time.Sleep(500 * time.Millisecond)
	if now := size(); now != held {
		t.Errorf("the stopped program wrote on: %d MiB, then %d MiB", held>>20, now>>20)
	}
	if held < spoolHigh || held >= total {
		t.Errorf("stopped at %d MiB, want past the %d MiB mark and short of the %d MiB", held>>20, spoolHigh>>20, total>>20)
	}
	select {
	case <-exited:
		t.Fatal("the program finished while nothing was read")
	default:
	}

	buf := make([]byte, 1<<20)
	var n int64
	var maxBlocks int64
	for {
		m, err := sp.Read(buf)
		for _, b := range buf[:m] {
			if b != 0 {
				t.Fatalf("byte %d is %d, want 0", n, b)
			}
		}
		n += int64(m)
		if st, serr := sp.r.Stat(); serr == nil {
			maxBlocks = max(maxBlocks, st.Sys().(*syscall.Stat_t).Blocks*512)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", n, err)
		}
	}
	if n != total {
		t.Errorf("read %d bytes, want %d", n, total)
	}
	// Without punching the file would end up holding all of it; with
	// it, each stop-and-resume cycle's backlog (how far past the mark a
	// cycle gets varies with the load).
	if !sp.noPunch && maxBlocks > total/2 {
		t.Errorf("the file held up to %d MiB on disk for %d MiB written, want the read part punched out", maxBlocks>>20, total>>20)
	}
	t.Logf("stopped %d times; at most %d MiB on disk for %d MiB written (punching: %v)", sp.stops.Load(), maxBlocks>>20, total>>20, !sp.noPunch)
}
