package image

// Building the Index: the layers' records, decoded concurrently
// (decode.go), merged in layer order, then tar order, applying whiteouts,
// opaque directories, hardlinks and replacements, within the index limits.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
)

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

// logger is the image's logger (WithLogger), or one that discards.
func logger(img *Image) *slog.Logger {
	if img != nil && img.opts != nil && img.opts.logger != nil {
		return img.opts.logger
	}
	return slog.New(slog.DiscardHandler)
}

// builder merges the decoded layers into idx.
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

// entry merges the record rec of layer li into the index; names holds the
// order of the regular files' tar names seen so far in the layer.
func (b *builder) entry(li int, rec *record, names map[string]int) error {
	hdr, p := rec.hdr, rec.p
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
		var err error
		if extra, err = b.regular(&e, rec, names); err != nil {
			return err
		}
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
		if src = b.hardlink(&e, hdr); src == nil {
			return nil
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

// regular makes e the regular file of rec and counts its tar name in names:
// a name that an earlier record of the layer had too is a duplicate, whose
// last occurrence holds the bytes (Index.dups). It returns the bytes e holds
// besides its path.
func (b *builder) regular(e *Entry, rec *record, names map[string]int) (int64, error) {
	hdr, p, ord := rec.hdr, rec.p, rec.ord
	var extra int64
	e.Kind = Regular
	e.Size = hdr.Size
	e.Source = Source{Layer: e.Layer, Name: hdr.Name}
	if hdr.Name == p[1:] {
		// Most tar names are the path without its "/": share it.
		e.Source.Name = p[1:]
	} else {
		extra = int64(len(hdr.Name))
	}
	if prev, ok := names[hdr.Name]; ok && prev != ord {
		if _, ok := b.idx.dups[e.Source]; !ok {
			if err := b.charge(int64(len(hdr.Name))); err != nil {
				return 0, err
			}
		}
		b.idx.dups[e.Source] = ord
	} else if !ok {
		b.layerBytes += int64(len(hdr.Name))
		if err := b.checkBytes(); err != nil {
			return 0, err
		}
	}
	names[hdr.Name] = ord
	return extra, nil
}

// hardlink makes e a copy of the entry the hardlink hdr names (with its own
// mode, unless that is 0) and returns that entry's node, or nil when it
// names no file (logged and skipped).
func (b *builder) hardlink(e *Entry, hdr tarHead) *node {
	var src *node
	if tp, ok := cleanName(hdr.Linkname); ok {
		src = b.idx.lookupNode(tp)
	}
	if src == nil || src.Kind == Dir {
		b.log.Warn("skipping hardlink to a missing file", "layer", e.Layer, "name", hdr.Name, "target", hdr.Linkname)
		return nil
	}
	e.Kind = src.Kind
	e.Size = src.Size
	e.Target = src.Target
	e.Source = src.Source
	e.ELF = src.ELF
	e.Script = src.Script
	if e.Mode == 0 {
		e.Mode = src.Mode
	}
	return src
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
