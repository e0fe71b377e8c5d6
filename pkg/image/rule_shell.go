package image

import (
	"errors"
	"path"
	"sort"
	"strings"
)

func init() { registerRule(20, func() rule { return &shellRule{files: map[string]bool{}} }) }

// shellRule is the rule of shell scripts (sh, dash, bash, busybox sh, ...)
// and shell-form command lines: the programs a script or line runs,
// found through the image's PATH, recursively, and the files it sources,
// read in turn; scripts it starts other interpreters with go to their
// rules.
type shellRule struct {
	// files are the files read as shell scripts, for
	// ClosureResult.ShellScripts.
	files map[string]bool
}

func (*shellRule) name() string { return "scripts" }

func (*shellRule) interprets(name string) bool { return interpFamily(name) == "sh" }

func (r *shellRule) apply(c *closer, w work) (bool, error) {
	switch w := w.(type) {
	case lineWork:
		return true, r.line(c, w.line)
	case scriptWork:
		r.file(c, w.e)
	case argsWork:
		r.args(c, w.args)
	case reportWork:
		for p := range r.files {
			if _, ok := c.files[p]; ok {
				w.res.ShellScripts = append(w.res.ShellScripts, p)
			}
		}
		sort.Strings(w.res.ShellScripts)
	default:
		return false, nil
	}
	return true, nil
}

// args handles "sh [options] SCRIPT": the script file is read. A -c line
// is lineWork.
func (r *shellRule) args(c *closer, args []string) {
	if _, ok := shellScript(c.cmd.Args); ok {
		return // the -c line is read as lineWork
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+") {
			continue
		}
		c.scriptArg(a, "sh", func(e *Entry) { r.file(c, e) })
		return
	}
}

// file queues the shell script e for reading: the programs its
// body runs and the files it sources are added.
func (r *shellRule) file(c *closer, e *Entry) {
	r.files[e.Path] = true
	c.queueScan("sh:"+e.Path, e, maxScanBody, func(body []byte) {
		r.text(c, e.Path, string(body))
	})
}

// text adds what the text of the shell script by (a file, or the shell
// of a "-c" command line) needs: each command name that resolves to an
// executable through the image's PATH (recursively: a command that is a
// script brings its interpreter and is read too), and each file it
// sources with "." or "source", read in turn.
func (r *shellRule) text(c *closer, by string, body string) {
	cmds, sources, runs := scanShellRuns(body)
	defer r.runs(c, by, runs)
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
		r.file(c, e)
	}
}

// runs hands the script files (and python -m modules) a shell script
// starts interpreters with to the interpreters' rules.
func (r *shellRule) runs(c *closer, by string, runs []shellRun) {
	for _, run := range runs {
		p, err := lookPath(c.idx, run.Prog, c.cmd.Env, c.cmd.WorkingDir)
		if err != nil {
			continue
		}
		ir, ie := c.ruleFor(p)
		if ir == nil || ie.ELF == nil {
			continue
		}
		if run.Module {
			_, _ = ir.apply(c, moduleWork{interp: ie, module: run.Arg, by: by})
			continue
		}
		arg := run.Arg
		if !path.IsAbs(arg) {
			arg = path.Join(workdir(c.cmd), arg)
		}
		e, links, err := c.follow(arg)
		if err != nil || e.Kind != Regular {
			c.log.Debug("script a shell script runs is not a file of the image", "script", by, "run", run.Prog+" "+run.Arg)
			continue
		}
		c.addPath(arg, e, links, Reason{Kind: "script", By: by, Detail: run.Prog + " " + run.Arg})
		_, _ = ir.apply(c, scriptWork{interp: ie, e: e})
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

// line adds the programs a shell-form command line starts
// (["/bin/sh", "-c", "momentum --fast"] runs momentum), found through the
// image's PATH, with reason "entrypoint" by the shell. The line is read,
// never run, so this is best effort: names the image lacks (functions,
// builtins of other shells) and programs that cannot be followed are
// logged, not errors.
func (r *shellRule) line(c *closer, script string) error {
	shell := c.cmd.Path
	if e, _, err := c.follow(shell); err == nil {
		shell = e.Path
	}
	for _, name := range shellCommands(script) {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p, err := lookPath(c.idx, name, c.cmd.Env, c.cmd.WorkingDir)
		if err != nil {
			c.log.Warn("program of the shell command line not found in the image", "name", name, "command", script)
			continue
		}
		why := Reason{Kind: "entrypoint", By: shell, Detail: path.Base(c.cmd.Args[0]) + " -c: " + name}
		if err := c.program(p, why, 1); err != nil {
			c.log.Warn("program of the shell command line is unusable", "path", p, "error", err)
		}
	}
	if c.scanOn() {
		// The content rules read the line like a script body: sourced
		// files, scripts the interpreters it starts run.
		r.text(c, shell, script)
	}
	return nil
}
