package image

// Reading shell script text without running it: the programs it may
// start, the files it sources, the interpreters it starts with a script
// file (used by the shell rule and by RelocateShell).

import (
	"path"
	"strings"
)

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

// envProgram returns the program "/usr/bin/env ARG" runs: the first word
// of ARG that is not an option or a NAME=VALUE assignment. "-S" splits the
// rest into words, as coreutils env does.
func envProgram(arg string) string {
	words := strings.Fields(arg)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-S" || w == "--split-string":
			continue
		case strings.HasPrefix(w, "-S"):
			words = append([]string{w[2:]}, words[i+1:]...)
			i = -1
		case w == "-u" || w == "--unset" || w == "-C" || w == "--chdir":
			i++ // option with a value
		case strings.HasPrefix(w, "-"):
			continue
		case strings.Contains(w, "="):
			continue
		default:
			return w
		}
	}
	return ""
}
