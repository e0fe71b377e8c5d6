package image

import (
	"path"
	"strings"
)

// This file holds the pieces of glibc's library search that depend only on
// the image's files: ld.so.conf parsing, the default directories, the
// multiarch triplets and dynamic string tokens ($ORIGIN, $LIB, $PLATFORM).
//
// We never run ldconfig and never read /etc/ld.so.cache (a binary file built
// by running a program of the image). Instead the directories ldconfig would
// have scanned, those of /etc/ld.so.conf, are searched in order, before the
// loader's default directories: for every library a cache could return, the
// same file is found, as long as no two of those directories hold different
// files under the same soname (ldconfig would then prefer the first
// directory too).

// maxConfDepth bounds nested "include" lines in ld.so.conf.
const maxConfDepth = 16

// ldsoConfDirs returns the directories named by the image's /etc/ld.so.conf
// and the files it includes, in order, without duplicates. A missing
// /etc/ld.so.conf yields none.
func ldsoConfDirs(t *Index) []string {
	var out []string
	seen := map[string]bool{}
	parseLdsoConf(t, "/etc/ld.so.conf", 0, map[string]bool{}, func(dir string) {
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	})
	return out
}

// parseLdsoConf parses one ld.so.conf file the way ldconfig does
// (elf/ldconfig.c parse_conf): text after '#' is a comment; blank lines are
// skipped; "include PATTERN..." parses every file matching each glob
// (relative patterns are relative to the including file's directory), in
// sorted order; "hwcap" lines are obsolete and ignored; any other line is a
// directory, with a trailing "=TYPE" (libc4/libc5 era) and trailing slashes
// removed. Files already parsed are skipped, so include loops terminate.
func parseLdsoConf(t *Index, file string, depth int, parsed map[string]bool, add func(string)) {
	if depth > maxConfDepth || parsed[file] {
		return
	}
	parsed[file] = true
	b, ok := t.Content(file)
	if !ok {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if rest, ok := cutWord(line, "include"); ok {
			for _, pat := range strings.Fields(rest) {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(file), pat)
				}
				for _, f := range t.Glob(pat) {
					parseLdsoConf(t, f, depth+1, parsed, add)
				}
			}
			continue
		}
		if _, ok := cutWord(line, "hwcap"); ok {
			continue
		}
		if i := strings.IndexByte(line, '='); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if !path.IsAbs(line) {
			continue // ldconfig ignores relative directories too
		}
		add(path.Clean(line))
	}
}

// cutWord reports whether line starts with word followed by a blank and
// returns the rest.
func cutWord(line, word string) (string, bool) {
	if !strings.HasPrefix(line, word) || len(line) == len(word) {
		return "", false
	}
	if c := line[len(word)]; c != ' ' && c != '\t' {
		return "", false
	}
	return strings.TrimSpace(line[len(word):]), true
}

// triplet returns the Debian multiarch triplet of an ELF machine and class
// ("x86_64-linux-gnu"), or "" when there is none.
func triplet(machine string, class int) string {
	switch {
	case machine == "x86_64" && class == 64:
		return "x86_64-linux-gnu"
	case machine == "x86_64" && class == 32:
		return "x86_64-linux-gnux32"
	case machine == "aarch64" && class == 64:
		return "aarch64-linux-gnu"
	case machine == "i386":
		return "i386-linux-gnu"
	case machine == "arm":
		return "arm-linux-gnueabihf"
	}
	return ""
}

// defaultDirs returns the loader's built-in search directories for an ELF
// class and machine: the multiarch directories (Debian and Ubuntu patch
// them into ld.so's system search path, before /lib and /usr/lib), then
// /lib64 and /usr/lib64 for 64-bit objects (the upstream x86_64 and aarch64
// defaults, used by Fedora, RHEL, Amazon Linux), then /lib and /usr/lib.
// ld.so skips objects of the wrong class or machine, so listing directories
// a distribution does not use is harmless.
func defaultDirs(machine string, class int) []string {
	var dirs []string
	if tr := triplet(machine, class); tr != "" {
		dirs = append(dirs, "/lib/"+tr, "/usr/lib/"+tr)
	}
	if class == 64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// platformName is what $PLATFORM expands to: the AT_PLATFORM string the
// kernel passes ("x86_64", "aarch64").
func platformName(machine string) string {
	if machine == "i386" {
		return "i686"
	}
	return machine
}

// libName is what $LIB expands to. glibc substitutes the last part of its
// configured library directory: Debian and Ubuntu build glibc with
// libdir=/usr/lib/TRIPLET, so $LIB is "lib/x86_64-linux-gnu"; Fedora, RHEL
// and Amazon Linux use "lib64" for 64-bit objects; 32-bit objects use "lib".
// multiarch reports whether the image's loader lives in a multiarch
// directory, which tells the two families apart.
func libName(machine string, class int, multiarch bool) string {
	if tr := triplet(machine, class); multiarch && tr != "" {
		return "lib/" + tr
	}
	if class == 64 {
		return "lib64"
	}
	return "lib"
}

// dstEnv holds what dynamic string tokens expand to for one object.
type dstEnv struct {
	origin   string // directory of the object
	lib      string // $LIB
	platform string // $PLATFORM
}

// expandDST replaces $ORIGIN, $LIB and $PLATFORM (and their ${...} forms) in
// s, as ld.so does for DT_RPATH, DT_RUNPATH and DT_NEEDED. A "$" followed by
// anything else is kept literally. ok is false when $ORIGIN is needed but
// unknown.
func expandDST(s string, env dstEnv) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		name, n := dstName(s[i+1:])
		var val string
		switch name {
		case "ORIGIN":
			if env.origin == "" {
				return "", false
			}
			val = env.origin
		case "LIB":
			val = env.lib
		case "PLATFORM":
			val = env.platform
		default:
			b.WriteByte('$')
			i++
			continue
		}
		b.WriteString(val)
		i += 1 + n
	}
	return b.String(), true
}

// dstName returns the token name after a '$' ("ORIGIN" for "ORIGIN/x" or
// "{ORIGIN}/x") and how many bytes it spans. Like ld.so, a bare name must
// end at a character that cannot be part of an identifier.
func dstName(s string) (string, int) {
	if strings.HasPrefix(s, "{") {
		if j := strings.IndexByte(s, '}'); j > 0 {
			return s[1:j], j + 1
		}
		return "", 0
	}
	for _, name := range []string{"ORIGIN", "LIB", "PLATFORM"} {
		if strings.HasPrefix(s, name) {
			if len(s) == len(name) || !isIdent(s[len(name)]) {
				return name, len(name)
			}
		}
	}
	return "", 0
}

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// splitEnvPath splits LD_LIBRARY_PATH the way ld.so does: on ':' and ';';
// an empty element means the current directory, which a bundled program
// cannot rely on, so it is dropped.
func splitEnvPath(s string) []string {
	var out []string
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ';' }) {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// envValue returns the value of key in a K=V list (the last one wins, as
// in Docker's config).
func envValue(env []string, key string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}
