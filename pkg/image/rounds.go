package image

// Content rules: what interpreted programs need, found by reading file
// bodies (shell scripts, Python and Perl sources, an interpreter's own
// binary for its library paths). The index keeps no bodies, so Closure
// reads them in rounds through Extract when WithImage gave it the image:
// each round is one pass over only the layers holding the files queued by
// the previous round, and reading a body may queue more (a sourced file,
// an imported module).

import (
	"fmt"
	"io"
)

// Bounds of the content rules.
const (
	// maxScanBody is the most bytes of a script or module that are read
	// and scanned; the rest of a larger file is ignored (logged).
	maxScanBody = 1 << 20
	// maxScanBinary is the most bytes of an interpreter binary scanned
	// for its library directories (perl's @INC).
	maxScanBinary = 16 << 20
	// maxScanRounds bounds the rounds of reading: each round follows one
	// more level of sourcing or importing.
	maxScanRounds = 32
)

// scanJob is one file body to read and what to do with it.
type scanJob struct {
	e     *Entry
	limit int64
	fn    func(body []byte)
}

// queueScan asks for e's body (up to limit bytes) to be given to fn in the
// next round, once per key.
func (c *closer) queueScan(key string, e *Entry, limit int64, fn func([]byte)) {
	if c.scanned[key] {
		return
	}
	c.scanned[key] = true
	c.pending = append(c.pending, scanJob{e: e, limit: limit, fn: fn})
}

// scanRounds reads the queued bodies, round after round, until nothing is
// queued. When nothing is queued the rules resolve the modules they
// collected (Python and Perl), which may queue more.
func (c *closer) scanRounds() error {
	for round := 0; ; round++ {
		if len(c.pending) == 0 {
			// The rules settle (resolve modules) once every body queued so far was
			// read, so that .pth files and @INC are known.
			c.each(settleWork{})
			if len(c.pending) == 0 {
				return nil
			}
		}
		if round >= maxScanRounds {
			c.note("content rules stopped after %d rounds of sourcing and importing; %d files were not read", maxScanRounds, len(c.pending))
			return nil
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		jobs := c.pending
		c.pending = nil
		var entries []*Entry
		limits := map[string]int64{}
		for _, j := range jobs {
			if l, ok := limits[j.e.Path]; ok {
				limits[j.e.Path] = max(l, j.limit)
				continue
			}
			limits[j.e.Path] = j.limit
			entries = append(entries, j.e)
		}
		bodies := map[string][]byte{}
		err := Extract(c.ctx, c.o.img, c.idx, entries, func(e *Entry, r io.Reader) error {
			if r == nil {
				return nil
			}
			lim := limits[e.Path]
			b, err := io.ReadAll(io.LimitReader(r, lim))
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Path, err)
			}
			if e.Size > lim {
				c.log.Debug("scanning only the start of a large file", "path", e.Path, "size", e.Size, "limit", lim)
			}
			bodies[e.Path] = b
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading files for the content rules: %w", err)
		}
		c.log.Debug("content rules round", "round", round+1, "files", len(entries))
		for _, j := range jobs {
			j.fn(bodies[j.e.Path])
		}
	}
}

// note records a message for inspect (ClosureResult.Notes), once. It is
// logged at debug level only: callers show Notes themselves (inspect's
// NOTES section, package's log), so the user reads each note once.
func (c *closer) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, n := range c.notes {
		if n == msg {
			return
		}
	}
	c.notes = append(c.notes, msg)
	c.log.Debug(msg)
}
