package image

// Which path references count: a candidate resolves in the image to a file
// or a directory that is not the C library's, a standard hierarchy or
// system directory, a library directory or below an environment path, nor
// a word RelocateShell rewrites.

import (
	"path"
	"strings"
)

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
