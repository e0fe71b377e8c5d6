package image

// The environment a relocated program needs to find closure files: the
// variables rules set, kept when the closure still holds their paths.

import (
	"slices"
	"strings"
)

// setEnv records a variable for ClosureResult.Env (the first one set for
// a name wins).
func (c *closer) setEnv(name, prefix string, paths ...string) {
	for _, e := range c.env {
		if e.Name == name {
			return
		}
	}
	c.env = append(c.env, PathEnv{Name: name, Prefix: prefix, Paths: paths})
}

// keptEnv returns ClosureResult.Env: the variables set with setEnv (by
// the data rules), then those the rules reported (PERL5LIB, PYTHONPATH:
// module paths, which a relocated interpreter would look for on the host),
// sorted by name, without the other variables the image's ENV sets itself
// and without paths WithExclude removed.
func (c *closer) keptEnv(reported []PathEnv) []PathEnv {
	all := append([]PathEnv(nil), c.env...)
	reported = slices.Clone(reported)
	slices.SortStableFunc(reported, func(a, b PathEnv) int { return strings.Compare(a.Name, b.Name) })
	all = append(all, reported...)
	var out []PathEnv
	for _, e := range all {
		if _, set := envValue(c.cmd.Env, e.Name); set && e.Name != "PERL5LIB" && e.Name != "PYTHONPATH" {
			continue
		}
		var kept []string
		for _, p := range e.Paths {
			if c.bundled(p) {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out = append(out, PathEnv{Name: e.Name, Prefix: e.Prefix, Paths: kept})
		}
	}
	return out
}

// bundled reports whether the closure holds p or a file below it.
func (c *closer) bundled(p string) bool {
	e, _, err := c.follow(p)
	if err != nil {
		return false
	}
	if _, ok := c.files[e.Path]; ok {
		return true
	}
	if e.Kind != Dir {
		return false
	}
	prefix := e.Path + "/"
	for fp := range c.files {
		if strings.HasPrefix(fp, prefix) {
			return true
		}
	}
	return false
}
