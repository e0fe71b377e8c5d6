package image

// Content rules: what interpreted programs need, found by reading file
// bodies (shell scripts, Python and Perl sources, an interpreter's own
// binary for its library paths). The index keeps no bodies, so Closure
// reads them in rounds through Extract when WithImage gave it the image:
// each round is one pass over only the layers holding the files queued by
// the previous round, and reading a body may queue more (a sourced file,
// an imported module).

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
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
			// Modules are resolved once every body queued so far was
			// read, so that .pth files and @INC are known.
			c.resolveModules()
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

// interpFamily names the content rule for an interpreter: "sh", "python",
// "perl", or "" for others.
func interpFamily(p string) string {
	b := path.Base(p)
	switch {
	case shells[b] || b == "busybox":
		return "sh"
	case b == "python" || strings.HasPrefix(b, "python3") || strings.HasPrefix(b, "python2"):
		return "python"
	case b == "perl" || strings.HasPrefix(b, "perl5"):
		return "perl"
	}
	return ""
}

// family returns the rule family of the program at p: by the name it was
// called and by the name of the file it resolves to (/bin/sh -> dash).
func (c *closer) family(p string) (string, *Entry) {
	e, _, err := c.follow(p)
	if err != nil {
		return "", nil
	}
	if f := interpFamily(p); f != "" {
		return f, e
	}
	return interpFamily(e.Path), e
}

// scriptRules applies the content rules to the "#!" script e whose
// interpreter (after env's PATH lookup) is interp and whose "#!" argument
// is arg.
func (c *closer) scriptRules(e *Entry, interp, arg string) {
	if !c.scanOn() {
		return
	}
	fam, ie := c.family(interp)
	switch fam {
	case "sh":
		c.shellScriptFile(e)
	case "python":
		c.pythonScript(ie, e)
	case "perl":
		c.perlScript(ie, e, strings.Fields(arg))
	default:
		if ie != nil && ie.ELF != nil {
			c.genericInterp(ie, e)
		}
	}
}

// argsRules applies the content rules to an entrypoint that is itself an
// interpreter given code or a script in its arguments: "sh script.sh",
// "python3 app.py", "python3 -m pkg", "perl -MList::Util -ne CODE".
func (c *closer) argsRules() {
	if !c.scanOn() || len(c.cmd.Args) < 2 {
		return
	}
	fam, ie := c.family(c.cmd.Path)
	if ie == nil || ie.ELF == nil {
		return
	}
	args := c.cmd.Args[1:]
	switch fam {
	case "sh":
		if _, ok := shellScript(c.cmd.Args); ok {
			return // the -c line is read by shellPrograms
		}
		for _, a := range args {
			if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+") {
				continue
			}
			c.scriptArg(a, "sh", func(e *Entry) { c.shellScriptFile(e) })
			return
		}
	case "python":
		c.pythonArgs(ie, args)
	case "perl":
		c.perlArgs(ie, args)
	default:
		// Another interpreter given a script file ("node /app/x.js",
		// "ruby app.rb"): the first operand that is a file of the image
		// and not a program itself.
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				continue
			}
			p := a
			if !path.IsAbs(p) {
				p = path.Join(workdir(c.cmd), p)
			}
			e, _, err := c.follow(p)
			if err != nil || e.Kind != Regular || e.ELF != nil || e.Script != nil {
				return
			}
			c.scriptArg(a, path.Base(c.cmd.Args[0]), func(e *Entry) { c.genericInterp(ie, e) })
			return
		}
	}
}

// scriptArg adds the script file an interpreter is given as an argument
// (relative to WORKDIR) and calls fn with it.
func (c *closer) scriptArg(name, interp string, fn func(*Entry)) {
	p := name
	if !path.IsAbs(p) {
		p = path.Join(workdir(c.cmd), p)
	}
	e, links, err := c.follow(p)
	if err != nil || e.Kind != Regular {
		c.note("%s script %q named in the command is not a file in the image", interp, name)
		return
	}
	c.addPath(p, e, links, Reason{Kind: "script", By: c.cmd.Path, Detail: interp + " " + name})
	fn(e)
}

// scanOn reports whether the content rules run: they need the image to
// read bodies from.
func (c *closer) scanOn() bool { return c.o.img != nil && !c.o.noScan }

// shellScriptFile queues the shell script e for reading: the programs its
// body runs and the files it sources are added.
func (c *closer) shellScriptFile(e *Entry) {
	c.shellFiles[e.Path] = true
	c.queueScan("sh:"+e.Path, e, maxScanBody, func(body []byte) {
		c.shellBody(e, string(body))
	})
}

// shellBody adds what one shell script body needs: each command name that
// resolves to an executable through the image's PATH (recursively: a
// command that is a script brings its interpreter and is read too), and
// each file it sources with "." or "source", read in turn.
func (c *closer) shellBody(script *Entry, body string) {
	c.shellText(script.Path, body)
}

// shellText is shellBody for the text of a script by (a file, or the
// shell of a "-c" command line).
func (c *closer) shellText(by string, body string) {
	cmds, sources, runs := scanShellRuns(body)
	defer c.shellRuns(by, runs)
	for _, name := range cmds {
		p, err := lookPath(c.idx, name, c.cmd.Env, c.cmd.WorkingDir)
		if err != nil {
			c.log.Debug("word of a shell script is not a program of the image", "script", by, "name", name)
			continue
		}
		if err := c.program(p, Reason{Kind: "command", By: by, Detail: "runs " + name}, 1); err != nil {
			c.log.Warn("program a shell script runs is unusable", "script", by, "path", p, "error", err)
		}
	}
	for _, s := range sources {
		p := s
		if !path.IsAbs(p) {
			if !strings.Contains(p, "/") {
				// ". name" searches PATH, as POSIX sh does.
				if found, err := lookPathFile(c.idx, p, c.cmd.Env); err == nil {
					p = found
				} else {
					p = path.Join(workdir(c.cmd), p)
				}
			} else {
				p = path.Join(workdir(c.cmd), p)
			}
		}
		e, links, err := c.follow(p)
		if err != nil || e.Kind != Regular {
			c.log.Debug("file a shell script sources is not in the image", "script", by, "name", s)
			continue
		}
		c.addPath(p, e, links, Reason{Kind: "script", By: by, Detail: ". " + s})
		c.shellScriptFile(e)
	}
}

// shellRuns applies the content rules to the script files (and python -m
// modules) a shell script starts interpreters with.
func (c *closer) shellRuns(by string, runs []shellRun) {
	for _, r := range runs {
		p, err := lookPath(c.idx, r.Prog, c.cmd.Env, c.cmd.WorkingDir)
		if err != nil {
			continue
		}
		fam, ie := c.family(p)
		if ie == nil || ie.ELF == nil {
			continue
		}
		if r.Module {
			pi := c.python(ie)
			pi.first(workdir(c.cmd))
			pi.wantModule(strings.SplitN(r.Arg, ".", 2)[0], by)
			continue
		}
		arg := r.Arg
		if !path.IsAbs(arg) {
			arg = path.Join(workdir(c.cmd), arg)
		}
		e, links, err := c.follow(arg)
		if err != nil || e.Kind != Regular {
			c.log.Debug("script a shell script runs is not a file of the image", "script", by, "run", r.Prog+" "+r.Arg)
			continue
		}
		c.addPath(arg, e, links, Reason{Kind: "script", By: by, Detail: r.Prog + " " + r.Arg})
		switch fam {
		case "sh":
			c.shellScriptFile(e)
		case "python":
			c.pythonScript(ie, e)
		case "perl":
			c.perlFile(c.perl(ie), e)
		}
	}
}

// lookPathFile finds a readable file (executable or not) named name in the
// image's PATH, as "." does.
func lookPathFile(idx *Index, name string, env []string) (string, error) {
	pathVar, ok := envValue(env, "PATH")
	if !ok {
		pathVar = DefaultPath
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if !path.IsAbs(dir) {
			continue
		}
		p := path.Join(dir, name)
		if _, e, err := idx.Resolve(p); err == nil && e.Kind == Regular {
			return p, nil
		}
	}
	return "", errors.New("not found")
}

// shellRunners are programs that run the program named by their first
// operand: both are needed.
var shellRunners = map[string]bool{"xargs": true, "nice": true, "nohup": true, "timeout": true, "stdbuf": true, "setsid": true}

// scanShell returns, conservatively and without running anything, the
// program names a shell script may start and the files it sources: the
// first word of every simple command (after ;, &, |, &&, ||, newlines,
// parentheses, backquotes and $( ), and after the keywords then, do, else,
// ...), looking through exec, command, env and runners like xargs and
// nohup (which are programs themselves), skipping assignments,
// redirections, builtins and words with expansions. Comments are skipped.
// ". FILE" and "source FILE" give FILE as a source.
func scanShell(script string) (cmds, sources []string) {
	cmds, sources, _ = scanShellRuns(script)
	return cmds, sources
}

// shellRun is an interpreter a shell script starts with a script file or
// module: "python3 /app/main.py", "sh ./setup.sh", "perl x.pl",
// "python3 -m app" (Module set).
type shellRun struct {
	Prog, Arg string
	Module    bool
}

// scanShellRuns is scanShell that also returns the interpreters started
// with a file (or python's -m module) as their first operand.
func scanShellRuns(script string) (cmds, sources []string, runs []shellRun) {
	seenC := map[string]bool{}
	seenS := map[string]bool{}
	addC := func(w string) {
		if w == "" || shellSkip[w] || strings.ContainsAny(w, "$*?[`\\=(){}<>") || seenC[w] {
			return
		}
		seenC[w] = true
		cmds = append(cmds, w)
	}
	for _, seg := range splitShell(script) {
		words := strings.Fields(seg)
		for i := 0; i < len(words); i++ {
			w := strings.Trim(words[i], `"'`)
			switch {
			case w == "":
				continue
			case isAssignment(w), shellKeywords[w]:
				continue
			case strings.ContainsAny(w[:1], "<>") || (len(w) > 1 && w[0] >= '0' && w[0] <= '9' && strings.ContainsAny(w[1:2], "<>")):
				if strings.TrimLeft(w, "0123456789<>&|") == "" {
					i++
				}
				continue
			case shellPrefix[w]:
				for i+1 < len(words) && strings.HasPrefix(words[i+1], "-") {
					i++
					if words[i] == "-a" {
						i++
					}
				}
				continue
			case w == "." || w == "source":
				if i+1 < len(words) {
					s := strings.Trim(words[i+1], `"'`)
					if s != "" && !strings.ContainsAny(s, "$*?[`\\") && !seenS[s] {
						seenS[s] = true
						sources = append(sources, s)
					}
				}
			case w == "env":
				addC("env")
				if p := envProgram(strings.Join(words[i+1:], " ")); p != "" {
					addC(p)
				}
			case shellRunners[w]:
				addC(w)
				for j := i + 1; j < len(words); j++ {
					a := strings.Trim(words[j], `"'`)
					if strings.HasPrefix(a, "-") || isAssignment(a) || (a != "" && a[0] >= '0' && a[0] <= '9') {
						continue
					}
					addC(a)
					break
				}
			default:
				addC(w)
				if interpFamily(w) != "" {
					if r, ok := interpRun(w, words[i+1:]); ok {
						runs = append(runs, r)
					}
				}
			}
			break
		}
	}
	return cmds, sources, runs
}

// interpRun returns the script file (or python -m module) an interpreter
// command runs, from the words after it: the first operand after the
// options, unless the code comes from -c / -e.
func interpRun(prog string, rest []string) (shellRun, bool) {
	for i := 0; i < len(rest); i++ {
		a := strings.Trim(rest[i], `"'`)
		switch {
		case a == "" || strings.ContainsAny(a, "$*?[`\\<>|;&"):
			return shellRun{}, false
		case a == "-c" || (interpFamily(prog) == "perl" && strings.HasPrefix(a, "-") && strings.ContainsAny(a, "eE")):
			return shellRun{}, false
		case a == "-m" && interpFamily(prog) == "python" && i+1 < len(rest):
			return shellRun{Prog: prog, Arg: strings.Trim(rest[i+1], `"'`), Module: true}, true
		case a == "-W" || a == "-X" || (a == "-o" && interpFamily(prog) == "sh"):
			i++
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
			continue
		default:
			return shellRun{Prog: prog, Arg: a}, true
		}
	}
	return shellRun{}, false
}

// genericInterp handles a script whose interpreter has no rule of its own
// (awk, ruby, node, ...): the interpreter's library tree is bundled when
// one of the usual directories named after it exists (/usr/lib/NAME,
// /usr/share/NAME, /usr/local/lib/NAME, NAME without its version digits
// too); otherwise a note says it could not be identified.
func (c *closer) genericInterp(ie *Entry, script *Entry) {
	name := path.Base(ie.Path)
	if c.genericDone[ie.Path] {
		return
	}
	c.genericDone[ie.Path] = true
	names := []string{name}
	if s := strings.TrimRight(name, "0123456789."); s != name && s != "" {
		names = append(names, s)
	}
	for _, n := range names {
		for _, dir := range []string{"/usr/lib/" + n, "/usr/share/" + n, "/usr/local/lib/" + n} {
			de, _, err := c.follow(dir)
			if err != nil || de.Kind != Dir {
				continue
			}
			c.addLibraryTree(dir, Reason{Kind: "library", By: ie.Path, Detail: name + " library tree " + dir}, nil)
			c.note("interpreter %s (for %s): bundled its library tree %s (generic rule)", ie.Path, script.Path, dir)
			return
		}
	}
	c.note("interpreter %s (for %s): no library tree identified; if it loads files at run time, add them with --include", ie.Path, script.Path)
}

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
