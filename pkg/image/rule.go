package image

// The closure rules and how the closer hands them work.
//
// A rule adds to the closure what one kind of file needs. Each lives in a
// file of its own, implements rule and registers itself with registerRule:
// rule_elf.go (ELF programs: the loader, the libraries ld.so would load,
// NSS and gconv modules), rule_shell.go (shell scripts and command lines),
// rule_python.go, rule_perl.go, rule_interpreter.go (any other
// interpreter: its library tree) and rule_data.go (data files read at
// fixed paths). Adding a rule is adding a file.
//
// The closer is a work-list driver (closure.go). It runs the entrypoint,
// following "#!" lines the way the kernel does (exec.go), and hands each
// program that is not a script to the rules as a runWork. With WithImage,
// a script and its interpreter go to the interpreter's rule as a
// scriptWork, an entrypoint that is an interpreter given arguments as an
// argsWork. Rules add files through the closer (walk.go, linkmap.go) and
// queue file bodies to read (queueScan): the driver reads the queued
// bodies in rounds (rounds.go) and gives each back to the rule that asked,
// which may queue more. When a round leaves nothing queued every rule
// settles (settleWork: resolves the modules it collected, which may queue
// more); when nothing is left every rule finishes (finishWork), and once
// the files are final, reports what the result needs (reportWork).

import (
	"cmp"
	"path"
	"slices"
	"strings"
)

// rule is one closure rule.
type rule interface {
	// name names the rule (as RuleSize.Rule does) in debug logs.
	name() string
	// interprets reports whether the rule reads the scripts and arguments
	// of the interpreter whose file is called name ("dash", "python3.11").
	interprets(name string) bool
	// apply does w when it is the rule's work, reporting whether it was.
	apply(c *closer, w work) (bool, error)
}

// work is what the closer hands its rules: one of the *Work types.
type work interface{ isWork() }

// runWork asks for what the program e needs to run: a regular executable
// file that is not a "#!" script (the entrypoint, an interpreter, a
// command a script runs). The first rule that takes it handles it; a file
// no rule takes cannot be run (exec format error).
type runWork struct{ e *Entry }

// scriptWork asks the interpreter's rule for what the script file e needs
// when interp runs it; opts are the interpreter options of its "#!" line.
type scriptWork struct {
	interp, e *Entry
	opts      []string
}

// argsWork asks the interpreter's rule for what the command needs when
// its program is the interpreter interp, given args ("-m", "app").
type argsWork struct {
	interp *Entry
	args   []string
}

// moduleWork asks the interpreter's rule for the module a shell script
// runs as a program ("python3 -m app" in the script by).
type moduleWork struct {
	interp     *Entry
	module, by string
}

// lineWork asks for what a shell-form command line (["/bin/sh", "-c",
// line]) runs.
type lineWork struct{ line string }

// settleWork tells every rule that a round of reading left nothing
// queued: modules collected can be resolved now.
type settleWork struct{}

// finishWork tells every rule that the content rules are done.
type finishWork struct{}

// reportWork asks every rule for its part of the result, once the files
// are final (after WithExclude).
type reportWork struct{ res *ClosureResult }

func (runWork) isWork()    {}
func (scriptWork) isWork() {}
func (argsWork) isWork()   {}
func (moduleWork) isWork() {}
func (lineWork) isWork()   {}
func (settleWork) isWork() {}
func (finishWork) isWork() {}
func (reportWork) isWork() {}

// registered are the rules' constructors with their order.
var registered []registeredRule

type registeredRule struct {
	order int
	make  func() rule
}

// registerRule adds a rule to every closure. Rules are asked in
// increasing order: when two interpret the same name, and for the order
// of settling and finishing (the data rule finishes after the ELF rule
// added NSS modules).
func registerRule(order int, make func() rule) {
	registered = append(registered, registeredRule{order, make})
}

// newRules returns fresh rules for one closure, in order.
func newRules() []rule {
	rs := slices.Clone(registered)
	slices.SortStableFunc(rs, func(a, b registeredRule) int { return cmp.Compare(a.order, b.order) })
	out := make([]rule, len(rs))
	for i, r := range rs {
		out[i] = r.make()
	}
	return out
}

// first hands w to the rules in order until one takes it; it reports
// whether one did.
func (c *closer) first(w work) (bool, error) {
	for _, r := range c.rules {
		if ok, err := r.apply(c, w); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// each hands w to every rule, in order.
func (c *closer) each(w work) {
	for _, r := range c.rules {
		_, _ = r.apply(c, w)
	}
}

// ruleFor returns the rule for the interpreter at p, by the name it was
// called and by the name of the file it resolves to (/bin/sh -> dash),
// with the file's entry; nil when p is no file of the image.
func (c *closer) ruleFor(p string) (rule, *Entry) {
	e, _, err := c.follow(p)
	if err != nil {
		return nil, nil
	}
	for _, r := range c.rules {
		if r.interprets(path.Base(p)) || r.interprets(path.Base(e.Path)) {
			c.log.Debug("interpreter rule", "interpreter", p, "rule", r.name())
			return r, e
		}
	}
	return nil, e
}

// scriptRules hands the "#!" script e to the rule of its interpreter
// (after env's PATH lookup) interp; arg is the "#!" argument.
func (c *closer) scriptRules(e *Entry, interp, arg string) {
	if !c.scanOn() {
		return
	}
	if r, ie := c.ruleFor(interp); r != nil {
		_, _ = r.apply(c, scriptWork{interp: ie, e: e, opts: strings.Fields(arg)})
	}
}

// argsRules hands an entrypoint that is itself an interpreter given code
// or a script in its arguments ("sh script.sh", "python3 app.py", "python3
// -m pkg", "perl -MList::Util -ne CODE") to the interpreter's rule.
func (c *closer) argsRules() {
	if !c.scanOn() || len(c.cmd.Args) < 2 {
		return
	}
	r, ie := c.ruleFor(c.cmd.Path)
	if r == nil || ie.ELF == nil {
		return
	}
	_, _ = r.apply(c, argsWork{interp: ie, args: c.cmd.Args[1:]})
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
