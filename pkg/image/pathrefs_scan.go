package image

// One file's path scan: the path runs of its bytes (pathFinder), in the
// PT_LOAD segments of an ELF file or in the text of a script, minus comments
// and what the packager rewrites, kept as candidates for record.

import (
	"bytes"
	"encoding/binary"
	"path"
	"strings"
	"unicode/utf8"
)

// fileScan is the state of one file's scan.
type fileScan struct {
	s    *PathScanner
	file *Entry
	// loads are the file ranges of an ELF file's PT_LOAD segments, what
	// the program has in memory; with filterLoads, paths elsewhere (debug
	// sections, the symbol table) do not count.
	loads       [][2]int64
	filterLoads bool
	// own are the ELF file's PT_INTERP, DT_RPATH and DT_RUNPATH, ownReal
	// the same and their resolved paths (made by record).
	own     []string
	ownReal map[string]bool
	// relocated holds the words RelocateShell rewrites in this shell
	// script (see relocatedShellPaths), body the script's bytes scanned.
	relocated map[string][]string
	body      []byte
	finder    pathFinder
	cands     map[string]bool
	// firstEnd is the offset of the newline ending a script's "#!" line
	// (-1 until seen).
	firstEnd int64
	// text state: binary once a NUL or invalid UTF-8 was seen; pend holds
	// the bytes of a rune split across chunks; stopped once a script's
	// text ended.
	binary  bool
	stopped bool
	pend    []byte
	// comment state of a text file: the current line has a non-blank
	// byte, or is a comment; masked is the reused output buffer.
	lineStarted, inComment bool
	masked                 []byte
}

func (fs *fileScan) feed(b []byte) {
	if len(b) == 0 || fs.stopped {
		return
	}
	if fs.file.Script != nil {
		// A NUL ends a script's text: what follows is a payload (a
		// self-extracting archive), not paths.
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b, fs.stopped = b[:i], true
		}
		if fs.firstEnd < 0 {
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				fs.firstEnd = fs.finder.off + int64(i)
			}
		}
	} else if fs.file.ELF == nil && !fs.binary {
		fs.checkText(b)
	}
	if fs.file.ELF == nil {
		b = fs.maskComments(b)
	}
	fs.finder.write(b, fs.candidate)
}

// maskComments returns b with the bytes of comment lines (whose first
// non-blank byte is '#', the "#!" line included) replaced by spaces, so
// that offsets are kept and no path is found in them. The returned slice
// is valid until the next call.
func (fs *fileScan) maskComments(b []byte) []byte {
	fs.masked = append(fs.masked[:0], b...)
	for i, c := range fs.masked {
		switch {
		case c == '\n':
			fs.lineStarted, fs.inComment = false, false
		case fs.inComment:
			fs.masked[i] = ' '
		case fs.lineStarted || c == ' ' || c == '\t':
		case c == '#':
			fs.inComment = true
			fs.masked[i] = ' '
		default:
			fs.lineStarted = true
		}
	}
	return fs.masked
}

func (fs *fileScan) finish() {
	fs.finder.close(fs.candidate)
	if len(fs.pend) > 0 {
		fs.binary = true // a truncated rune at the end
	}
}

// checkText marks the file binary on a NUL byte or invalid UTF-8.
func (fs *fileScan) checkText(b []byte) {
	if bytes.IndexByte(b, 0) >= 0 {
		fs.binary = true
		return
	}
	if len(fs.pend) > 0 {
		b = append(fs.pend, b...)
		fs.pend = nil
	}
	// Keep an incomplete rune at the end for the next chunk.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		fs.binary = true
		return
	}
	fs.pend = append([]byte(nil), b[cut:]...)
}

// maxELFHead bounds the bytes of an ELF file held until its program
// headers are read; a file whose headers lie further is scanned whole.
const maxELFHead = 1 << 20

// elfHeadSize returns how many bytes of an ELF file hold its header and
// program header table, given its first bytes (64 are enough to know);
// false when the header is malformed or the table lies beyond maxELFHead.
func elfHeadSize(head []byte) (int, bool) {
	if len(head) < elfHeader64 {
		return elfHeader64, true
	}
	p := elfParser{}
	switch head[5] {
	case 1:
		p.bo = binary.LittleEndian
	case 2:
		p.bo = binary.BigEndian
	default:
		return 0, false
	}
	var phoff uint64
	var phentsize, phnum uint16
	want := uint16(phdrSize64)
	switch head[4] {
	case 1:
		phoff, phentsize, phnum, want = uint64(p.bo.Uint32(head[28:])), p.bo.Uint16(head[42:]), p.bo.Uint16(head[44:]), phdrSize32
	case 2:
		phoff, phentsize, phnum = p.bo.Uint64(head[32:]), p.bo.Uint16(head[54:]), p.bo.Uint16(head[56:])
	default:
		return 0, false
	}
	if phnum == 0 || phentsize < want || phoff > maxELFHead {
		return 0, false
	}
	end := phoff + uint64(phentsize)*uint64(phnum)
	if end > maxELFHead {
		return 0, false
	}
	return int(max(end, elfHeader64)), true
}

// elfLoads returns the file ranges of the PT_LOAD segments of the ELF
// file whose header and program headers are head (see elfHeadSize), and
// whether there is any.
func elfLoads(head []byte) ([][2]int64, bool) {
	p := elfParser{bo: binary.LittleEndian}
	if head[5] == 2 {
		p.bo = binary.BigEndian
	}
	class, phoff, phentsize, phnum := 64, p.bo.Uint64(head[32:]), int(p.bo.Uint16(head[54:])), int(p.bo.Uint16(head[56:]))
	if head[4] == 1 {
		class, phoff, phentsize, phnum = 32, uint64(p.bo.Uint32(head[28:])), int(p.bo.Uint16(head[42:])), int(p.bo.Uint16(head[44:]))
	}
	var out [][2]int64
	for i := 0; i < phnum; i++ {
		ph := p.phdr(head[int(phoff)+i*phentsize:], class)
		if ph.typ != ptLoad || ph.offset > MaxFileSize || ph.filesz > MaxFileSize {
			continue
		}
		out = append(out, [2]int64{int64(ph.offset), int64(ph.offset + ph.filesz)})
	}
	return out, len(out) > 0
}

// inRanges reports whether off lies in one of the ranges.
func inRanges(ranges [][2]int64, off int64) bool {
	for _, r := range ranges {
		if off >= r[0] && off < r[1] {
			return true
		}
	}
	return false
}

// exprEnds are the bytes that, right before a path, make it the tail of
// a longer expression rather than an absolute path.
const exprEnds = "})]~$\\"

// candidate is called by the finder for each absolute path run.
func (fs *fileScan) candidate(off int64, run []byte, prev, next int) {
	if prev >= 0 && strings.IndexByte(exprEnds, byte(prev)) >= 0 {
		return // the tail of an expression: "${prefix}/lib", "$(dir)/x", "~/x"
	}
	if fs.filterLoads && !inRanges(fs.loads, off) {
		return // not loaded: the program cannot open it
	}
	raw := string(run)
	if fs.relocated != nil && relocatedAt(fs.body, off, raw, prev, fs.relocated) {
		return // RelocateShell points it into the bundle
	}
	if fs.file.Script != nil && (fs.firstEnd < 0 || off < fs.firstEnd) &&
		path.Clean(raw) == path.Clean(fs.file.Script.Interpreter) {
		return // the "#!" interpreter: the packager rewrites it
	}
	p, ok := refPath(raw)
	if !ok || fs.cands[p] {
		return
	}
	if len(fs.cands) >= maxRefCandidates && (fs.file.ELF != nil || fs.file.Script != nil) {
		// Bound memory on large files: resolve what was found so far.
		// (A text file is at most maxRefText long, so are its paths.)
		fs.s.record(fs)
		clear(fs.cands)
	}
	fs.cands[p] = true
}

// pathByte reports which bytes make up a path run.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._+@%-/" {
		t[c] = true
	}
	return t
}()

// pathFinder finds, in bytes given in chunks, the maximal runs of path
// bytes that start with '/' and are at most maxPath long, with the bytes
// around them. Runs split across chunks are found whole; a run in
// progress is the only state kept between chunks (at most maxPath bytes).
type pathFinder struct {
	off     int64 // bytes seen so far
	in      bool  // inside a run of path bytes
	keep    bool  // the run starts with '/' and fits maxPath
	start   int64 // offset of the run
	run     []byte
	prev    int // byte before the run, -1 at the start
	last    int // the last byte seen, -1 before any
	started bool
}

// write feeds b and calls fn for each run that ends within it.
func (f *pathFinder) write(b []byte, fn func(off int64, run []byte, prev, next int)) {
	if !f.started {
		f.started, f.last = true, -1
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if pathByte[c] {
			if !f.in {
				f.in, f.keep, f.start, f.prev, f.run = true, c == '/', f.off+int64(i), f.last, f.run[:0]
				if !f.keep {
					// Skip the rest of a relative run quickly.
					j := i + 1
					for j < len(b) && pathByte[b[j]] {
						j++
					}
					f.last = int(b[j-1])
					i = j - 1
					continue
				}
			}
			if f.keep {
				if len(f.run) >= maxPath {
					f.keep = false
				} else {
					f.run = append(f.run, c)
				}
			}
		} else if f.in {
			f.in = false
			if f.keep {
				fn(f.start, f.run, f.prev, int(c))
			}
		}
		f.last = int(c)
	}
	f.off += int64(len(b))
}

// close ends the input: a run reaching the end is reported.
func (f *pathFinder) close(fn func(off int64, run []byte, prev, next int)) {
	if f.in && f.keep {
		fn(f.start, f.run, f.prev, -1)
	}
	f.in = false
}

// pathStrings returns the absolute path runs of b with their offsets, as
// the streaming finder sees them (for tests and fuzzing).
func pathStrings(chunks ...[]byte) (offs []int64, runs []string) {
	var f pathFinder
	fn := func(off int64, run []byte, _, _ int) {
		offs = append(offs, off)
		runs = append(runs, string(run))
	}
	for _, c := range chunks {
		f.write(c, fn)
	}
	f.close(fn)
	return offs, runs
}
