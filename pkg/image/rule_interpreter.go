package image

import (
	"path"
	"strings"
)

func init() { registerRule(50, func() rule { return &interpreterRule{done: map[string]bool{}} }) }

// interpreterRule is the rule of interpreters no other rule interprets
// (awk, ruby, node, ...): the interpreter's library tree is bundled when
// one of the usual directories named after it exists (/usr/lib/NAME,
// /usr/share/NAME, /usr/local/lib/NAME, NAME without its version digits
// too); otherwise a note says it could not be identified.
type interpreterRule struct {
	// done holds the interpreters whose library tree was looked for.
	done map[string]bool
}

func (*interpreterRule) name() string { return "interpreter" }

// interprets takes every interpreter: the rule is asked last.
func (*interpreterRule) interprets(string) bool { return true }

func (r *interpreterRule) apply(c *closer, w work) (bool, error) {
	switch w := w.(type) {
	case scriptWork:
		if w.interp != nil && w.interp.ELF != nil {
			r.libraryTree(c, w.interp, w.e)
		}
	case argsWork:
		r.args(c, w.interp, w.args)
	default:
		return false, nil
	}
	return true, nil
}

// args handles an interpreter given a script file ("node /app/x.js",
// "ruby app.rb"): the first operand, when it is a file of the image and
// not a program itself.
func (r *interpreterRule) args(c *closer, ie *Entry, args []string) {
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
		c.scriptArg(a, path.Base(c.cmd.Args[0]), func(e *Entry) { r.libraryTree(c, ie, e) })
		return
	}
}

// libraryTree bundles the library tree of the interpreter ie (running
// script), once.
func (r *interpreterRule) libraryTree(c *closer, ie *Entry, script *Entry) {
	name := path.Base(ie.Path)
	if r.done[ie.Path] {
		return
	}
	r.done[ie.Path] = true
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
	c.note("interpreter %s (for %s): no library tree identified; if it loads files at run time, include them explicitly", ie.Path, script.Path)
}
