package image

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

func init() { registerRule(30, func() rule { return &pythonRule{} }) }

// pythonRule is the rule of Python: the interpreter's standard library
// minus its tests, IDLE and Tk, lib-dynload's modules with their
// libraries, and the modules plain import statements name, found in the
// script's directory, PYTHONPATH, the site directories and their .pth
// files, recursively.
type pythonRule struct {
	interps []*pyInterp
}

func (*pythonRule) name() string { return "python" }

func (*pythonRule) interprets(name string) bool { return interpFamily(name) == "python" }

func (r *pythonRule) apply(c *closer, w work) (bool, error) {
	switch w := w.(type) {
	case scriptWork:
		r.pythonScript(c, w.interp, w.e)
	case argsWork:
		r.pythonArgs(c, w.interp, w.args)
	case moduleWork:
		pi := r.python(c, w.interp)
		pi.first(workdir(c.cmd))
		pi.wantModule(strings.SplitN(w.module, ".", 2)[0], w.by)
	case settleWork:
		for _, pi := range r.interps {
			r.resolvePython(c, pi)
		}
	case reportWork:
		// PYTHONPATH: the image's own entries and the absolute
		// directories of .pth files, which a relocated interpreter would
		// look for on the host.
		for _, pi := range r.interps {
			if len(pi.relocate) > 0 {
				w.res.Env = append(w.res.Env, PathEnv{Name: "PYTHONPATH", Paths: pi.relocate})
				break
			}
		}
	default:
		return false, nil
	}
	return true, nil
}

// pyInterp is one Python interpreter of the closure and what its rule
// collected.
type pyInterp struct {
	exe     string // resolved path of the interpreter binary
	version string // "3.11"
	stdlib  string // "/usr/lib/python3.11"
	// path is the module search path outside the standard library: the
	// entry scripts' directories, PYTHONPATH, site directories and the
	// directories their .pth files add, in order.
	path []string
	// front counts the directories of path searched before the standard
	// library (the script's directory, PYTHONPATH), as Python's sys.path
	// orders them; the site directories come after it.
	front int
	// relocate are the absolute directories named by PYTHONPATH and .pth
	// files: a relocated interpreter would look for them on the host, so
	// they go into ClosureResult.Env's PYTHONPATH.
	relocate []string
	// want maps top-level module names still to resolve to the file that
	// imports them; done holds those resolved (or given up on).
	want map[string]string
	done map[string]bool
}

// pythonVersion matches the version in an interpreter's file name.
var pythonVersion = regexp.MustCompile(`^python(\d+\.\d+)`)

// stdlibSkip are the directories of the standard library left out: the
// test suite, IDLE, Tk, the bundled pip wheels and demos, about half of
// the library's size, never used by a batch program.
var stdlibSkip = map[string]bool{
	"test": true, "tests": true, "idlelib": true, "tkinter": true, "turtledemo": true, "ensurepip": true,
}

// python returns the rule state of the interpreter ie, bundling its
// standard library and finding its module search path the first time.
func (r *pythonRule) python(c *closer, ie *Entry) *pyInterp {
	for _, p := range r.interps {
		if p.exe == ie.Path {
			return p
		}
	}
	pi := &pyInterp{exe: ie.Path, want: map[string]string{}, done: map[string]bool{}}
	r.interps = append(r.interps, pi)
	prefix := path.Dir(path.Dir(ie.Path))
	pi.version = pythonVersionOf(c.idx, ie.Path, prefix)
	if pi.version == "" {
		c.note("python %s: version not identified from its name; its standard library is not bundled (include it explicitly)", ie.Path)
		return pi
	}
	pi.stdlib = path.Join(prefix, "lib", "python"+pi.version)
	if de, _, err := c.follow(pi.stdlib); err != nil || de.Kind != Dir {
		c.note("python %s: standard library %s not found in the image", ie.Path, pi.stdlib)
		pi.stdlib = ""
	} else {
		why := Reason{Kind: "library", By: ie.Path, Detail: "python" + pi.version + " standard library"}
		c.addLibraryTree(pi.stdlib, why, func(e *Entry) bool {
			return e.Kind == Dir && path.Dir(e.Path) == pi.stdlib && stdlibSkip[path.Base(e.Path)]
		})
	}
	for _, d := range splitEnvPathValue(c.cmd.Env, "PYTHONPATH") {
		if pi.addDir(d) {
			pi.front++
		}
		pi.relocate = append(pi.relocate, d)
	}
	r.sites(c, pi, prefix)
	return pi
}

// pythonVersionOf returns the version ("3.11") of the Python interpreter
// at exe, installed under prefix: from its file name, else (a file named
// "python3") from the single lib/python3.N directory; "" when unknown.
func pythonVersionOf(idx *Index, exe, prefix string) string {
	if m := pythonVersion.FindStringSubmatch(path.Base(exe)); m != nil {
		return m[1]
	}
	var found []string
	for _, e := range idx.ReadDir(path.Join(prefix, "lib")) {
		if m := pythonVersion.FindStringSubmatch(path.Base(e.Path)); m != nil && e.Kind == Dir {
			found = append(found, m[1])
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

// sites adds the site directories of pi that exist to its module search
// path, in Python's order, and reads their .pth files.
func (r *pythonRule) sites(c *closer, pi *pyInterp, prefix string) {
	v := pi.version
	major := strings.SplitN(v, ".", 2)[0]
	sites := []string{
		path.Join(prefix, "local/lib/python"+v, "dist-packages"),
		path.Join(prefix, "lib/python"+major, "dist-packages"),
		path.Join(prefix, "lib/python"+v, "dist-packages"),
		path.Join(prefix, "lib/python"+v, "site-packages"),
		"/usr/local/lib/python" + v + "/dist-packages",
		"/usr/local/lib/python" + v + "/site-packages",
	}
	for _, d := range sites {
		de, _, err := c.follow(d)
		if err != nil || de.Kind != Dir {
			continue
		}
		if !pi.addDir(d) {
			continue
		}
		for _, e := range c.idx.ReadDir(de.Path) {
			if e.Kind == Regular && strings.HasSuffix(e.Path, ".pth") {
				c.add(e, Reason{Kind: "module", By: pi.exe, Detail: "site .pth file"})
				r.pth(c, pi, d, e)
			}
		}
	}
}

// pth queues the .pth file e of the site directory site for reading: the
// directories it names (not its "import" lines) join the module search
// path; absolute ones are relocated through PYTHONPATH.
func (r *pythonRule) pth(c *closer, pi *pyInterp, site string, e *Entry) {
	c.queueScan("pth:"+e.Path, e, maxScanBody, func(body []byte) {
		for _, line := range strings.Split(string(body), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "import ") || strings.HasPrefix(line, "import\t") {
				continue
			}
			dir := line
			if !path.IsAbs(dir) {
				dir = path.Join(site, dir)
			}
			if de, _, err := c.follow(dir); err == nil && de.Kind == Dir {
				pi.addDir(path.Clean(dir))
				if path.IsAbs(line) {
					pi.relocate = append(pi.relocate, path.Clean(dir))
				}
			}
		}
	})
}

// addDir appends d to the module search path once; it reports whether d
// was new.
func (pi *pyInterp) addDir(d string) bool {
	for _, have := range pi.path {
		if have == d {
			return false
		}
	}
	pi.path = append(pi.path, d)
	return true
}

// splitEnvPathValue returns the absolute entries of the image ENV's
// colon-separated variable name.
func splitEnvPathValue(env []string, name string) []string {
	v, ok := envValue(env, name)
	if !ok {
		return nil
	}
	var out []string
	for _, d := range strings.Split(v, ":") {
		if path.IsAbs(d) {
			out = append(out, path.Clean(d))
		}
	}
	return out
}

// pythonScript applies the Python rule to script e run by ie: the
// standard library, the script's directory first on the module path (as
// sys.path[0]), and the modules its imports name.
func (r *pythonRule) pythonScript(c *closer, ie *Entry, e *Entry) {
	if ie == nil || ie.ELF == nil {
		return
	}
	pi := r.python(c, ie)
	pi.first(path.Dir(e.Path))
	r.pythonFile(c, pi, e)
}

// first puts dir at the front of the module search path (sys.path[0]).
func (pi *pyInterp) first(dir string) {
	for i, d := range pi.path {
		if d == dir {
			if i < pi.front {
				return
			}
			pi.path = append(pi.path[:i:i], pi.path[i+1:]...)
			break
		}
	}
	pi.path = append([]string{dir}, pi.path...)
	pi.front++
}

// pythonArgs applies the Python rule to "python3 [options] SCRIPT|-m
// MODULE|-c CODE".
func (r *pythonRule) pythonArgs(c *closer, ie *Entry, args []string) {
	pi := r.python(c, ie)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" && i+1 < len(args):
			pi.first(workdir(c.cmd))
			for _, m := range pythonImports(args[i+1]) {
				pi.wantModule(m, c.cmd.Path)
			}
			return
		case a == "-m" && i+1 < len(args):
			pi.first(workdir(c.cmd))
			pi.wantModule(strings.SplitN(args[i+1], ".", 2)[0], c.cmd.Path)
			return
		case a == "-W" || a == "-X" || a == "--check-hash-based-pycs":
			i++
		case strings.HasPrefix(a, "-"):
			continue
		default:
			c.scriptArg(a, "python", func(e *Entry) { r.pythonScript(c, ie, e) })
			return
		}
	}
}

// pythonFile queues a Python source file for reading: its imports become
// wanted modules.
func (r *pythonRule) pythonFile(c *closer, pi *pyInterp, e *Entry) {
	c.queueScan("py:"+e.Path, e, maxScanBody, func(body []byte) {
		for _, m := range pythonImports(string(body)) {
			pi.wantModule(m, e.Path)
		}
	})
}

func (pi *pyInterp) wantModule(name, by string) {
	if name == "" || pi.done[name] {
		return
	}
	if _, ok := pi.want[name]; !ok {
		pi.want[name] = by
	}
}

var (
	pyImport = regexp.MustCompile(`(?m)^[ \t]*import[ \t]+([A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?)*)`)
	pyFrom   = regexp.MustCompile(`(?m)^[ \t]*from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b`)
)

// pythonImports returns the top-level module names a Python source
// imports with plain "import a.b [as c], d" and "from a.b import c"
// statements (at any indentation: imports inside functions, try and if
// count too). Relative imports ("from . import x") are left to the
// package directory, which is bundled whole.
func pythonImports(src string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(m string) {
		top := strings.SplitN(m, ".", 2)[0]
		if top != "" && !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	for _, m := range pyImport.FindAllStringSubmatch(src, -1) {
		for _, part := range strings.Split(m[1], ",") {
			f := strings.Fields(part)
			if len(f) > 0 {
				add(f[0])
			}
		}
	}
	for _, m := range pyFrom.FindAllStringSubmatch(src, -1) {
		add(m[1])
	}
	return out
}

// resolvePython finds each wanted top-level module: in the standard
// library (already bundled) or as dir/NAME/ (a package: its whole tree,
// every .py file read), dir/NAME.py or an extension module
// dir/NAME.*.so in the search path. A name found nowhere is a built-in
// module or one the image lacks (logged: importing it fails in the image
// too).
func (r *pythonRule) resolvePython(c *closer, pi *pyInterp) {
	names := make([]string, 0, len(pi.want))
	for n := range pi.want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		by := pi.want[name]
		delete(pi.want, name)
		pi.done[name] = true
		found := false
		for i, dir := range pi.path {
			if i == pi.front && pi.stdlib != "" &&
				(r.pyFind(c, pi.stdlib, name) != nil || r.pyFind(c, path.Join(pi.stdlib, "lib-dynload"), name) != nil) {
				found = true // bundled with the standard library
				break
			}
			e := r.pyFind(c, dir, name)
			if e == nil {
				continue
			}
			found = true
			why := Reason{Kind: "module", By: by, Detail: "import " + name}
			switch {
			case e.Kind == Dir:
				c.addLibraryTree(e.Path, why, func(x *Entry) bool { return x.Kind == Dir && path.Base(x.Path) == "__pycache__" })
				r.pyPackageSources(c, pi, e.Path)
			default:
				p := path.Join(dir, path.Base(e.Path))
				fe, links, err := c.follow(p)
				if err != nil {
					continue
				}
				c.addPath(p, fe, links, why)
				if strings.HasSuffix(fe.Path, ".py") {
					r.pythonFile(c, pi, fe)
				} else {
					c.loadOptional(fe)
				}
			}
			break
		}
		if !found && len(pi.path) <= pi.front && pi.stdlib != "" &&
			(r.pyFind(c, pi.stdlib, name) != nil || r.pyFind(c, path.Join(pi.stdlib, "lib-dynload"), name) != nil) {
			found = true
		}
		if !found {
			c.log.Debug("python module not found in the image: built in, or missing", "module", name, "imported_by", by)
		}
	}
}

// pyFind returns the entry of module name in dir: the package directory,
// NAME.py, or an extension module NAME.*.so / NAME.so.
func (r *pythonRule) pyFind(c *closer, dir, name string) *Entry {
	de, _, err := c.follow(dir)
	if err != nil || de.Kind != Dir {
		return nil
	}
	base := path.Join(de.Path, name)
	if e, _, err := c.follow(base); err == nil && e.Kind == Dir {
		return e
	}
	if e, _, err := c.follow(base + ".py"); err == nil && e.Kind == Regular {
		return e
	}
	for _, e := range c.idx.ReadDir(de.Path) {
		b := path.Base(e.Path)
		if strings.HasPrefix(b, name+".") && strings.HasSuffix(b, ".so") && !strings.Contains(strings.TrimSuffix(b[len(name)+1:], ".so"), "/") {
			return e
		}
	}
	return nil
}

// pyPackageSources reads every .py file below a bundled package directory
// for its imports.
func (r *pythonRule) pyPackageSources(c *closer, pi *pyInterp, dir string) {
	for _, e := range c.idx.ReadDir(dir) {
		switch {
		case e.Kind == Dir && path.Base(e.Path) != "__pycache__":
			r.pyPackageSources(c, pi, e.Path)
		case e.Kind == Regular && strings.HasSuffix(e.Path, ".py"):
			r.pythonFile(c, pi, e)
		}
	}
}
