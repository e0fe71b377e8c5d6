package image

// Running a program the way execve(2) does, without running it: the file
// must be an executable regular file; a "#!" script runs its interpreter
// (up to the kernel's 4 levels); any other file is for the rules to
// take (runWork: the ELF rule takes ELF programs).

import (
	"errors"
	"path"
	"strings"
)

// platformMachine maps an OCI platform ("linux/arm64") to the ELF machine
// name ParseELF uses.
func platformMachine(platform string) string {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return ""
	}
	switch parts[1] {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	case "arm":
		return "arm"
	}
	return ""
}

// maxScriptDepth is the kernel's limit on nested "#!" interpreters.
const maxScriptDepth = 4

// program adds an executable (the entrypoint, an interpreter) and what it
// needs to run; depth counts the "#!" interpreters above it.
func (c *closer) program(p string, r Reason, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	err := c.program1(p, r, depth)
	var ee *EntrypointError
	if r.Kind == "interpreter" && errors.As(err, &ee) && ee.Script == "" && ee.Name == p {
		ee.Script = r.By
	}
	return err
}

// program1 is program without the error decoration: the file at p must
// be an executable regular file; a "#!" script brings its interpreter
// (runScript), any other file goes to the rules (runWork).
func (c *closer) program1(p string, r Reason, depth int) error {
	e, links, err := c.follow(p)
	if err != nil {
		problem := "not found"
		if errors.Is(err, ErrSymlinkLoop) {
			problem = "symlink loop"
		}
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: problem, Looked: []string{p},
			Nearby: nearby(c.idx, []string{path.Dir(p)}, path.Base(p))}
	}
	switch {
	case e.Kind == Dir:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "is a directory", Looked: []string{p}}
	case e.Kind != Regular:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "not a regular file", Looked: []string{p}}
	case e.Mode&0o111 == 0:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "not executable", Looked: []string{p}}
	}
	c.addPath(p, e, links, r)
	if e.Script != nil {
		if depth >= maxScriptDepth {
			return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "more than 4 levels of #! interpreters", Looked: []string{p}}
		}
		return c.runScript(e, depth)
	}
	ok, err := c.first(runWork{e: e})
	if err != nil || ok {
		return err
	}
	return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "neither an ELF program nor a #! script (exec format error)", Looked: []string{e.Path}}
}

// runScript adds the interpreter of the "#!" script e, as the kernel runs
// it (binfmt_script), and "#!/usr/bin/env NAME"'s program NAME found
// through the image's PATH; then the interpreter's rule reads the script.
func (c *closer) runScript(e *Entry, depth int) error {
	s := e.Script
	line := "#!" + s.Interpreter
	if s.Arg != "" {
		line += " " + s.Arg
	}
	ip := s.Interpreter
	if !path.IsAbs(ip) {
		ip = path.Join(workdir(c.cmd), ip)
	}
	if err := c.program(ip, Reason{Kind: "interpreter", By: e.Path, Detail: line}, depth+1); err != nil {
		return err
	}
	if path.Base(s.Interpreter) == "env" {
		if name := envProgram(s.Arg); name != "" {
			found, err := lookPath(c.idx, name, c.cmd.Env, c.cmd.WorkingDir)
			if err != nil {
				var ee *EntrypointError
				if errors.As(err, &ee) {
					ee.Config = c.cmd.Args
					ee.Script = e.Path + " (" + line + ")"
				}
				return err
			}
			if err := c.program(found, Reason{Kind: "interpreter", By: e.Path, Detail: line + " (through PATH)"}, depth+1); err != nil {
				return err
			}
			_, rest, _ := strings.Cut(strings.TrimSpace(s.Arg), name)
			c.scriptRules(e, found, strings.TrimSpace(rest))
			return nil
		}
	}
	c.scriptRules(e, ip, s.Arg)
	return nil
}

func workdir(c *Command) string {
	if c.WorkingDir == "" {
		return "/"
	}
	return c.WorkingDir
}
