package image

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// DefaultPath is the PATH Docker and containerd give a container whose
// image ENV sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Override replaces parts of the image config, like `docker run
// --entrypoint` and the arguments after the image name. Setting Entrypoint
// clears the image's CMD unless Cmd is set too, as Docker does.
type Override struct {
	Entrypoint, Cmd []string
	// EntrypointSet and CmdSet say that the fields above are to be used,
	// even when empty (an empty Entrypoint override runs CMD alone).
	EntrypointSet, CmdSet bool
}

// ResolveCommand works out the program the image runs: ENTRYPOINT followed
// by CMD (CMD alone when there is no ENTRYPOINT); shell forms need no
// special care since Docker stores them as ["/bin/sh", "-c", "..."]. A bare
// program name is looked up in the image's PATH (its ENV, or DefaultPath),
// taking the first executable regular file, as execvp does; a relative
// path containing "/" is taken from WORKDIR. ENV, WORKDIR and USER are kept.
//
// The program must exist in the index, be a regular file after symlinks and
// have an execute bit; otherwise the result is an *EntrypointError saying
// what the config said, where the name was looked up and which similar
// names exist there.
func ResolveCommand(img *Image, idx *Index, o Override) (*Command, error) {
	if img == nil || img.Config == nil {
		return nil, errors.New("resolving command: image has no config")
	}
	if idx == nil {
		return nil, errors.New("resolving command: index is nil")
	}
	cfg := img.Config.Config
	ep, cmdArgs := cfg.Entrypoint, cfg.Cmd
	if o.EntrypointSet {
		ep, cmdArgs = o.Entrypoint, nil
	}
	if o.CmdSet {
		cmdArgs = o.Cmd
	}
	c := &Command{
		Entrypoint: append([]string(nil), ep...),
		Cmd:        append([]string(nil), cmdArgs...),
		Args:       append(append([]string(nil), ep...), cmdArgs...),
		Env:        append([]string(nil), cfg.Env...),
		WorkingDir: cfg.WorkingDir,
		User:       cfg.User,
		Platform:   img.Platform.String(),
	}
	config := c.Args
	if len(c.Args) == 0 || c.Args[0] == "" {
		return nil, &EntrypointError{Config: config, Problem: "the image config has no ENTRYPOINT or CMD"}
	}
	p, err := lookPath(idx, c.Args[0], c.Env, c.WorkingDir)
	if err != nil {
		var ee *EntrypointError
		if errors.As(err, &ee) {
			ee.Config = config
		}
		return nil, err
	}
	c.Path = p
	return c, nil
}

// lookPath finds the image path of program name: absolute names as they
// are, names with a "/" from workdir, bare names through PATH.
func lookPath(idx *Index, name string, env []string, workdir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			wd := workdir
			if wd == "" {
				wd = "/"
			}
			p = path.Join(wd, p)
		}
		p = path.Clean(p)
		if problem, err := checkProgram(idx, p); problem != "" {
			return "", &EntrypointError{Name: name, Problem: problem, Looked: []string{p}, Nearby: nearby(idx, []string{path.Dir(p)}, path.Base(p)), Err: err}
		}
		return p, nil
	}
	pathVar, ok := envValue(env, "PATH")
	if !ok {
		pathVar = DefaultPath
	}
	var looked, dirs []string
	firstProblem := ""
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" || !path.IsAbs(dir) {
			continue // a relative PATH entry depends on the cwd; skip it
		}
		p := path.Join(dir, name)
		looked = append(looked, p)
		dirs = append(dirs, dir)
		problem, _ := checkProgram(idx, p)
		if problem == "" {
			return p, nil
		}
		if problem != "not found" && firstProblem == "" {
			firstProblem = problem
		}
	}
	if firstProblem == "" {
		firstProblem = "not found"
	}
	return "", &EntrypointError{Name: name, Problem: firstProblem, Looked: looked, Nearby: nearby(idx, dirs, name)}
}

// checkProgram returns "" when p resolves to an executable regular file,
// otherwise the problem.
func checkProgram(idx *Index, p string) (string, error) {
	_, e, err := idx.Resolve(p)
	switch {
	case errors.Is(err, ErrSymlinkLoop):
		return "symlink loop", err
	case err != nil && errors.Is(err, fs.ErrNotExist):
		return "not found", nil
	case err != nil:
		return "not found", err
	case e.Kind == Dir:
		return "is a directory", nil
	case e.Kind != Regular:
		return "not a regular file", nil
	case e.Mode&0o111 == 0:
		return "not executable", nil
	}
	return "", nil
}

// maxSimilarNames bounds the suggestions of an EntrypointError.
const maxSimilarNames = 8

// nearby lists paths in dirs whose names resemble name: same name in
// another case, one containing the other, or within two edits.
func nearby(idx *Index, dirs []string, name string) []string {
	var out []string
	seen := map[string]bool{}
	lname := strings.ToLower(name)
	for _, dir := range dirs {
		for _, e := range idx.ReadDir(dir) {
			base := path.Base(e.Path)
			lb := strings.ToLower(base)
			similar := lb == lname ||
				(len(lname) >= 3 && strings.Contains(lb, lname)) ||
				(len(lb) >= 3 && strings.Contains(lname, lb)) ||
				nameDistance(lb, lname) <= 2
			if !similar {
				continue
			}
			p := path.Join(dir, base)
			if base == name && dir == dirs[0] && len(dirs) == 1 {
				continue // the path looked at itself
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	if len(out) > maxSimilarNames {
		out = out[:maxSimilarNames]
	}
	return out
}

// nameDistance is the Levenshtein distance of a and b (bytes).
func nameDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shells are the programs whose "-c STRING" argument is a shell command
// line (Docker stores the shell form of ENTRYPOINT and CMD as
// ["/bin/sh", "-c", "..."]).
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "mksh": true, "zsh": true}

// shellScript returns the command string of a shell-form command
// (["/bin/sh", "-c", STRING, ...]) and true, or false for other commands.
func shellScript(args []string) (string, bool) {
	if len(args) < 3 || !shells[path.Base(args[0])] {
		return "", false
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c":
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "c"):
			// Combined flags such as -ec or -xc.
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		case strings.HasPrefix(a, "-"):
			continue
		default:
			return "", false
		}
	}
	return "", false
}

// shellKeywords are reserved words a command may start with; the
// command's program is the next word.
var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "while": true, "until": true, "do": true,
	"time": true, "!": true, "{": true,
}

// shellSkip are the other keywords and the builtins of POSIX sh, dash and
// bash: they are not programs. exec and command are handled apart.
var shellSkip = map[string]bool{
	"fi": true, "for": true, "done": true, "case": true, "esac": true, "in": true, "function": true, "select": true,
	"}": true, "[[": true, "]]": true,
	"cd": true, "echo": true, "printf": true, "set": true, "export": true, "unset": true, "read": true, "test": true,
	"[": true, "true": true, "false": true, ":": true, ".": true, "source": true, "eval": true, "trap": true,
	"wait": true, "shift": true, "exit": true, "return": true, "local": true, "alias": true, "umask": true,
	"ulimit": true, "getopts": true, "times": true, "type": true, "hash": true, "readonly": true, "break": true,
	"continue": true, "pwd": true, "kill": true, "jobs": true, "fg": true, "bg": true,
}

// shellPrefix are builtins that run the next word as the program.
var shellPrefix = map[string]bool{"exec": true, "command": true}

// shellCommands returns the program names a shell command line starts,
// best effort and without running anything: the commands of scanShell
// (sourced files are not followed here: a command line has no image file
// to read them from before the closure resolves them).
func shellCommands(script string) []string {
	cmds, _ := scanShell(script)
	return cmds
}

// splitShell cuts a command line into simple commands at control
// operators and command substitutions outside quotes; quoted text stays
// in its command, quotes included. Comments ("#" starting a word outside
// quotes, to the end of the line) are dropped.
func splitShell(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	comment := false
	prev := ' '
	for _, r := range s {
		if comment {
			if r == '\n' {
				comment = false
				flush()
			}
			prev = r
			continue
		}
		wordStart := prev == ' ' || prev == '\t' || prev == '\n' || prev == ';' || prev == '&' || prev == '|' || prev == '(' || prev == ')' || prev == '`'
		prev = r
		switch {
		case quote == 0 && r == '#' && wordStart:
			// A comment runs to the end of the line.
			comment = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote = r
			cur.WriteRune(r)
		case r == ';' || r == '&' || r == '|' || r == '\n' || r == '(' || r == ')' || r == '`':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// isAssignment reports whether w is NAME=VALUE.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isIdent(name[i]) {
			return false
		}
	}
	return true
}
