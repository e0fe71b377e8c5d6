package image

// Original paths: which closure files name, by absolute path, files or
// directories of the image that a Lambda zip would move away. The zip puts
// every bundled file P at /var/task/rootfs/P; the loader, "#!" lines, shell
// scripts' commands and a few environment variables are pointed there, but
// a path compiled into a program (an interpreter's library home, a data
// directory, an /etc config file) is still opened at P, where the zip has
// nothing. Such references decide between the two package formats.
//
// This file holds the scanner and its API; pathrefs_scan.go scans one
// file's bytes, pathrefs_rules.go decides which references count.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
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
