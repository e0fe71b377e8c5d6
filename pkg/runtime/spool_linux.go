package runtime

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The program's stdout is a regular file, not a pipe (Output.Stdout "file",
// the default): some runtimes buffer their output only on regular files.
// libgfortran writes every record of a formatted WRITE with its own
// write(2) when stdout is a pipe — 1.1 million of them for the 10 MB
// momentum sample — and the Fortran showcase ran 2.1× slower through the
// bootstrap than on files. The file is read behind the program and
// uploaded as it grows, so the output still streams.
//
// What a pipe gave for free is kept by hand:
//   - bounded space: what has been read is punched out of the file
//     (FALLOC_FL_PUNCH_HOLE), so /tmp only holds the backlog not yet read;
//   - back-pressure: when that backlog passes spoolHigh the program's
//     process group is stopped (SIGSTOP) until it falls under spoolLow;
//   - write order: the program's descriptor is opened O_APPEND, so even a
//     program that seeks its stdout only ever appends, as on a pipe.
const (
	spoolHigh = 64 << 20
	spoolLow  = 32 << 20
	// punchEvery is how much is read between two punches.
	punchEvery = 8 << 20
	// spoolPollMax is the longest wait between two looks at the end of
	// the file while the program runs.
	spoolPollMax = 8 * time.Millisecond
)

const (
	fallocKeepSize  = 0x1 // FALLOC_FL_KEEP_SIZE
	fallocPunchHole = 0x2 // FALLOC_FL_PUNCH_HOLE
)

// spool is the program's stdout file and the reader that follows it.
type spool struct {
	w *os.File // the program's stdout (O_WRONLY|O_APPEND)
	r *os.File
	// off is how far the file has been read; punched how far it has been
	// punched out.
	off     atomic.Int64
	punched int64
	noPunch bool
	// exited is closed when the program and its group are gone: the file
	// ends where it is then.
	exited <-chan struct{}
	pgid   int
	done   chan struct{} // closed by Close: stops the monitor
	once   sync.Once
	// stops counts the times the program was stopped for back-pressure.
	stops atomic.Int64
}

// newSpool creates the file in the temporary directory, unlinked at once:
// nothing is left behind whatever happens to the bootstrap.
func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "extract-stdout-")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	w, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	os.Remove(name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &spool{w: w, r: f, done: make(chan struct{})}, nil
}

// start follows the program of process group pgid; exited must close once
// it has exited and its group is killed.
func (s *spool) start(pgid int, exited <-chan struct{}) {
	s.pgid, s.exited = pgid, exited
	go s.monitor()
}

// monitor stops the program while the backlog is over spoolHigh.
func (s *spool) monitor() {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	stopped := false
	defer func() {
		if stopped {
			_ = syscall.Kill(-s.pgid, syscall.SIGCONT)
		}
	}()
	for {
		select {
		case <-s.exited:
			return
		case <-s.done:
			return
		case <-t.C:
		}
		fi, err := s.r.Stat()
		if err != nil {
			continue
		}
		backlog := fi.Size() - s.off.Load()
		switch {
		case !stopped && backlog > spoolHigh:
			if syscall.Kill(-s.pgid, syscall.SIGSTOP) == nil {
				stopped = true
				s.stops.Add(1)
			}
		case stopped && backlog < spoolLow:
			_ = syscall.Kill(-s.pgid, syscall.SIGCONT)
			stopped = false
		}
	}
}

// Read reads the file behind the program: at its end it waits for more
// while the program runs, and ends when the program has exited.
func (s *spool) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	wait := 250 * time.Microsecond
	for {
		// Looked at before reading: once the program has exited,
		// everything it wrote is in the file, so an empty read is the end.
		var exited bool
		select {
		case <-s.exited:
			exited = true
		default:
		}
		n, err := s.r.ReadAt(p, s.off.Load())
		if n > 0 {
			s.advance(int64(n))
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if exited {
			return 0, io.EOF
		}
		select {
		case <-s.exited:
		case <-s.done:
			return 0, os.ErrClosed
		case <-time.After(wait):
			wait = min(2*wait, spoolPollMax)
		}
	}
}

// advance records n more bytes read and punches what is read out of the
// file, punchEvery bytes at a time.
func (s *spool) advance(n int64) {
	off := s.off.Add(n)
	if s.noPunch || off-s.punched < punchEvery {
		return
	}
	end := off &^ (1<<20 - 1)
	if err := syscall.Fallocate(int(s.r.Fd()), fallocPunchHole|fallocKeepSize, s.punched, end-s.punched); err != nil {
		// The file system cannot punch holes: the file keeps the whole
		// output, /tmp must hold it.
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			s.noPunch = true
		}
		return
	}
	s.punched = end
}

// Close releases the files and stops following.
func (s *spool) Close() error {
	s.once.Do(func() { close(s.done) })
	s.w.Close()
	return s.r.Close()
}
