package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Extract is the second pass over an indexed image: it streams the content
// of the requested files to fn, reading only the layers that hold them (the
// layers in the files' Source) and stopping as soon as every file was seen.
// Files whose bytes BuildIndex kept (see WithKeptBytes) come from memory; a
// layer all of whose requested files were kept is not read at all.
//
// Entries that are not Regular (directories, symlinks, devices) carry no
// bytes: fn is called for them first, sorted by path, with a nil reader.
// Regular files follow in layer order, then tar order within a layer; r
// is valid only during the call and yields exactly e.Size bytes unless the
// layer is corrupt. Hardlinked entries sharing one Source each get their
// own call (the bytes are buffered in memory up to 8 MiB, beyond that in a
// temporary file). An entry given twice is called twice. A Source missing
// from its layer is an error naming it; an error from fn ends the pass and
// is returned as is.
func Extract(ctx context.Context, img *Image, idx *Index, files []*Entry, fn func(e *Entry, r io.Reader) error) error {
	if img == nil || img.img == nil || idx == nil {
		return errors.New("extract: image not opened with Open or no index")
	}
	var others []*Entry
	want := map[Source][]*Entry{}
	perLayer := map[int]int{}
	kept := map[int][]keptFile{}
	for _, e := range files {
		if e == nil {
			return errors.New("extract: nil entry")
		}
		if e.Kind != Regular {
			others = append(others, e)
			continue
		}
		if e.Source.Name == "" {
			return fmt.Errorf("extract %s: entry has no source", e.Path)
		}
		if _, ok := want[e.Source]; !ok {
			if kb, ok := idx.bodies[e.Source]; ok {
				kept[e.Source.Layer] = append(kept[e.Source.Layer], keptFile{e.Source, kb})
			} else {
				perLayer[e.Source.Layer]++
			}
		}
		want[e.Source] = append(want[e.Source], e)
	}
	sort.SliceStable(others, func(i, j int) bool { return others[i].Path < others[j].Path })
	for _, e := range others {
		if err := fn(e, nil); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	ls, err := img.img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	var layers []int
	for src := range want {
		if src.Layer < 0 || src.Layer >= len(ls) {
			return fmt.Errorf("extract: layer %d out of range (image has %d)", src.Layer, len(ls))
		}
	}
	for li := range perLayer {
		layers = append(layers, li)
	}
	for li, ks := range kept {
		if _, ok := perLayer[li]; !ok {
			layers = append(layers, li)
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i].body.ord < ks[j].body.ord })
	}
	sort.Ints(layers)
	logger(img).Debug("extract", "files", len(want), "layers to read", len(perLayer), "layers served from kept bytes only", len(layers)-len(perLayer))
	x := &extractor{fn: fn, idx: idx}
	defer x.close()
	for _, li := range layers {
		x.kept = kept[li]
		if perLayer[li] == 0 {
			// Every wanted file of the layer was kept by the index.
			if err := x.keptBefore(want, -1); err != nil {
				return err
			}
			continue
		}
		open := func() (io.ReadCloser, error) { return openLayer(img, ls[li]) }
		if err := x.layer(ctx, idx, li, open, want, perLayer[li]); err != nil {
			return err
		}
	}
	return nil
}

// keptFile is a wanted tar entry whose bytes the index kept.
type keptFile struct {
	src  Source
	body keptBody
}

type extractor struct {
	fn  func(*Entry, io.Reader) error
	idx *Index
	// kept are the current layer's wanted files the index kept, by
	// ordinal, not yet delivered.
	kept  []keptFile
	buf   bytes.Buffer
	spool *os.File
}

func (x *extractor) close() {
	if x.spool != nil {
		name := x.spool.Name()
		x.spool.Close()
		os.Remove(name)
	}
}

func (x *extractor) layer(ctx context.Context, idx *Index, li int, open func() (io.ReadCloser, error), want map[Source][]*Entry, count int) (err error) {
	rc, err := open()
	if err != nil {
		return fmt.Errorf("reading layer %d: %w", li, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	done := map[string]bool{}
	for ord := 0; len(done) < count; ord++ {
		if ord%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer %d: %w", li, err)
		}
		src := Source{Layer: li, Name: hdr.Name}
		es, ok := want[src]
		if !ok || done[hdr.Name] {
			continue
		}
		if _, ok := idx.bodies[src]; ok {
			continue
		}
		if last, dup := idx.dups[src]; dup && last != ord {
			continue
		}
		if err := x.keptBefore(want, ord); err != nil {
			return err
		}
		done[hdr.Name] = true
		if err := x.deliver(es, tr, hdr.Size); err != nil {
			return err
		}
	}
	if len(done) < count {
		var missing []string
		for src := range want {
			if src.Layer == li && !done[src.Name] {
				missing = append(missing, src.Name)
			}
		}
		sort.Strings(missing)
		return fmt.Errorf("layer %d has no entries %s", li, strings.Join(quoteAll(missing), ", "))
	}
	return x.keptBefore(want, -1)
}

// keptBefore delivers the kept files of the current layer that come
// before tar entry ord (all of them for -1), so that the layer's files
// reach fn in tar order wherever their bytes come from.
func (x *extractor) keptBefore(want map[Source][]*Entry, ord int) error {
	for len(x.kept) > 0 && (ord < 0 || x.kept[0].body.ord < ord) {
		k := x.kept[0]
		x.kept = x.kept[1:]
		for _, e := range want[k.src] {
			if err := x.fn(e, x.idx.kept.reader(k.body)); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliver calls fn for each entry sharing one tar entry's bytes.
func (x *extractor) deliver(es []*Entry, r io.Reader, size int64) error {
	if len(es) == 1 {
		return x.fn(es[0], io.LimitReader(r, size))
	}
	var reopen func() io.Reader
	if size <= elfInMemory {
		x.buf.Reset()
		if _, err := io.CopyN(&x.buf, r, size); err != nil {
			return fmt.Errorf("reading %s: %w", es[0].Source.Name, err)
		}
		reopen = func() io.Reader { return bytes.NewReader(x.buf.Bytes()) }
	} else {
		if x.spool == nil {
			f, err := os.CreateTemp("", "extract-file-*")
			if err != nil {
				return err
			}
			x.spool = f
		}
		f := x.spool
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(f, r, size); err != nil {
			return fmt.Errorf("reading %s: %w", es[0].Source.Name, err)
		}
		reopen = func() io.Reader { return io.NewSectionReader(f, 0, size) }
	}
	for _, e := range es {
		if err := x.fn(e, reopen()); err != nil {
			return err
		}
	}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
