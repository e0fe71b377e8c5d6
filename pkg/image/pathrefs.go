package image

// Original paths: which closure files name, by absolute path, files or
// directories of the image that a Lambda zip would move away. The zip puts
// every bundled file P at /var/task/rootfs/P; the loader, "#!" lines, shell
// scripts' commands and a few environment variables are pointed there, but
// a path compiled into a program (an interpreter's library home, a data
// directory, an /etc config file) is still opened at P, where the zip has
// nothing. Such references decide between the two package formats.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Bounds of the path scan.
const (
	// maxRefText is how much of a script or text file is scanned for
	// paths; ELF files are scanned whole.
	maxRefText = 1 << 20
	// maxRefCandidates bounds the distinct path strings of a file kept
	// before they are resolved.
	maxRefCandidates = 1 << 12
	// minRefLen is the shortest single-component path that counts
	// ("/app"); paths of two components or more count at any length.
	minRefLen = 4
	// refChunk is the read size of the streaming scan.
	refChunk = 64 << 10
)

// PathRef is an absolute path named inside a closure file that exists in
// the image as a regular file or a directory, and that nothing in the
// Lambda zip relocates: a program opening it by that path finds nothing
// there once its files are moved under /var/task/rootfs. See PathScanner
// for the rule.
type PathRef struct {
	// File is the image path of the closure file whose bytes name Path.
	File string `json:"file"`
	// Path is the path as written in File, cleaned (absolute).
	Path string `json:"path"`
	// Kind is "file" or "dir": what Path resolves to in the image
	// (symlinks followed inside the image).
	Kind string `json:"kind"`
	// Bundled reports whether the resolved path is in the closure: a
	// closure file, or for a directory one holding closure files. Either
	// way a zip moves it away; an unbundled one is not even in the zip.
	Bundled bool `json:"bundled"`
}

// NeedsOriginalPaths is the rule `--format auto` uses to choose between
// a zip and a Lambda container image: the program needs its files at
// their original paths when any closure file names an existing image path
// that the zip would move (refs as PathRefs or PathScanner.Refs return
// them, non-empty). A closure with no such reference runs from a zip.
func NeedsOriginalPaths(refs []PathRef) bool { return len(refs) > 0 }

// Package formats AutoFormat chooses between.
const (
	FormatZip   = "zip"
	FormatImage = "image"
)

// AutoFormat returns the package format `--format auto` picks for a
// closure and its path references, and why: FormatImage when
// NeedsOriginalPaths(refs) or when the closure's regular files exceed
// LambdaUnzippedLimit (a zip could not hold them), FormatZip otherwise.
func AutoFormat(c *ClosureResult, refs []PathRef) (format, reason string) {
	var size int64
	if c != nil {
		for _, f := range c.Files {
			if f.Kind == Regular {
				size += f.Size
			}
		}
	}
	switch {
	case NeedsOriginalPaths(refs):
		files := map[string]bool{}
		for _, r := range refs {
			files[r.File] = true
		}
		verb := "name"
		if len(files) == 1 {
			verb = "names"
		}
		return FormatImage, fmt.Sprintf("%s %s %s a zip would move", plural(len(files), "closure file"), verb, plural(len(refs), "image path"))
	case size > LambdaUnzippedLimit:
		return FormatImage, fmt.Sprintf("the closure's %d bytes exceed Lambda's unzipped limit of %d", size, LambdaUnzippedLimit)
	}
	return FormatZip, "no closure file names an image path a zip would move"
}

// plural renders "1 file", "2 files".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// PathScanner finds PathRefs in the bodies of closure files as they
// stream by. A reference counts when it is an absolute path written in a
// closure file, it exists in the image, and the zip does not handle it
// already and it is not harmless.
//
// Written: a run of path bytes ([A-Za-z0-9._+@%-] and '/') that starts
// with a single '/' and has two components or more (or one of at least 4
// bytes, "/app"), at most PATH_MAX long, found in an ELF file's PT_LOAD
// segments (.rodata, .dynstr: what the program has in memory, not debug
// sections or the symbol table), a "#!" script (its first 1 MiB) or a
// text file of the closure (a small regular file with no NUL byte that is
// valid UTF-8; see Scannable). Not counted: runs starting with "//" (a URL's host), "/./"
// or "/../"; runs right after one of "})]~$\\" (the tail of
// "${prefix}/lib", "$(dir)/x", "~/x"); in scripts and text files, comment
// lines (first non-blank byte '#', the "#!" line included). Trailing dots
// are dropped (a sentence's full stop) and the path is cleaned.
//
// Exists: it resolves in the image (symlinks followed inside it) to a
// regular file or a directory.
//
// Not handled or harmless, which leaves out:
//   - everything the C library's own files name (the loader, libc, libm,
//     libpthread, libdl, librt, libresolv, libnss_*, libmvec, libutil,
//     libanl, libBrokenLocale, libc_malloc_debug, libthread_db, libnsl,
//     libmemusage, libpcprofile, gconv modules): /bin/sh, the default
//     library directories, their own data;
//   - the C library's well-known paths, read or handled as today
//     (ld.so.cache and ld.so.conf, locale, gconv, zoneinfo, nsswitch.conf,
//     hosts, resolv.conf, passwd, group, services, ...), the kernel's and
//     scratch file systems (/proc, /sys, /dev, /tmp, /run, ...),
//     /usr/lib/debug, and /bin/sh, which every Linux system has, Lambda's
//     included;
//   - standard hierarchy directories (/usr, /usr/lib, the multiarch
//     directory, /etc, /opt, /usr/share/man, ...); a directory below one
//     (a library home like /usr/lib/git-core) counts;
//   - an ELF file's own PT_INTERP, DT_RPATH and DT_RUNPATH, and the
//     directories of the closure's library path: the zip points the
//     loader there;
//   - a script's "#!" interpreter; in a shell script the packager
//     relocates (ClosureResult.ShellScripts), a bundled path at a position
//     RelocateShell rewrites (a command or sourced file as a whole word);
//   - the paths of ClosureResult.Env and what lies below them (TZDIR,
//     LOCPATH, SSL_CERT_FILE, PERL5LIB...): the zip points the variables
//     into the bundle.
//
// Each distinct path is resolved once per scanner. A PathScanner is safe
// for concurrent use by several goroutines scanning different files.
type PathScanner struct {
	idx     *Index
	closure *ClosureResult
	// bundled holds the closure's paths, bundledDirs every directory
	// above a closure file, shell the scripts RelocateShell rewrites.
	bundled     map[string]bool
	bundledDirs map[string]bool
	shell       map[string]bool
	// libDirs holds the closure's library directories, as written and
	// resolved; envPaths the paths of ClosureResult.Env, both ways too.
	libDirs  map[string]bool
	envPaths []string

	mu    sync.Mutex
	cache map[string]resolvedRef
	refs  map[PathRef]bool
}

// resolvedRef is what one candidate path resolves to.
type resolvedRef struct {
	count   bool // exists, is a file or directory, and is not handled
	kind    string
	bundled bool
	real    string
}

// NewPathScanner returns a scanner for the files of closure, an image
// closure computed on idx.
func NewPathScanner(idx *Index, closure *ClosureResult) *PathScanner {
	if closure == nil {
		closure = &ClosureResult{}
	}
	s := &PathScanner{
		idx:         idx,
		closure:     closure,
		bundled:     map[string]bool{},
		bundledDirs: map[string]bool{},
		shell:       map[string]bool{},
		libDirs:     map[string]bool{},
		cache:       map[string]resolvedRef{},
		refs:        map[PathRef]bool{},
	}
	for _, f := range closure.Files {
		s.bundled[f.Path] = true
		for d := path.Dir(f.Path); d != "/" && !s.bundledDirs[d]; d = path.Dir(d) {
			s.bundledDirs[d] = true
		}
	}
	for _, p := range closure.ShellScripts {
		s.shell[p] = true
	}
	both := func(p string) []string {
		p = path.Clean(p)
		out := []string{p}
		if real, _, err := idx.Resolve(p); err == nil && real != p {
			out = append(out, real)
		}
		return out
	}
	for _, d := range closure.LibraryPath {
		if !path.IsAbs(d) {
			continue
		}
		for _, p := range both(d) {
			s.libDirs[p] = true
		}
	}
	for _, e := range closure.Env {
		for _, p := range e.Paths {
			if path.IsAbs(p) {
				s.envPaths = append(s.envPaths, both(p)...)
			}
		}
	}
	return s
}

// Scannable reports whether a closure file is worth scanning for paths:
// a regular file that is ELF, a "#!" script, or small enough (1 MiB) to
// be a text file. Scan decides text or binary from the bytes.
func Scannable(e *Entry) bool {
	if e == nil || e.Kind != Regular || e.Size == 0 {
		return false
	}
	if libcFile(e) {
		return false
	}
	return e.ELF != nil || e.Script != nil || e.Size <= maxRefText
}

// Scan reads the body of the closure file (an entry of the scanner's
// index) from r and records the references it makes. It reads r to its
// end, bytes past the scan's bounds discarded. Files that are not
// Scannable are read and ignored. See Writer for a packager that reads
// the file anyway.
func (s *PathScanner) Scan(file *Entry, r io.Reader) error {
	if file == nil || r == nil {
		return nil
	}
	w := s.Writer(file)
	if _, err := io.CopyBuffer(w, r, make([]byte, refChunk)); err != nil {
		return fmt.Errorf("scanning %s for paths: %w", file.Path, err)
	}
	return w.Close()
}

// Writer returns a writer that scans the body of the closure file as it
// is written, for a packager that streams the file anyway (through an
// io.TeeReader or io.MultiWriter); Close records the references found.
// Write never fails and always reports the whole slice written: bytes past
// the scan's bounds and bodies of files that are not Scannable are
// ignored. Memory is bounded (the current path; a shell script's first 1
// MiB, which RelocateShell's positions need). One Writer serves one
// goroutine; Writers of different files may run at the same time.
func (s *PathScanner) Writer(file *Entry) io.WriteCloser {
	if file == nil || !Scannable(file) {
		return &scanWriter{skip: true}
	}
	fs := &fileScan{s: s, file: file, cands: map[string]bool{}, firstEnd: -1}
	if file.ELF != nil {
		// The loader and the library directories the zip handles.
		for _, d := range append(append([]string{file.ELF.Interp}, file.ELF.RPath...), file.ELF.RunPath...) {
			if path.IsAbs(d) {
				fs.own = append(fs.own, path.Clean(d))
			}
		}
	}
	w := &scanWriter{fs: fs, limit: -1, shell: file.Script != nil && s.shell[file.Path], elfHead: file.ELF != nil}
	if file.ELF == nil {
		w.limit = maxRefText
	}
	return w
}

// scanWriter is the writer of one file's scan.
type scanWriter struct {
	fs *fileScan
	// limit is how many bytes are scanned (-1: all), n how many were.
	limit, n int64
	// shell buffers a relocated shell script's body in body.
	shell bool
	body  []byte
	// skip ignores the rest: not scannable, not text, or closed.
	skip bool
	// elfHead collects an ELF file's first bytes in head until its
	// program headers are known.
	elfHead bool
	head    []byte
}

func (w *scanWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.skip {
		return n, nil
	}
	if w.limit >= 0 {
		if room := w.limit - w.n; int64(len(p)) > room {
			p = p[:max(room, 0)]
		}
	}
	w.n += int64(len(p))
	if w.shell {
		w.body = append(w.body, p...)
		return n, nil
	}
	if w.elfHead {
		w.head = append(w.head, p...)
		need, ok := elfHeadSize(w.head)
		if ok && len(w.head) < need {
			return n, nil
		}
		if ok {
			w.fs.loads, w.fs.filterLoads = elfLoads(w.head[:need])
		}
		w.elfHead = false
		p, w.head = w.head, nil
	}
	w.fs.feed(p)
	if w.fs.binary && w.fs.file.ELF == nil && w.fs.file.Script == nil {
		w.skip = true // not text: its bytes are data, not paths
	}
	return n, nil
}

// Close ends the file's scan and records its references.
func (w *scanWriter) Close() error {
	if w.skip {
		return nil
	}
	w.skip = true
	fs := w.fs
	if w.elfHead {
		fs.feed(w.head) // shorter than its headers: scanned unfiltered
	}
	if w.shell {
		fs.body = w.body
		fs.relocated = relocatedShellPaths(w.body, func(p string) bool { return fs.s.bundled[p] })
		fs.feed(w.body)
	}
	fs.finish()
	if fs.binary && fs.file.ELF == nil && fs.file.Script == nil {
		return nil // not text: its bytes are data, not paths
	}
	fs.s.record(fs)
	return nil
}

// Refs returns the references found so far, sorted by file then path.
func (s *PathScanner) Refs() []PathRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PathRef, 0, len(s.refs))
	for r := range s.refs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// PathRefs scans the closure's files for references to their original
// paths (see PathScanner), reading them with Extract: one pass over only
// the layers that hold scannable closure files.
func PathRefs(ctx context.Context, img *Image, idx *Index, c *ClosureResult) ([]PathRef, error) {
	if idx == nil || c == nil {
		return nil, errors.New("PathRefs: no index or no closure")
	}
	s := NewPathScanner(idx, c)
	if err := s.ScanClosure(ctx, img); err != nil {
		return nil, err
	}
	return s.Refs(), nil
}

// ScanClosure scans the scanner's closure files, reading them with
// Extract: one pass over only the layers that hold scannable files.
func (s *PathScanner) ScanClosure(ctx context.Context, img *Image) error {
	var files []*Entry
	for i := range s.closure.Files {
		if e := &s.closure.Files[i].Entry; Scannable(e) {
			files = append(files, e)
		}
	}
	err := Extract(ctx, img, s.idx, files, func(e *Entry, r io.Reader) error {
		if r == nil {
			return nil
		}
		return s.Scan(e, r)
	})
	if err != nil {
		return fmt.Errorf("scanning the closure for original paths: %w", err)
	}
	return nil
}

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

// record resolves the file's candidates and keeps those that count.
func (s *PathScanner) record(fs *fileScan) {
	if len(fs.cands) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fs.ownReal == nil {
		fs.ownReal = map[string]bool{}
		for _, p := range fs.own {
			fs.ownReal[p] = true
			if real, _, err := s.idx.Resolve(p); err == nil {
				fs.ownReal[real] = true
			}
		}
	}
	for p := range fs.cands {
		if fs.ownReal[p] {
			continue
		}
		r := s.resolveLocked(p)
		if !r.count || fs.ownReal[r.real] {
			continue
		}
		s.refs[PathRef{File: fs.file.Path, Path: p, Kind: r.kind, Bundled: r.bundled}] = true
	}
}

// resolveLocked resolves p in the image once and applies the rules that
// do not depend on the naming file. s.mu is held.
func (s *PathScanner) resolveLocked(p string) resolvedRef {
	if r, ok := s.cache[p]; ok {
		return r
	}
	r := s.resolveRef(p)
	s.cache[p] = r
	return r
}

func (s *PathScanner) resolveRef(p string) resolvedRef {
	real, e, err := s.idx.Resolve(p)
	if err != nil {
		return resolvedRef{}
	}
	r := resolvedRef{real: real}
	switch e.Kind {
	case Regular:
		r.kind, r.bundled = "file", s.bundled[real]
	case Dir:
		r.kind, r.bundled = "dir", s.bundledDirs[real]
		if hierarchyDir(p) || hierarchyDir(real) {
			return r
		}
	default:
		return r
	}
	if systemPath(p) || systemPath(real) || s.libDirs[p] || s.libDirs[real] {
		return r
	}
	for _, ep := range s.envPaths {
		if within(p, ep) || within(real, ep) {
			return r
		}
	}
	r.count = true
	return r
}

// refPath turns a run of path bytes into the path it names: trailing
// dots dropped, cleaned. It reports false for runs that are not absolute
// paths worth resolving: "//" (a URL's authority), too short, a
// component of only dots up front ("/../src": a relative path's tail).
func refPath(run string) (string, bool) {
	run = strings.TrimRight(run, ".")
	if len(run) < 2 || run[0] != '/' || run[1] == '/' || strings.HasPrefix(run, "/./") || strings.HasPrefix(run, "/../") {
		return "", false
	}
	p := path.Clean(run)
	if p == "/" || (strings.Count(p, "/") < 2 && len(p) < minRefLen) {
		return "", false
	}
	return p, true
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// isShellSep reports whether the byte c (or -1 for the start or end of the
// body) may surround a path RelocateShell rewrites.
func isShellSep(c int) bool {
	return c < 0 || strings.IndexByte(" \t\n;|&()`\"'", byte(c)) >= 0
}

// relocatedShellPaths returns the absolute paths RelocateShell rewrites in
// body, as written: those the script runs or sources, or gives an
// interpreter as its script, that are bundled. RelocateShell rewrites
// each occurrence of such a word surrounded by isShellSep bytes. The words
// are keyed by their leading run of path bytes, the run the path finder
// reports where the word starts ("/opt/a" for "/opt/a!b").
func relocatedShellPaths(body []byte, bundled func(string) bool) map[string][]string {
	cmds, sources, runs := scanShellRuns(string(body))
	for _, r := range runs {
		if !r.Module {
			sources = append(sources, r.Arg)
		}
	}
	out := map[string][]string{}
	for _, p := range append(cmds, sources...) {
		if !path.IsAbs(p) || !bundled(path.Clean(p)) {
			continue
		}
		n := 0
		for n < len(p) && pathByte[p[n]] {
			n++
		}
		if !contains(out[p[:n]], p) {
			out[p[:n]] = append(out[p[:n]], p)
		}
	}
	return out
}

// relocatedAt reports whether RelocateShell rewrites the word starting at
// off in body, where the path finder found run (preceded by prev).
func relocatedAt(body []byte, off int64, run string, prev int, words map[string][]string) bool {
	if !isShellSep(prev) {
		return false
	}
	for _, w := range words[run] {
		end := off + int64(len(w))
		if end <= int64(len(body)) && string(body[off:end]) == w && (end == int64(len(body)) || isShellSep(int(body[end]))) {
			return true
		}
	}
	return false
}

// libcNames are the C library's own files, by name without ".so" and
// version: they name the C library's paths, handled already.
var libcNames = map[string]bool{
	"ld-linux": true, "ld-linux-x86-64": true, "ld-linux-aarch64": true, "ld-linux-armhf": true,
	"ld64": true, "ld": true, "ld-musl-x86_64": true, "ld-musl-aarch64": true,
	"libc": true, "libm": true, "libpthread": true, "libdl": true, "librt": true, "libresolv": true,
	"libmvec": true, "libutil": true, "libanl": true, "libBrokenLocale": true, "libc_malloc_debug": true,
	"libthread_db": true, "libnsl": true, "libmemusage": true, "libpcprofile": true, "libcidn": true,
}

// libcFile reports whether e is one of the C library's own files: by its
// SONAME or file name ("libc.so.6", "libm-2.31.so", "libnss_files.so.2",
// "ld-linux-x86-64.so.2"), or a gconv module.
func libcFile(e *Entry) bool {
	names := []string{path.Base(e.Path)}
	if e.ELF != nil && e.ELF.SOName != "" {
		names = append(names, e.ELF.SOName)
	}
	if e.ELF != nil && strings.Contains(e.Path, "/gconv/") {
		return true
	}
	for _, n := range names {
		stem, _, ok := strings.Cut(n, ".so")
		if !ok {
			continue
		}
		if i := strings.Index(stem, "-2."); i > 0 {
			stem = stem[:i] // libm-2.31
		}
		if libcNames[stem] || strings.HasPrefix(stem, "libnss_") {
			return true
		}
	}
	return false
}

// systemPaths are the C library's well-known paths (and what lies below
// them), the kernel's and scratch file systems, and /bin/sh: a relocated
// program reading or running them is handled or harmless as today.
var systemPaths = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.preload",
	"/usr/lib/locale", "/usr/share/locale", "/usr/share/i18n", "/usr/lib/gconv",
	"/usr/share/zoneinfo", "/etc/localtime", "/etc/timezone",
	"/etc/nsswitch.conf", "/etc/host.conf", "/etc/hosts", "/etc/resolv.conf", "/etc/gai.conf",
	"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/services", "/etc/protocols",
	"/etc/networks", "/etc/rpc", "/etc/netgroup", "/etc/mtab", "/etc/fstab",
	"/proc", "/sys", "/dev", "/tmp", "/var/tmp", "/run", "/var/run",
	"/usr/lib/debug", // debug symbols: a backtrace without them still runs
	"/bin/sh", "/usr/bin/sh",
}

// systemPath reports whether p is one of systemPaths or below one, or in
// a gconv directory (/usr/lib/TRIPLET/gconv).
func systemPath(p string) bool {
	for _, s := range systemPaths {
		if within(p, s) {
			return true
		}
	}
	for _, lib := range []string{"/usr/lib/", "/lib/", "/usr/lib64/", "/lib64/"} {
		if rest, ok := strings.CutPrefix(p, lib); ok {
			parts := strings.SplitN(rest, "/", 3)
			if len(parts) >= 2 && parts[1] == "gconv" {
				return true
			}
		}
	}
	return false
}

// hierarchyDirs are the standard directories of the file system
// hierarchy: naming one says nothing about a program's own files.
var hierarchyDirs = map[string]bool{
	"/": true, "/bin": true, "/sbin": true, "/lib": true, "/lib32": true, "/lib64": true, "/libx32": true,
	"/usr": true, "/usr/bin": true, "/usr/sbin": true, "/usr/lib": true, "/usr/lib32": true, "/usr/lib64": true,
	"/usr/libx32": true, "/usr/libexec": true, "/usr/share": true, "/usr/include": true,
	"/usr/share/man": true, "/usr/share/doc": true, "/usr/share/info": true, "/usr/local/man": true,
	"/usr/local/share/man": true,
	"/usr/local":           true, "/usr/local/bin": true, "/usr/local/lib": true, "/usr/local/lib64": true,
	"/usr/local/share": true, "/usr/local/sbin": true, "/usr/local/include": true, "/usr/local/etc": true,
	"/usr/local/libexec": true,
	"/etc":               true, "/var": true, "/var/lib": true, "/var/cache": true, "/var/log": true, "/var/spool": true,
	"/var/local": true, "/var/opt": true, "/var/mail": true,
	"/opt": true, "/srv": true, "/home": true, "/root": true, "/mnt": true, "/media": true,
}

// hierarchyDir reports whether p is a standard hierarchy directory or a
// multiarch library directory (/usr/lib/x86_64-linux-gnu, /lib/TRIPLET,
// /usr/local/lib/TRIPLET).
func hierarchyDir(p string) bool {
	if hierarchyDirs[p] {
		return true
	}
	for _, lib := range []string{"/usr/lib/", "/lib/", "/usr/local/lib/"} {
		if rest, ok := strings.CutPrefix(p, lib); ok && !strings.Contains(rest, "/") && isTriplet(rest) {
			return true
		}
	}
	return false
}

// isTriplet reports whether s looks like a multiarch tuple
// ("x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf").
func isTriplet(s string) bool {
	return strings.Contains(s, "-linux-") && (strings.HasSuffix(s, "-gnu") || strings.Contains(s, "-gnu") || strings.HasSuffix(s, "-musl"))
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

// Command records the references a program's command line and environment
// make: the absolute paths in args (as a word, or after "=", ":" or ","
// in one: "--config=/etc/app.conf") and in the values of env ("K=V"), that
// the rule counts (see PathScanner), unless moved reports that the
// packager points that word elsewhere. Their File is "(command)" or
// "(env NAME)". PATH and LD_LIBRARY_PATH are left out: the packager maps
// them.
func (s *PathScanner) Command(args, env []string, moved func(string) bool) {
	if moved == nil {
		moved = func(string) bool { return false }
	}
	add := func(file, word string) {
		for _, part := range strings.FieldsFunc(word, func(r rune) bool {
			return r == '=' || r == ':' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '"' || r == '\''
		}) {
			p, ok := refPath(part)
			if !ok || moved(part) {
				continue
			}
			s.mu.Lock()
			if r := s.resolveLocked(p); r.count {
				s.refs[PathRef{File: file, Path: p, Kind: r.kind, Bundled: r.bundled}] = true
			}
			s.mu.Unlock()
		}
	}
	for _, a := range args {
		add("(command)", a)
	}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "PATH" || name == "LD_LIBRARY_PATH" {
			continue
		}
		add("(env "+name+")", val)
	}
}
