package image

import (
	"path"
	"sort"
	"strings"
)

// RelocateShell rewrites, in a shell script body, the absolute paths the
// script runs or sources ("exec /usr/local/bin/app", ". /etc/app.conf", as
// scanShell finds them) to root+path when bundled reports the path is in
// the bundle, so that a relocated script runs and reads the bundled files
// rather than the host's. Every occurrence of such a path as a whole word
// is rewritten (an `echo` of it too); everything else is kept byte for
// byte, the "#!" line included (its interpreter is the packager's).
func RelocateShell(body []byte, root string, bundled func(string) bool) []byte {
	cmds, sources, runs := scanShellRuns(string(body))
	for _, r := range runs {
		if !r.Module {
			sources = append(sources, r.Arg)
		}
	}
	var paths []string
	for _, p := range append(cmds, sources...) {
		if path.IsAbs(p) && bundled(path.Clean(p)) {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return body
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	isSep := func(b byte) bool { return strings.IndexByte(" \t\n;|&()`\"'", b) >= 0 }
	out := body
	for _, p := range paths {
		var buf []byte
		rest := out
		for {
			i := strings.Index(string(rest), p)
			if i < 0 {
				buf = append(buf, rest...)
				break
			}
			before := len(out) - len(rest) + i
			end := i + len(p)
			okBefore := before == 0 || isSep(out[before-1])
			okAfter := end == len(rest) || isSep(rest[end])
			buf = append(buf, rest[:i]...)
			if okBefore && okAfter {
				buf = append(buf, strings.TrimSuffix(root, "/")...)
			}
			buf = append(buf, p...)
			rest = rest[end:]
		}
		out = buf
	}
	return out
}

// RelocateShellArgs applies RelocateShell to the command line of a
// shell-form command (["/bin/sh", "-c", LINE, ...]) and returns the new
// argv; other commands are returned unchanged.
func RelocateShellArgs(args []string, root string, bundled func(string) bool) []string {
	i := ShellCodeIndex(args)
	if i < 0 {
		return args
	}
	out := append([]string(nil), args...)
	out[i] = string(RelocateShell([]byte(args[i]), root, bundled))
	return out
}

// ShellCodeIndex returns the index in args of the command string of a
// shell-form command (["/bin/sh", "-c", CODE, NAME, ARG...], also
// ["busybox", "sh", "-c", ...], combined flags such as -ec, and -o NAME
// options before it), or -1: the one argument a shell parses as code.
func ShellCodeIndex(args []string) int {
	if len(args) == 0 {
		return -1
	}
	first := 1
	if path.Base(args[0]) == "busybox" && len(args) > 1 {
		first = 2
		if !shells[args[1]] {
			return -1
		}
	} else if !shells[path.Base(args[0])] {
		return -1
	}
	for i := first; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "+o": // an option name follows
			i++
		case a == "--" || !strings.HasPrefix(a, "-"):
			return -1
		case !strings.HasPrefix(a, "--") && strings.Contains(a, "c"):
			if i+1 < len(args) {
				return i + 1
			}
			return -1
		}
	}
	return -1
}
