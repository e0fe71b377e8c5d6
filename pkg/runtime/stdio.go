package runtime

import (
	"errors"
	"io"
	"os"
	"time"
)

// The readers and writers between the program's pipes and the transfers:
// exitReader and gateReader stand between its stdout and the upload,
// copyToPipe between the input object and its stdin.

// exitGrace is how long, once the program has exited, a read of its stdout
// pipe waits for bytes before taking the output as ended: everything the
// program wrote is in the pipe by then, so only a descendant that escaped
// the kill could still write.
const exitGrace = 100 * time.Millisecond

// exitReader reads the program's stdout pipe, and once the program has
// exited, only what the pipe holds: a read that finds it empty for
// exitGrace ends the output, even if a daemon the program started still
// holds the pipe open.
type exitReader struct {
	f      *os.File
	exited <-chan struct{}
}

func (e *exitReader) Read(p []byte) (int, error) {
	for {
		var deadline time.Time
		select {
		case <-e.exited:
			deadline = time.Now().Add(exitGrace)
			_ = e.f.SetReadDeadline(deadline)
		default:
		}
		n, err := e.f.Read(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if deadline.IsZero() || time.Now().Before(deadline) {
				continue // woken by the exit, not by its own deadline
			}
			return n, io.EOF
		}
		return n, err
	}
}

func (e *exitReader) Close() error { return e.f.Close() }

var errProgramFailed = errors.New("program failed")

// gateReader passes r through and, at its end, returns wait's error
// instead of io.EOF when there is one.
type gateReader struct {
	r       io.Reader
	wait    func() error
	n       int64
	checked bool
	err     error
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.checked {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if err == io.EOF {
		g.checked = true
		g.err = io.EOF
		if werr := g.wait(); werr != nil {
			g.err = werr
		}
		return n, g.err
	}
	return n, err
}

// copyToPipe copies src to the program's stdin and returns src's read
// error; a write error (the program stopped reading) is not an error.
func copyToPipe(w io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// Drain nothing more: the program has closed its stdin.
				return total, nil
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
