package image

import (
	"bytes"
	"path"
	"regexp"
	"sort"
	"strings"
)

func init() { registerRule(40, func() rule { return &perlRule{} }) }

// perlRule is the rule of Perl: the @INC directories compiled into the
// perl binary, the modules of use, require and -M, with their XS parts,
// recursively.
type perlRule struct {
	interps []*plInterp
}

func (*perlRule) name() string { return "perl" }

func (*perlRule) interprets(name string) bool { return interpFamily(name) == "perl" }

func (r *perlRule) apply(c *closer, w work) (bool, error) {
	switch w := w.(type) {
	case scriptWork:
		r.perlScript(c, w.interp, w.e, w.opts)
	case argsWork:
		r.perlArgs(c, w.interp, w.args)
	case settleWork:
		for _, pl := range r.interps {
			r.resolvePerl(c, pl)
		}
	case reportWork:
		// PERL5LIB: the @INC directories that hold bundled modules.
		for _, pl := range r.interps {
			var dirs []string
			for _, d := range pl.inc {
				if pl.used[d] {
					dirs = append(dirs, d)
				}
			}
			if len(dirs) > 0 {
				w.res.Env = append(w.res.Env, PathEnv{Name: "PERL5LIB", Paths: dirs})
				break
			}
		}
	default:
		return false, nil
	}
	return true, nil
}

// plInterp is one Perl interpreter of the closure and what its rule
// collected.
type plInterp struct {
	exe string
	// inc is @INC as far as it is known: PERL5LIB and -I directories, then
	// the directories compiled into the binary that exist in the image.
	inc []string
	// incRead is set once the binary was read for its @INC.
	incRead bool
	want    map[string]string // module ("List::Util") → who wants it
	done    map[string]bool
	used    map[string]bool // @INC directories holding bundled modules
}

// perl returns the rule state of the Perl interpreter ie, queueing its
// binary for reading the first time: perl's @INC directories are
// compiled into it as strings, and only those that exist in the image are
// kept. The bundle cannot be found at those absolute paths, so the result
// carries PERL5LIB (see ClosureResult.Env) naming the directories that
// hold bundled modules.
func (r *perlRule) perl(c *closer, ie *Entry) *plInterp {
	for _, p := range r.interps {
		if p.exe == ie.Path {
			return p
		}
	}
	pl := &plInterp{exe: ie.Path, want: map[string]string{}, done: map[string]bool{}, used: map[string]bool{}}
	r.interps = append(r.interps, pl)
	for _, name := range []string{"PERL5LIB", "PERLLIB"} {
		for _, d := range splitEnvPathValue(c.cmd.Env, name) {
			pl.addInc(d)
		}
	}
	c.queueScan("perlinc:"+ie.Path, ie, maxScanBinary, func(body []byte) {
		pl.incRead = true
		for _, d := range perlIncStrings(body) {
			if de, _, err := c.follow(d); err == nil && de.Kind == Dir {
				pl.addInc(d)
			}
		}
		if len(pl.inc) == 0 {
			c.note("perl %s: no @INC directory of its binary exists in the image; modules are not bundled", ie.Path)
		}
	})
	return pl
}

func (pl *plInterp) addInc(d string) {
	for _, have := range pl.inc {
		if have == d {
			return
		}
	}
	pl.inc = append(pl.inc, d)
}

// perlIncStrings returns the NUL-terminated absolute paths in a perl
// binary that look like library directories (containing "perl"), in file
// order.
func perlIncStrings(b []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range bytes.Split(b, []byte{0}) {
		if len(s) < 6 || len(s) > 256 || s[0] != '/' || !bytes.Contains(s, []byte("perl")) {
			continue
		}
		ok := true
		for _, ch := range s {
			if ch <= ' ' || ch >= 0x7f {
				ok = false
				break
			}
		}
		p := string(s)
		if ok && path.Clean(p) == p && !strings.Contains(p, "/debug/") && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// perlScript applies the Perl rule to script e run by ie, with the
// options of its "#!" line (-T, -w, -MModule).
func (r *perlRule) perlScript(c *closer, ie *Entry, e *Entry, opts []string) {
	if ie == nil || ie.ELF == nil {
		return
	}
	pl := r.perl(c, ie)
	r.perlOptions(c, pl, opts, e.Path)
	r.perlFile(c, pl, e)
}

// perlArgs applies the Perl rule to "perl [options] (SCRIPT | -e CODE)":
// -M/-m modules, -I directories, the -e/-E code and the script file.
func (r *perlRule) perlArgs(c *closer, ie *Entry, args []string) {
	pl := r.perl(c, ie)
	code := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) && !code {
				c.scriptArg(args[i+1], "perl", func(e *Entry) { r.perlFile(c, pl, e) })
			}
			return
		case strings.HasPrefix(a, "-M") || strings.HasPrefix(a, "-m"), strings.HasPrefix(a, "-I"):
			v := a[2:]
			if v == "" && i+1 < len(args) {
				i++
				v = args[i]
			}
			r.perlOptions(c, pl, []string{a[:2] + v}, c.cmd.Path)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Clustered switches: -ne, -lane, -E; e or E takes the next
			// argument (or the rest of the cluster) as code.
			flags := a[1:]
			if j := strings.IndexAny(flags, "eE"); j >= 0 {
				code = true
				src := flags[j+1:]
				if src == "" && i+1 < len(args) {
					i++
					src = args[i]
				}
				for _, m := range perlModules(src) {
					pl.wantModule(m, c.cmd.Path)
				}
			}
		default:
			if !code {
				c.scriptArg(a, "perl", func(e *Entry) { r.perlFile(c, pl, e) })
			}
			return
		}
	}
}

// perlOptions handles -MModule[=imports], -mModule and -IDIR switches.
func (r *perlRule) perlOptions(c *closer, pl *plInterp, opts []string, by string) {
	for _, o := range opts {
		switch {
		case strings.HasPrefix(o, "-M") || strings.HasPrefix(o, "-m"):
			m := strings.TrimPrefix(o[2:], "-")
			m, _, _ = strings.Cut(m, "=")
			m = strings.Fields(m + " ")[0]
			pl.wantModule(m, by)
		case strings.HasPrefix(o, "-I") && path.IsAbs(o[2:]):
			pl.inc = append([]string{path.Clean(o[2:])}, pl.inc...)
		}
	}
}

func (pl *plInterp) wantModule(m, by string) {
	if m == "" || pl.done[m] {
		return
	}
	if _, ok := pl.want[m]; !ok {
		pl.want[m] = by
	}
}

// perlFile queues a Perl source for reading: its use and require
// statements become wanted modules.
func (r *perlRule) perlFile(c *closer, pl *plInterp, e *Entry) {
	c.queueScan("pl:"+e.Path, e, maxScanBody, func(body []byte) {
		for _, d := range perlLibDirs(string(body)) {
			if de, _, err := c.follow(d); err == nil && de.Kind == Dir {
				pl.inc = append([]string{d}, without(pl.inc, d)...)
			}
		}
		for _, m := range perlModules(string(body)) {
			pl.wantModule(m, e.Path)
		}
	})
}

var plLib = regexp.MustCompile(`(?m)\buse\s+lib\s+(?:qw\s*[(\[{/]([^)\]}/]*)[)\]}/]|['"]([^'"$@]+)['"])`)

// perlLibDirs returns the absolute directories of "use lib" statements
// (literal strings only: "$FindBin::Bin/lib" is known at run time only).
func perlLibDirs(src string) []string {
	var out []string
	for _, m := range plLib.FindAllStringSubmatch(src, -1) {
		for _, d := range strings.Fields(m[1] + " " + m[2]) {
			if path.IsAbs(d) {
				out = append(out, path.Clean(d))
			}
		}
	}
	return out
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

var (
	plName   = regexp.MustCompile(`^[A-Za-z_]\w*(?:::\w+)*$`)
	plUse    = regexp.MustCompile(`(?m)(?:^|[;{\s])(?:use|no|require)\s+([A-Za-z_][\w]*(?:::\w+)*)`)
	plParent = regexp.MustCompile(`(?m)\buse\s+(?:parent|base)\s+(?:-norequire\s*,\s*)?(?:qw\s*[(\[{/]([^)\]}/]*)[)\]}/]|['"]([\w:]+)['"])`)
)

// perlModules returns the modules a Perl source loads statically: "use
// Module", "no Module", "require Module" (barewords only: a string or a
// variable is known at run time only) and the classes of "use parent" and
// "use base". Conservative: it does not tell code from POD or strings.
func perlModules(src string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(m string) {
		if !plName.MatchString(m) || seen[m] || isVersionWord(m) {
			return
		}
		seen[m] = true
		out = append(out, m)
	}
	for _, m := range plUse.FindAllStringSubmatch(src, -1) {
		add(m[1])
	}
	for _, m := range plParent.FindAllStringSubmatch(src, -1) {
		for _, w := range strings.Fields(m[1] + " " + m[2]) {
			if w != "-norequire" {
				add(w)
			}
		}
	}
	return out
}

// isVersionWord reports whether w is a v-string like v5.36.
func isVersionWord(w string) bool {
	if len(w) < 2 || w[0] != 'v' {
		return false
	}
	for _, ch := range w[1:] {
		if (ch < '0' || ch > '9') && ch != '.' && ch != '_' {
			return false
		}
	}
	return true
}

// resolvePerl finds each wanted module as DIR/Module/Path.pm in @INC
// (once perl's binary was read), bundles it and reads it in turn; an XS
// module's DIR/auto/Module/Path directory (the .so, .bs, autoload files)
// comes with it. A module found nowhere is logged: loading it fails in the
// image too, unless it is only loaded conditionally.
func (r *perlRule) resolvePerl(c *closer, pl *plInterp) {
	if !pl.incRead {
		return
	}
	names := make([]string, 0, len(pl.want))
	for n := range pl.want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		by := pl.want[name]
		delete(pl.want, name)
		pl.done[name] = true
		rel := strings.ReplaceAll(name, "::", "/") + ".pm"
		found := false
		for _, dir := range pl.inc {
			p := path.Join(dir, rel)
			e, links, err := c.follow(p)
			if err != nil || e.Kind != Regular {
				continue
			}
			found = true
			pl.used[dir] = true
			why := Reason{Kind: "module", By: by, Detail: "use " + name}
			c.addPath(p, e, links, why)
			r.perlFile(c, pl, e)
			auto := path.Join(dir, "auto", strings.TrimSuffix(rel, ".pm"))
			if ae, _, err := c.follow(auto); err == nil && ae.Kind == Dir {
				c.addLibraryTree(auto, Reason{Kind: "module", By: e.Path, Detail: "XS part of " + name}, func(x *Entry) bool { return x.Kind == Dir })
			}
			break
		}
		if !found {
			c.log.Debug("perl module not found in @INC of the image", "module", name, "wanted_by", by)
		}
	}
}
