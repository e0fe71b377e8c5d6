package image

// The path walk of the closure: resolving image paths through their
// symlinks (which the closure keeps) and adding files and directory trees.

import (
	"fmt"
)

// add records reason for the image path p (entry e).
func (c *closer) add(e *Entry, r Reason) {
	f, ok := c.files[e.Path]
	if !ok {
		f = &File{Entry: *e}
		c.files[e.Path] = f
	}
	for _, have := range f.Why {
		if have == r {
			return
		}
	}
	f.Why = append(f.Why, r)
}

// follow resolves p inside the image like the kernel's path walk
// (Index.Resolve) and returns the final entry and every symlink met,
// directory symlinks included, in order. The root directory itself is an
// error: no rule adds it.
func (c *closer) follow(p string) (*Entry, []*Entry, error) {
	var links []*Entry
	rp, e, err := c.idx.walk(p, true, func(l *Entry) { links = append(links, l) })
	if err != nil {
		return nil, links, err
	}
	if rp == "/" {
		return nil, links, fmt.Errorf("%q is the root directory", p)
	}
	return e, links, nil
}

// addPath adds the file at p (after symlinks) with reason r, and each
// symlink on the way with reason "symlink".
func (c *closer) addPath(p string, e *Entry, links []*Entry, r Reason) {
	for _, l := range links {
		c.add(l, Reason{Kind: "symlink", By: e.Path, Detail: p})
	}
	c.add(e, r)
}

// addLibraryTree adds every regular file and symlink below dir with
// reason r (a symlink's target too, wherever it is), skipping directories
// for which skip reports true; ELF shared objects get their libraries
// resolved (optional: see loadOptional).
func (c *closer) addLibraryTree(dir string, r Reason, skip func(*Entry) bool) {
	de, links, err := c.follow(dir)
	if err != nil || de.Kind != Dir {
		return
	}
	for _, l := range links {
		c.add(l, Reason{Kind: "symlink", By: de.Path, Detail: dir})
	}
	c.walkTree(de.Path, r, skip)
}

func (c *closer) walkTree(dir string, r Reason, skip func(*Entry) bool) {
	for _, e := range c.idx.ReadDir(dir) {
		if skip != nil && skip(e) {
			continue
		}
		switch e.Kind {
		case Dir:
			c.walkTree(e.Path, r, skip)
		case Symlink:
			c.add(e, r)
			if te, tl, err := c.follow(e.Path); err == nil && te.Kind == Regular {
				c.addPath(e.Path, te, tl, r)
				c.loadOptional(te)
			}
		case Regular:
			c.add(e, r)
			c.loadOptional(e)
		}
	}
}

// addTree adds every regular file and symlink below dir (through the
// index) with reason r, calling fn for each.
func (c *closer) addTree(dir string, r Reason, fn func(*Entry)) {
	for _, e := range c.idx.ReadDir(dir) {
		switch e.Kind {
		case Dir:
			c.addTree(e.Path, r, fn)
		case Regular, Symlink:
			c.add(e, r)
			fn(e)
		}
	}
}
