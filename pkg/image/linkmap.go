package image

// The ld.so link-map emulation: which shared objects a dynamic ELF program
// loads and where glibc's loader finds them (see ldconfig.go for the
// directories it searches).

import (
	"path"
	"sort"
	"strings"
)

// object is one ELF file of a link map.
type object struct {
	path   string // image path as found (before symlinks)
	entry  *Entry
	loader *object // the object whose DT_NEEDED (or dlopen) loaded it
	origin string  // $ORIGIN
}

// linkMap is the set of objects one program loads, as ld.so builds it.
type linkMap struct {
	main    *object
	class   int
	machine string
	lib     string // $LIB
	byName  map[string]*object
	byPath  map[string]*object // by resolved path
	queue   []*object
	libc    *object
}

// loadProgram adds the loader and the libraries of a dynamic ELF program
// and returns its link map.
func (c *closer) loadProgram(e *Entry) *linkMap {
	info := e.ELF
	lm := &linkMap{
		class:   info.Class,
		machine: info.Machine,
		byName:  map[string]*object{},
		byPath:  map[string]*object{},
	}
	// For the main program ld.so takes $ORIGIN from /proc/self/exe, which
	// has its symlinks resolved.
	lm.main = &object{path: e.Path, entry: e, origin: path.Dir(e.Path)}
	lm.byPath[e.Path] = lm.main
	multiarch := false
	if info.Interp != "" {
		c.interps[info.Interp] = true
		le, links, err := c.follow(info.Interp)
		if err != nil || le.Kind != Regular {
			c.addMissing(info.Interp, e.Path, []string{path.Dir(info.Interp)})
		} else {
			c.addPath(info.Interp, le, links, Reason{Kind: "loader", By: e.Path, Detail: info.Interp})
			ld := &object{path: info.Interp, entry: le, origin: path.Dir(info.Interp)}
			lm.byPath[le.Path] = ld
			lm.byName[path.Base(info.Interp)] = ld
			if le.ELF != nil && le.ELF.SOName != "" {
				lm.byName[le.ELF.SOName] = ld
			}
			tr := triplet(info.Machine, info.Class)
			multiarch = tr != "" && strings.Contains(le.Path, "/"+tr+"/")
		}
	}
	lm.lib = libName(info.Machine, info.Class, multiarch)
	lm.queue = append(lm.queue, lm.main)
	c.drain(lm)
	return lm
}

// drain loads the DT_NEEDED libraries of every queued object, breadth
// first, as ld.so does.
func (c *closer) drain(lm *linkMap) {
	for len(lm.queue) > 0 {
		if c.ctx.Err() != nil {
			return
		}
		obj := lm.queue[0]
		lm.queue = lm.queue[1:]
		if obj.entry.ELF == nil {
			continue
		}
		for _, name := range obj.entry.ELF.Needed {
			c.need(lm, obj, name, Reason{Kind: "needed", By: obj.entry.Path, Detail: name})
		}
	}
}

// need loads name for obj into lm, unless already loaded; it returns the
// object, or nil when missing.
func (c *closer) need(lm *linkMap, obj *object, name string, r Reason) *object {
	if have, ok := lm.byName[name]; ok {
		c.add(have.entry, r)
		return have
	}
	found, e, links, searched := c.search(lm, obj, name)
	if e == nil {
		c.addMissing(name, obj.entry.Path, searched)
		return nil
	}
	if have, ok := lm.byPath[e.Path]; ok {
		// The same file under another name (glibc compares inodes).
		lm.byName[name] = have
		c.addPath(found, e, links, r)
		return have
	}
	c.addPath(found, e, links, r)
	o := &object{path: found, entry: e, loader: obj, origin: path.Dir(found)}
	lm.byName[name] = o
	if e.ELF.SOName != "" {
		if _, ok := lm.byName[e.ELF.SOName]; !ok {
			lm.byName[e.ELF.SOName] = o
		}
	}
	lm.byPath[e.Path] = o
	lm.queue = append(lm.queue, o)
	c.libDir(found, e)
	if name == "libc.so.6" || e.ELF.SOName == "libc.so.6" {
		lm.libc = o
	}
	c.log.Debug("library", "name", name, "path", found, "needed_by", obj.entry.Path)
	return o
}

// libDir records the directory a library was found in.
func (c *closer) libDir(found string, e *Entry) {
	dir := path.Dir(found)
	if _, ok := c.libDirs[dir]; !ok {
		c.libDirs[dir] = len(c.libDirs)
	}
	if _, ok := c.libFound[e.Path]; !ok {
		c.libFound[e.Path] = dir
	}
}

// search looks for the library name needed by obj the way ld.so's
// _dl_map_object does, returning the path found (as searched), its entry
// and the symlinks on the way, plus every directory searched.
func (c *closer) search(lm *linkMap, obj *object, name string) (string, *Entry, []*Entry, []string) {
	if strings.Contains(name, "/") {
		p, ok := expandDST(name, c.dst(lm, obj))
		if !ok {
			return "", nil, nil, []string{name}
		}
		if !path.IsAbs(p) {
			p = path.Join(workdir(c.cmd), p)
		}
		if e, links, ok := c.candidate(lm, p); ok {
			return p, e, links, nil
		}
		return "", nil, nil, []string{path.Dir(p)}
	}
	var searched []string
	seen := map[string]bool{}
	try := func(dirs []string, env dstEnv) (string, *Entry, []*Entry) {
		for _, d := range dirs {
			dir, ok := expandDST(d, env)
			if !ok || dir == "" {
				continue
			}
			if !path.IsAbs(dir) {
				dir = path.Join(workdir(c.cmd), dir)
			}
			dir = path.Clean(dir)
			if seen[dir] {
				continue
			}
			seen[dir] = true
			searched = append(searched, dir)
			p := path.Join(dir, name)
			if e, links, ok := c.candidate(lm, p); ok {
				return p, e, links
			}
		}
		return "", nil, nil
	}
	// DT_RPATH of the object and of its loaders, unless it has DT_RUNPATH;
	// objects with DT_RUNPATH contribute no DT_RPATH.
	if len(obj.entry.ELF.RunPath) == 0 {
		for l := obj; l != nil; l = l.loader {
			if l.entry.ELF == nil || len(l.entry.ELF.RunPath) > 0 {
				continue
			}
			if p, e, links := try(l.entry.ELF.RPath, c.dst(lm, l)); e != nil {
				return p, e, links, searched
			}
		}
	}
	if p, e, links := try(c.envLibPath, c.dst(lm, lm.main)); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(obj.entry.ELF.RunPath, c.dst(lm, obj)); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(c.confDirs, dstEnv{}); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(defaultDirs(lm.machine, lm.class), dstEnv{}); e != nil {
		return p, e, links, searched
	}
	return "", nil, nil, searched
}

// candidate reports whether p holds a shared object ld.so would accept
// for lm: an ELF file of the same class and machine.
func (c *closer) candidate(lm *linkMap, p string) (*Entry, []*Entry, bool) {
	e, links, err := c.follow(p)
	if err != nil || e.Kind != Regular {
		return nil, nil, false
	}
	if e.ELF == nil {
		c.log.Debug("skipping non-ELF candidate", "path", p)
		return nil, nil, false
	}
	if e.ELF.Class != lm.class || e.ELF.Machine != lm.machine {
		c.log.Debug("skipping candidate of another class or machine", "path", p,
			"class", e.ELF.Class, "machine", e.ELF.Machine, "want_class", lm.class, "want_machine", lm.machine)
		return nil, nil, false
	}
	return e, links, true
}

// dst returns the token values for obj in lm.
func (c *closer) dst(lm *linkMap, obj *object) dstEnv {
	return dstEnv{origin: obj.origin, lib: lm.lib, platform: platformName(lm.machine)}
}

func (c *closer) addMissing(name, by string, searched []string) {
	m, ok := c.missing[name]
	if !ok {
		m = &MissingLib{Soname: name}
		c.missing[name] = m
	}
	if !contains(m.NeededBy, by) {
		m.NeededBy = append(m.NeededBy, by)
		sort.Strings(m.NeededBy)
	}
	for _, d := range searched {
		if !contains(m.Searched, d) {
			m.Searched = append(m.Searched, d)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *closer) missingError() error {
	err := &MissingLibraryError{}
	for _, m := range c.missing {
		err.Missing = append(err.Missing, *m)
	}
	sort.Slice(err.Missing, func(i, j int) bool { return err.Missing[i].Soname < err.Missing[j].Soname })
	return err
}

// loadOptional resolves the libraries of a shared object an interpreter
// may load (a Python extension module, a Perl XS module). Such a module
// is only loaded when imported, so a library the image lacks does not
// fail the closure: the module is left out and a note says why.
func (c *closer) loadOptional(e *Entry) {
	if e.Kind != Regular || e.ELF == nil || e.ELF.Static() || c.optional[e.Path] {
		return
	}
	c.optional[e.Path] = true
	if c.want != "" && e.ELF.Machine != c.want {
		return
	}
	before := map[string]int{}
	for name, m := range c.missing {
		before[name] = len(m.NeededBy)
	}
	c.loadProgram(e)
	var lacking []string
	for name, m := range c.missing {
		n, ok := before[name]
		if !ok {
			lacking = append(lacking, name)
			delete(c.missing, name)
			continue
		}
		if len(m.NeededBy) > n {
			lacking = append(lacking, name)
		}
	}
	if len(lacking) > 0 {
		sort.Strings(lacking) // map order; the note must not change between runs
		delete(c.files, e.Path)
		c.note("left out %s: it needs %s, which the image lacks (importing it would fail in the image too)", e.Path, strings.Join(lacking, ", "))
	}
}
