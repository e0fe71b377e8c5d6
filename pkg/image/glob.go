package image

// The globs of WithInclude and WithExclude.

import (
	"errors"
	"path"
	"strings"
)

// include adds the files matching one WithInclude glob.
func (c *closer) include(g string) error {
	matches := c.glob(g)
	if len(matches) == 0 {
		return &IncludeError{Pattern: g}
	}
	r := Reason{Kind: "include", Detail: g}
	for _, m := range matches {
		e, links, err := c.follow(m)
		if err != nil {
			// A dangling symlink: keep the link itself.
			if le, ok := c.idx.Lookup(m); ok && le.Kind == Symlink {
				c.add(le, r)
			}
			continue
		}
		for _, l := range links {
			c.add(l, Reason{Kind: "symlink", By: e.Path, Detail: m})
		}
		if e.Kind == Dir {
			c.addTree(e.Path, r, func(e *Entry) { c.includeELF(e) })
			continue
		}
		c.add(e, r)
		c.includeELF(e)
	}
	return nil
}

// includeELF resolves the libraries of an included ELF file in a link map
// of its own, and the interpreter of an included executable script. An
// interpreter the image lacks is logged: the include asked for the file,
// not necessarily for running it.
func (c *closer) includeELF(e *Entry) {
	if e.Kind == Regular && e.Script != nil && e.Mode&0o111 != 0 {
		s := e.Script
		ip := s.Interpreter
		if !path.IsAbs(ip) {
			ip = path.Join(workdir(c.cmd), ip)
		}
		line := "#!" + strings.TrimSpace(s.Interpreter+" "+s.Arg)
		if err := c.program(ip, Reason{Kind: "interpreter", By: e.Path, Detail: line}, 1); err != nil {
			c.log.Warn("interpreter of an included script is unusable", "path", e.Path, "error", err)
			return
		}
		c.scriptRules(e, ip, s.Arg)
		return
	}
	if e.Kind != Regular || e.ELF == nil || e.ELF.Static() {
		return
	}
	if c.want != "" && e.ELF.Machine != c.want {
		c.log.Warn("included file is built for another machine; its libraries are not resolved", "path", e.Path, "machine", e.ELF.Machine)
		return
	}
	c.loadProgram(e)
}

// glob returns the image paths matching g. Components are matched with
// path.Match; "**" matches zero or more directories.
func (c *closer) glob(g string) []string {
	if !strings.Contains(g, "**") {
		return c.idx.Glob(g)
	}
	var out []string
	_ = c.idx.Walk(func(e *Entry) error {
		if matchGlob(g, e.Path) {
			out = append(out, e.Path)
		}
		return nil
	})
	return out
}

// checkGlob validates a pattern for WithInclude and WithExclude.
func checkGlob(g string) error {
	if !path.IsAbs(g) {
		return errors.New("must be an absolute image path")
	}
	if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil {
		return err
	}
	return nil
}

// matchGlob matches the clean absolute path p against pattern g, component
// by component, "**" matching any number of components.
func matchGlob(g, p string) bool {
	return matchParts(splitClean(g), splitClean(p))
}

func splitClean(p string) []string {
	var out []string
	for _, s := range strings.Split(path.Clean("/"+p), "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func matchParts(g, p []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(p); i++ {
				if matchParts(g[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], p[0]); !ok {
			return false
		}
		g, p = g[1:], p[1:]
	}
	return len(p) == 0
}

// excluded reports whether p is matched by glob g or lies below a path it
// matches.
func excluded(g, p string) bool {
	parts := splitClean(p)
	for i := len(parts); i > 0; i-- {
		if matchParts(splitClean(g), parts[:i]) {
			return true
		}
	}
	return false
}

// applyExclude drops the files matching WithExclude globs.
func (c *closer) applyExclude() error {
	if len(c.o.exclude) == 0 {
		return nil
	}
	protected := map[string]string{}
	for p, f := range c.files {
		for _, r := range f.Why {
			switch r.Kind {
			case "entrypoint", "loader", "interpreter":
				protected[p] = r.Kind
			}
		}
	}
	for p, f := range c.files {
		for _, r := range f.Why {
			if k, ok := protected[r.By]; ok && r.Kind == "symlink" {
				protected[p] = k
			}
		}
	}
	for _, g := range c.o.exclude {
		for p := range c.files {
			if !excluded(g, p) {
				continue
			}
			if k, ok := protected[p]; ok {
				return &ExcludeError{Pattern: g, Path: p, Kind: k}
			}
			delete(c.files, p)
		}
	}
	return nil
}
