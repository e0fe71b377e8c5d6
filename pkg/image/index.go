package image

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Limits of the index. Images beyond them are refused with an error
// wrapping ErrLimit rather than exhausting memory or disk.
const (
	// MaxEntries is the most paths an index holds (all layers together).
	MaxEntries = 1 << 20
	// MaxIndexBytes is the most bytes of paths, tar names, symlink targets
	// and file details (kept config files, parsed ELF and "#!" strings) an
	// index holds (all layers together); MaxEntries alone would let a
	// million 4 KiB paths take gigabytes. Real images hold a few MiB to a
	// few tens of MiB.
	MaxIndexBytes = 256 << 20
	// MaxFileSize is the largest file size a tar header may declare.
	MaxFileSize = 8 << 30
	// MaxKeptFile is the largest config file kept in the index
	// (Index.Content).
	MaxKeptFile = 64 << 10

	// elfInMemory is the largest ELF file read into memory for parsing;
	// larger ones are spooled to a temporary file.
	elfInMemory = 8 << 20
	// headSize is how much of every regular file is looked at to tell ELF
	// and "#!" files apart; it covers the kernel's 256-byte "#!" line.
	headSize = 512
	// maxPath and maxName bound tar names (PATH_MAX, NAME_MAX).
	maxPath = 4096
	maxName = 255
	// maxSymlinkHops is Linux's limit on symlinks followed in one lookup.
	maxSymlinkHops = 40
)

// ErrLimit is wrapped by BuildIndex errors for images beyond the index
// limits (MaxEntries, MaxIndexBytes, MaxFileSize).
var ErrLimit = errors.New("image exceeds index limits")

// ErrSymlinkLoop is wrapped by Resolve errors when more than 40 symlinks
// are met in one lookup (ELOOP).
var ErrSymlinkLoop = errors.New("too many levels of symbolic links")

// keptFiles are the config files whose content BuildIndex keeps (up to
// MaxKeptFile bytes each), besides the entries of keptDirs.
var keptFiles = map[string]bool{
	"/etc/ld.so.conf":     true,
	"/etc/nsswitch.conf":  true,
	"/etc/passwd":         true,
	"/etc/group":          true,
	"/etc/os-release":     true,
	"/usr/lib/os-release": true,
}

// keptDirs are directories whose direct children BuildIndex keeps.
var keptDirs = map[string]bool{
	"/etc/ld.so.conf.d": true,
}

func keepContent(p string) bool {
	return keptFiles[p] || keptDirs[path.Dir(p)]
}

// Index is the flattened file tree of an image: every path of the final
// filesystem with where its bytes are, ELF and "#!" details, and the
// content of a few small config files. File bodies are not kept. An Index
// is safe for concurrent reads; Entries it returns must not be modified.
type Index struct {
	root   *node
	layers []Layer
	count  int
	// bytes is what the nodes' costs and the dups keys add up to,
	// bounded by MaxIndexBytes.
	bytes int64
	// dups records, for tar names that occur more than once as regular
	// files in one layer, the ordinal (0-based header number) of the last
	// occurrence, which is the one that counts.
	dups map[Source]int
	// bodies are the files whose bytes the index pass kept (see
	// WithKeptBytes), by the tar entry that holds them; Extract serves
	// them from memory.
	bodies map[Source]keptBody
	kept   *keptStore
}

// forgetBodies drops the kept bytes of tar entries no path uses any more
// (overwritten or removed by a later layer).
func (x *Index) forgetBodies() {
	if len(x.bodies) == 0 {
		return
	}
	used := make(map[Source]bool, len(x.bodies))
	var walk func(n *node)
	walk = func(n *node) {
		for _, k := range n.kids {
			if k.Kind == Regular {
				if _, ok := x.bodies[k.Source]; ok {
					used[k.Source] = true
				}
			}
			walk(k)
		}
	}
	walk(x.root)
	for src := range x.bodies {
		if !used[src] {
			delete(x.bodies, src)
		}
	}
}

type node struct {
	Entry
	kids    map[string]*node
	content []byte
	// seen is the last layer whose tar named this path or a path below it.
	seen int
	// cost is the bytes of strings and content this node holds of its own
	// (not shared with another node), counted against MaxIndexBytes.
	cost int64
}

// lookupNode returns the node at the clean absolute path p, following no
// symlinks.
func (x *Index) lookupNode(p string) *node {
	cur := x.root
	for part := range strings.SplitSeq(p, "/") {
		if part == "" {
			continue
		}
		if cur.kids == nil {
			return nil
		}
		cur = cur.kids[part]
		if cur == nil {
			return nil
		}
	}
	return cur
}

// Lookup returns the entry at p, following no symlink (lstat). p is
// cleaned and taken relative to the image root.
func (x *Index) Lookup(p string) (*Entry, bool) {
	n := x.lookupNode(path.Clean("/" + p))
	if n == nil {
		return nil, false
	}
	return &n.Entry, true
}

// Resolve follows symlinks in every component of p and in the final one,
// the way the kernel does inside a chroot at the image root: absolute
// targets start again at the root, ".." at the root stays at the root, and
// nothing ever leaves the image. It returns the resolved path and its
// entry. A missing path yields an error wrapping fs.ErrNotExist (with the
// path resolved as far as it goes); more than 40 symlinks yield an error
// wrapping ErrSymlinkLoop.
func (x *Index) Resolve(p string) (string, *Entry, error) {
	return x.resolve(p, true)
}

// ResolveParent is Resolve without following a final symlink (like
// lstat on a path whose directories are resolved): it returns the path of
// the last component in its real directory and its entry. A trailing "/"
// makes the final component a directory, so a final symlink is followed.
func (x *Index) ResolveParent(p string) (string, *Entry, error) {
	return x.resolve(p, false)
}

func (x *Index) resolve(p string, followLast bool) (string, *Entry, error) {
	return x.walk(p, followLast, nil)
}

// walk is resolve that also calls onLink (when not nil) with each symlink
// it follows, in order: the closure keeps the symlinks on the way to a
// file.
func (x *Index) walk(p string, followLast bool, onLink func(*Entry)) (string, *Entry, error) {
	if strings.HasSuffix(p, "/") {
		// "link/" names the directory the link leads to, as in Linux.
		followLast = true
	}
	stack := []*node{x.root}
	parts := strings.Split(p, "/")
	hops := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		cur := stack[len(stack)-1]
		switch part {
		case "", ".":
			continue
		case "..":
			if cur.Kind != Dir {
				return path.Join(cur.Path, ".."), nil, fmt.Errorf("resolving %q: %s is not a directory: %w", p, cur.Path, fs.ErrNotExist)
			}
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if cur.Kind != Dir {
			return path.Join(cur.Path, part, strings.Join(parts, "/")), nil, fmt.Errorf("resolving %q: %s is not a directory: %w", p, cur.Path, fs.ErrNotExist)
		}
		k := cur.kids[part]
		if k == nil {
			return path.Join(cur.Path, part, strings.Join(parts, "/")), nil, fmt.Errorf("resolving %q: %s: %w", p, path.Join(cur.Path, part), fs.ErrNotExist)
		}
		if k.Kind == Symlink && (followLast || hasMore(parts)) {
			hops++
			if hops > maxSymlinkHops {
				return k.Path, nil, fmt.Errorf("resolving %q: %w", p, ErrSymlinkLoop)
			}
			if onLink != nil {
				onLink(&k.Entry)
			}
			if strings.HasPrefix(k.Target, "/") {
				stack = stack[:1]
			}
			parts = append(strings.Split(k.Target, "/"), parts...)
			continue
		}
		stack = append(stack, k)
	}
	n := stack[len(stack)-1]
	return n.Path, &n.Entry, nil
}

// hasMore reports whether parts has a component that names something
// (not only "" and ".").
func hasMore(parts []string) bool {
	for _, p := range parts {
		if p != "" && p != "." {
			return true
		}
	}
	return false
}

// ReadDir returns the entries of directory dir (symlinks to it followed),
// sorted by name; nil if dir is not a directory.
func (x *Index) ReadDir(dir string) []*Entry {
	_, e, err := x.Resolve(dir)
	if err != nil || e.Kind != Dir {
		return nil
	}
	n := x.lookupNode(e.Path)
	out := make([]*Entry, 0, len(n.kids))
	for _, k := range n.kids {
		out = append(out, &k.Entry)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Glob returns the paths matching pattern, each component matched with
// path.Match, sorted. Directories on the way are reached through symlinks;
// the returned paths keep the pattern's spelling (like filepath.Glob).
// A malformed pattern matches nothing.
func (x *Index) Glob(pattern string) []string {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil
	}
	var parts []string
	for part := range strings.SplitSeq(path.Clean("/"+pattern), "/") {
		if part != "" {
			parts = append(parts, part)
		}
	}
	var out []string
	x.glob("/", parts, &out)
	sort.Strings(out)
	return out
}

func (x *Index) glob(dir string, parts []string, out *[]string) {
	if len(parts) == 0 {
		*out = append(*out, dir)
		return
	}
	_, e, err := x.Resolve(dir)
	if err != nil || e.Kind != Dir {
		return
	}
	n := x.lookupNode(e.Path)
	part := parts[0]
	if !strings.ContainsAny(part, `*?[\`) {
		if _, ok := n.kids[part]; ok {
			x.glob(path.Join(dir, part), parts[1:], out)
		}
		return
	}
	for name := range n.kids {
		if ok, _ := path.Match(part, name); ok {
			x.glob(path.Join(dir, name), parts[1:], out)
		}
	}
}

// Content returns the content of a kept config file (see BuildIndex),
// following symlinks.
func (x *Index) Content(p string) ([]byte, bool) {
	rp, _, err := x.Resolve(p)
	if err != nil {
		return nil, false
	}
	n := x.lookupNode(rp)
	if n == nil || n.content == nil {
		return nil, false
	}
	return n.content, true
}

// Layers returns the image's layers, bottom first.
func (x *Index) Layers() []Layer { return append([]Layer(nil), x.layers...) }

// Len returns the number of paths in the image, the root excluded.
func (x *Index) Len() int { return x.count }

// Walk calls fn for every entry, the root excluded, sorted by path; it
// stops at and returns the first error fn returns.
func (x *Index) Walk(fn func(*Entry) error) error {
	all := make([]*Entry, 0, x.count)
	var collect func(n *node)
	collect = func(n *node) {
		for _, k := range n.kids {
			all = append(all, &k.Entry)
			collect(k)
		}
	}
	collect(x.root)
	sort.Slice(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	for _, e := range all {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
