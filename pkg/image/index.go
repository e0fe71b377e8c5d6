package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

// BuildIndex reads the layers of img bottom-up in one streaming pass and
// returns the flattened file tree, applying the OCI/overlayfs rules:
//
//   - ".wh.NAME" removes NAME from lower layers; ".wh..wh..opq" hides all
//     lower-layer content of its directory while keeping what the same
//     layer puts there, whatever the order inside the tar.
//   - A non-directory replaces whatever was at its path, a directory
//     included (with everything below it); a directory replaces a
//     non-directory; a directory over a directory merges.
//   - A path below a non-directory (a file, a symlink) replaces it with a
//     directory, as overlayfs does; symlinks in tar names are never
//     followed.
//   - Hardlinks become Regular entries whose Source is the layer and tar
//     name holding the bytes, also when the target is in a lower layer or
//     is removed later.
//   - Names are cleaned; names that escape the root with "..", contain NUL
//     or exceed PATH_MAX/NAME_MAX are skipped (logged at warn level).
//
// While streaming, regular files starting with "\x7fELF" are parsed with
// ParseELF and files starting with "#!" with ParseScript. ELF files up to
// 8 MiB are read into one reused buffer; larger ones are copied to a
// temporary file, parsed, and the file is reused for the next one and
// removed at the end. Sparse files are indexed but not parsed (their holes
// would expand to gigabytes). Memory is bounded by the number of paths
// (refused beyond MaxEntries) and by the bytes of their names, link
// targets and details (refused beyond MaxIndexBytes), plus that buffer.
//
// A tar name that occurs twice as a regular file in one layer counts with
// its last occurrence (Extract reads that one); a hardlink made to the
// first occurrence before the second one also reads the last (a known
// limitation; no image builder writes such layers).
func BuildIndex(ctx context.Context, img *Image) (*Index, error) {
	return buildIndex(ctx, img, nil)
}

// buildIndex decodes the layers concurrently (decodeLayers) and merges
// their records in layer order, then tar order, so the index is the one a
// bottom-up pass makes. With layerDone, the decoders also make dive's
// file tree of every layer (for the report), handed to layerDone in layer
// order once the layer is merged, and then dropped.
func buildIndex(ctx context.Context, img *Image, layerDone func(n int, lt layerTree) error) (*Index, error) {
	if img == nil || img.img == nil {
		return nil, errors.New("BuildIndex: image not opened with Open")
	}
	ls, err := img.img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	b := &builder{
		idx: &Index{
			root:   &node{Entry: Entry{Path: "/", Kind: Dir, Mode: 0o755}, kids: map[string]*node{}, seen: -1},
			layers: append([]Layer(nil), img.Layers...),
			dups:   map[Source]int{},
			bodies: map[Source]keptBody{},
		},
		log:      logger(img),
		maxBytes: MaxIndexBytes,
	}
	if img.maxIndexBytes > 0 {
		b.maxBytes = img.maxIndexBytes
	}
	var trees []layerTree
	if layerDone != nil {
		trees = make([]layerTree, len(ls))
	}
	dctx, cancel := context.WithCancel(ctx)
	b.idx.kept = newKeptStore(img)
	b.idx.kept.closeWith(b.idx)
	outs, wait := decodeLayers(dctx, img, ls, b.idx.kept, trees)
	err = b.merge(ctx, img, outs, func(n int) error {
		if layerDone == nil {
			return nil
		}
		lt := trees[n]
		trees[n] = layerTree{}
		return layerDone(n, lt)
	})
	cancel()
	wait()
	if err != nil {
		return nil, err
	}
	b.idx.forgetBodies()
	b.log.Debug("indexed image", "paths", b.idx.count, "layers", len(ls), "kept files", len(b.idx.bodies), "kept bytes", b.idx.kept.size())
	return b.idx, nil
}

// merge applies the layers' records in layer order, calling done after
// each layer.
func (b *builder) merge(ctx context.Context, img *Image, outs []chan batch, done func(n int) error) error {
	var progress io.Writer
	if img.opts != nil {
		progress = img.opts.progress
	}
	for n, ch := range outs {
		digest := ""
		if n < len(img.Layers) {
			digest = shortDigest(img.Layers[n].Digest)
		}
		progressf(progress, "indexing layer %d/%d %s", n+1, len(outs), digest)
		err := b.layer(ctx, n, ch)
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = done(n)
		}
		if err != nil {
			return fmt.Errorf("reading layer %d %s: %w", n, digest, err)
		}
	}
	return nil
}

// openLayer returns the uncompressed tar stream of layer l. For images
// whose layers are stored as blobs (registry, OCI layout), it reads the
// blob once and decompresses it itself, by its magic bytes: gzip with
// klauspost/compress (about twice as fast as the standard library that
// v1.Layer.Uncompressed uses), zstd with klauspost/compress/zstd, anything
// else as a plain tar. Other sources (docker-archive, daemon, whose
// Compressed would compress on the fly) go through l.Uncompressed.
func openLayer(img *Image, l v1.Layer) (io.ReadCloser, error) {
	if img == nil || !img.compressedBlobs {
		return l.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b, 0x08}):
		zr, err := kgzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &decompressReader{r: zr, close: zr.Close, rc: rc}, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &decompressReader{r: zr, close: func() error { zr.Close(); return nil }, rc: rc}, nil
	default:
		return &decompressReader{r: br, close: func() error { return nil }, rc: rc}, nil
	}
}

// decompressReader reads r and closes both the decompressor and the blob.
type decompressReader struct {
	r     io.Reader
	close func() error
	rc    io.Closer
}

func (d *decompressReader) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *decompressReader) Close() error {
	zerr := d.close()
	if err := d.rc.Close(); err != nil {
		return err
	}
	return zerr
}

func logger(img *Image) *slog.Logger {
	if img != nil && img.opts != nil && img.opts.logger != nil {
		return img.opts.logger
	}
	return slog.New(slog.DiscardHandler)
}

type builder struct {
	idx *Index
	log *slog.Logger
	// maxBytes bounds idx.bytes plus layerBytes, the bytes of the tar
	// names the current layer's pass remembers (to find duplicates).
	maxBytes   int64
	layerBytes int64
}

// charge counts n more bytes held by the index, refusing to go beyond
// maxBytes.
func (b *builder) charge(n int64) error {
	b.idx.bytes += n
	return b.checkBytes()
}

func (b *builder) checkBytes() error {
	if b.idx.bytes+b.layerBytes > b.maxBytes {
		return fmt.Errorf("%w: more than %d bytes of paths, link targets and file details", ErrLimit, b.maxBytes)
	}
	return nil
}

// drop forgets n and the nodes below it in the counts; the caller unlinks
// n from its parent.
func (b *builder) drop(n *node) {
	c, bytes := n.weight()
	b.idx.count -= c
	b.idx.bytes -= bytes
}

// layer merges the records of layer li as they arrive; a decoding error
// ends it after the records before it.
func (b *builder) layer(ctx context.Context, li int, ch <-chan batch) error {
	names := map[string]int{}
	defer func() { b.layerBytes = 0 }()
	for bt := range ch {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := range bt.recs {
			rec := &bt.recs[i]
			if err := b.entry(li, rec, names); err != nil {
				return fmt.Errorf("entry %q: %w", rec.hdr.Name, err)
			}
		}
		if bt.err != nil {
			return bt.err
		}
	}
	return nil
}

// cleanName turns a tar name into a clean absolute path, refusing names
// that escape the root, contain NUL or are too long.
func cleanName(name string) (string, bool) {
	if name == "" || len(name) > maxPath || strings.IndexByte(name, 0) >= 0 {
		return "", false
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == "." {
		return "/", true
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > maxName {
			return "", false
		}
	}
	return "/" + c, true
}

func (b *builder) entry(li int, rec *record, names map[string]int) error {
	hdr, ord, p := rec.hdr, rec.ord, rec.p
	if !rec.ok {
		b.log.Warn("skipping tar entry with unsafe name", "layer", li, "name", hdr.Name)
		return nil
	}
	if hdr.Size < 0 || hdr.Size > MaxFileSize {
		return fmt.Errorf("%w: size %d exceeds %d", ErrLimit, hdr.Size, int64(MaxFileSize))
	}
	mode := hdr.Mode & 0o7777
	if p == "/" {
		if hdr.Typeflag == tar.TypeDir {
			b.idx.root.Mode = mode
		}
		return nil
	}
	dir, base := path.Split(p)
	if strings.HasPrefix(base, ".wh.") {
		b.whiteout(li, dir, base)
		return nil
	}
	e := Entry{Path: p, Mode: mode, Layer: li}
	// extra is what e holds besides its path (which it shares with its
	// name in the parent's map).
	var extra int64
	var src *node
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		e.Kind = Regular
		e.Size = hdr.Size
		e.Source = Source{Layer: li, Name: hdr.Name}
		if hdr.Name == p[1:] {
			// Most tar names are the path without its "/": share it.
			e.Source.Name = p[1:]
		} else {
			extra = int64(len(hdr.Name))
		}
		if prev, ok := names[hdr.Name]; ok && prev != ord {
			if _, ok := b.idx.dups[e.Source]; !ok {
				if err := b.charge(int64(len(hdr.Name))); err != nil {
					return err
				}
			}
			b.idx.dups[e.Source] = ord
		} else if !ok {
			b.layerBytes += int64(len(hdr.Name))
			if err := b.checkBytes(); err != nil {
				return err
			}
		}
		names[hdr.Name] = ord
	case tar.TypeDir:
		e.Kind = Dir
	case tar.TypeSymlink:
		if hdr.Linkname == "" || len(hdr.Linkname) > maxPath || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			b.log.Warn("skipping symlink with unusable target", "layer", li, "name", hdr.Name)
			return nil
		}
		e.Kind = Symlink
		e.Target = hdr.Linkname
		extra = int64(len(hdr.Linkname))
	case tar.TypeLink:
		tp, ok := cleanName(hdr.Linkname)
		if ok {
			src = b.idx.lookupNode(tp)
		}
		if src == nil || src.Kind == Dir {
			b.log.Warn("skipping hardlink to a missing file", "layer", li, "name", hdr.Name, "target", hdr.Linkname)
			return nil
		}
		e.Kind = src.Kind
		e.Size = src.Size
		e.Target = src.Target
		e.Source = src.Source
		e.ELF = src.ELF
		e.Script = src.Script
		if mode == 0 {
			e.Mode = src.Mode
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Kind = Other
	default:
		b.log.Debug("skipping tar entry of unsupported type", "layer", li, "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	n, err := b.put(li, dir, base, e, extra)
	if err != nil {
		return err
	}
	switch {
	case src != nil:
		if keepContent(p) && src.content != nil {
			n.content = src.content
		}
	case e.Kind == Regular && hdr.sparse:
		// A sparse file's size is mostly holes that tar expands to zeros:
		// a tiny layer could make us read gigabytes. Not parsed.
		b.log.Debug("not inspecting sparse file", "path", p, "size", hdr.Size)
	case e.Kind == Regular:
		return b.inspect(n, rec)
	}
	return nil
}

// isSparse reports whether hdr is a GNU or PAX sparse file.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// whiteout applies a ".wh." entry of layer li in directory dir.
func (b *builder) whiteout(li int, dir, base string) {
	if base == ".wh..wh..opq" {
		parent, err := b.parents(li, dir)
		if err == nil {
			b.prune(parent, li)
		}
		return
	}
	if strings.HasPrefix(base, ".wh..wh.") {
		return // aufs metadata (.wh..wh.plnk, ...)
	}
	name := base[len(".wh."):]
	if name == "" || name == "." || name == ".." {
		return
	}
	parent := b.idx.lookupNode(strings.TrimSuffix(dir, "/"))
	if parent == nil || parent.Kind != Dir {
		return
	}
	parent.seen = max(parent.seen, li)
	child := parent.kids[name]
	if child == nil {
		return
	}
	if child.seen < li {
		b.drop(child)
		delete(parent.kids, name)
		return
	}
	// The same layer also has the path: the whiteout applies to the lower
	// layers' content only.
	b.prune(child, li)
}

// prune removes everything below n that layer li did not name.
func (b *builder) prune(n *node, li int) {
	for name, k := range n.kids {
		if k.seen < li {
			b.drop(k)
			delete(n.kids, name)
			continue
		}
		b.prune(k, li)
	}
}

// weight returns the number of nodes at and below n and the sum of their
// costs.
func (n *node) weight() (int, int64) {
	count, bytes := 1, n.cost
	for _, k := range n.kids {
		c, b := k.weight()
		count += c
		bytes += b
	}
	return count, bytes
}

// parents returns the directory node for dir ("/a/b/"), creating missing
// directories and replacing non-directories on the way, and marks each as
// seen in layer li.
func (b *builder) parents(li int, dir string) (*node, error) {
	cur := b.idx.root
	for part := range strings.SplitSeq(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		k := cur.kids[part]
		if k == nil || k.Kind != Dir {
			if k != nil {
				b.drop(k)
			}
			if b.idx.count >= MaxEntries {
				return nil, fmt.Errorf("%w: more than %d paths", ErrLimit, MaxEntries)
			}
			p := path.Join(cur.Path, part)
			k = &node{Entry: Entry{Path: p, Kind: Dir, Mode: 0o755, Layer: li}, kids: map[string]*node{}, cost: int64(len(p))}
			// The key shares the path's bytes, not those of the tar
			// name part was cut from.
			cur.kids[p[len(p)-len(part):]] = k
			b.idx.count++
			if err := b.charge(k.cost); err != nil {
				return nil, err
			}
		}
		k.seen = li
		cur = k
	}
	cur.seen = max(cur.seen, li)
	return cur, nil
}

// put places e at dir+base for layer li and returns its node; extra is
// the bytes e holds besides its path (base is a part of it).
func (b *builder) put(li int, dir, base string, e Entry, extra int64) (*node, error) {
	parent, err := b.parents(li, dir)
	if err != nil {
		return nil, err
	}
	old := parent.kids[base]
	if e.Kind == Dir && old != nil && old.Kind == Dir {
		old.Mode, old.Layer, old.seen = e.Mode, li, li
		return old, nil
	}
	if old != nil {
		b.drop(old)
	}
	if b.idx.count >= MaxEntries {
		return nil, fmt.Errorf("%w: more than %d paths", ErrLimit, MaxEntries)
	}
	n := &node{Entry: e, seen: li, cost: int64(len(e.Path)) + extra}
	if e.Kind == Dir {
		n.kids = map[string]*node{}
	}
	parent.kids[base] = n
	b.idx.count++
	return n, b.charge(n.cost)
}

// inspect records what the decoder found in a regular file's bytes: the
// content of a small config file, ELF and "#!" details, and the whole
// file when the decoder kept it.
func (b *builder) inspect(n *node, rec *record) error {
	if rec.kept {
		b.idx.bodies[n.Source] = rec.body
	} else {
		delete(b.idx.bodies, n.Source)
	}
	switch {
	case rec.content != nil:
		size := int64(len(rec.content))
		if err := b.charge(size); err != nil {
			return err
		}
		n.content = rec.content
		n.cost += size
	case rec.elf != nil:
		n.ELF = rec.elf
		n.cost += elfCost(rec.elf)
		return b.charge(elfCost(rec.elf))
	case rec.script != nil:
		n.Script = rec.script
		c := int64(len(rec.script.Interpreter) + len(rec.script.Arg))
		n.cost += c
		return b.charge(c)
	}
	return nil
}

// elfCost is the bytes of strings info holds, each list element counted
// with its string header.
func elfCost(info *ELFInfo) int64 {
	c := len(info.Machine) + len(info.Type) + len(info.Interp) + len(info.SOName)
	for _, l := range [][]string{info.Needed, info.RPath, info.RunPath} {
		for _, s := range l {
			c += len(s) + 16
		}
	}
	return int64(c)
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
