package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/wagoodman/dive/dive/filetree"
)

// Defaults of the bytes BuildIndex keeps of closure candidates (see
// WithKeptBytes), in a temporary file.
const (
	// DefaultKeptBytes is the most file bytes an index keeps in all.
	DefaultKeptBytes = 256 << 20
	// DefaultKeptFile is the largest file an index keeps.
	DefaultKeptFile = 8 << 20
)

// Batching of the records a layer's decoder hands to the merge: a batch
// holds up to batchRecords records, and each layer has up to batchDepth
// batches waiting (32768 records of about 150 bytes and their names):
// enough for a decoder to finish a typical layer while the merge is still
// on a lower one, and a bound for layers of millions of entries.
const (
	batchRecords = 256
	batchDepth   = 128
)

// record is one tar entry of a layer as its decoder saw it: the header,
// where it is in the tar (ord, 0-based), and what reading the bytes found.
type record struct {
	hdr tarHead
	ord int
	// p is the clean path; ok is false for unsafe names.
	p  string
	ok bool
	// content is the whole file for a kept config file (keepContent).
	content []byte
	// body is where the file's bytes are kept for Extract (if kept).
	body   keptBody
	kept   bool
	elf    *ELFInfo
	script *ScriptInfo
}

// tarHead is what the merge needs of a tar header.
type tarHead struct {
	Name, Linkname string
	Typeflag       byte
	Mode, Size     int64
	sparse         bool
}

// batch is a run of records of one layer; err, on the last batch, is
// what ended the layer's decoding.
type batch struct {
	recs []record
	err  error
}

// decoder reads one layer at a time (a worker reuses it): it parses the
// tar, reads the bytes the index wants and sends records in batches.
type decoder struct {
	log  *slog.Logger
	keep *keptStore
	head [headSize]byte
	buf  []byte
	// copyBuf copies kept files to the store.
	copyBuf []byte
	spool   *os.File
	// tree, when not nil, receives dive's view of every tar entry.
	tree *layerTree
}

func (d *decoder) close() {
	if d.spool != nil {
		name := d.spool.Name()
		d.spool.Close()
		os.Remove(name)
		d.spool = nil
	}
}

// decodeLayers decodes the layers concurrently, at most GOMAXPROCS at a
// time, and returns one channel of batches per layer, in layer order; each
// channel is closed after its last batch. A decoder runs ahead of the
// merge by at most batchDepth batches, and workers start in layer order,
// so the layer being merged always has a worker. trees, when not nil, has
// one layerTree per layer to fill with dive's view of its entries. wait
// returns once every worker is done; cancel ctx first to stop them early.
func decodeLayers(ctx context.Context, img *Image, ls []v1.Layer, keep *keptStore, trees []layerTree) (outs []chan batch, wait func()) {
	outs = make([]chan batch, len(ls))
	for i := range outs {
		outs[i] = make(chan batch, batchDepth)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(ls)))
	slots := make(chan struct{}, workers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := range ls {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				for _, ch := range outs[n:] {
					close(ch)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				defer close(outs[n])
				d := &decoder{log: logger(img), keep: keep}
				if trees != nil {
					d.tree = &trees[n]
					d.tree.tree = filetree.NewFileTree()
				}
				defer d.close()
				err := d.safeLayer(ctx, img, ls[n], outs[n])
				if err != nil {
					select {
					case outs[n] <- batch{err: err}:
					case <-ctx.Done():
					}
				}
			}()
		}
	}()
	return outs, wg.Wait
}

// safeLayer is layer, with a panic (dive's filetree panics on some
// inputs) turned into an error.
func (d *decoder) safeLayer(ctx context.Context, img *Image, l v1.Layer, out chan<- batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dive filetree failed: %v", r)
		}
	}()
	return d.layer(ctx, img, l, out)
}

// layer opens and decodes one layer, sending its records to out.
func (d *decoder) layer(ctx context.Context, img *Image, l v1.Layer, out chan<- batch) error {
	rc, err := openLayer(img, l)
	if err != nil {
		return err
	}
	err = d.decode(ctx, rc, out)
	if err == nil {
		// Read the tar's trailing padding too, so that a download
		// completes and lands in the blob cache.
		_, err = io.Copy(io.Discard, rc)
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *decoder) decode(ctx context.Context, r io.Reader, out chan<- batch) error {
	tr := tar.NewReader(r)
	var recs []record
	send := func() error {
		if len(recs) == 0 {
			return nil
		}
		select {
		case out <- batch{recs: recs}:
		case <-ctx.Done():
			return ctx.Err()
		}
		recs = make([]record, 0, batchRecords)
		return nil
	}
	for ord := 0; ; ord++ {
		if ord%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return send()
		}
		if err != nil {
			if serr := send(); serr != nil {
				return serr
			}
			return err
		}
		if err := d.stat(hdr); err != nil {
			if serr := send(); serr != nil {
				return serr
			}
			return err
		}
		rec := record{ord: ord, hdr: tarHead{Name: hdr.Name, Linkname: hdr.Linkname, Typeflag: hdr.Typeflag,
			Mode: hdr.Mode, Size: hdr.Size, sparse: isSparse(hdr)}}
		rec.p, rec.ok = cleanName(hdr.Name)
		if err := d.read(&rec, tr); err != nil {
			if serr := send(); serr != nil {
				return serr
			}
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		recs = append(recs, rec)
		if len(recs) >= batchRecords {
			if err := send(); err != nil {
				return err
			}
		}
	}
}

// layerTree is dive's file tree of one layer's tar and its number of
// entries.
type layerTree struct {
	tree  *filetree.FileTree
	files int
}

// stat adds a tar entry to the layer's dive tree, as dive's image readers
// do (filetree.NewFileInfoFromTarHeader, without the content hash: dive's
// efficiency does not use it).
func (d *decoder) stat(hdr *tar.Header) error {
	if d.tree == nil {
		return nil
	}
	name := path.Clean(hdr.Name)
	if name == "." {
		return nil
	}
	fi := hdr.FileInfo()
	info := filetree.FileInfo{
		Path: name, TypeFlag: hdr.Typeflag, Linkname: hdr.Linkname,
		Size: fi.Size(), Mode: fi.Mode(), Uid: hdr.Uid, Gid: hdr.Gid, IsDir: fi.IsDir(),
	}
	d.tree.tree.FileSize += uint64(info.Size)
	if _, _, err := d.tree.tree.AddPath(info.Path, info); err != nil {
		return fmt.Errorf("adding %q to the layer's dive tree: %w", name, err)
	}
	d.tree.files++
	return nil
}

// read looks at a regular file's bytes as they stream by: it keeps small
// config files, parses ELF and "#!" files, and keeps the whole file of
// closure candidates (ELF files, scripts, wantBody paths) while the
// budget allows. I/O errors end the layer; other entries are left alone.
func (d *decoder) read(rec *record, r io.Reader) error {
	hdr := rec.hdr
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
	default:
		return nil
	}
	if !rec.ok || hdr.Size < 0 || hdr.Size > MaxFileSize || hdr.sparse || strings.HasPrefix(path.Base(rec.p), ".wh.") || rec.p == "/" {
		return nil
	}
	size := hdr.Size
	if keepContent(rec.p) && size <= MaxKeptFile {
		c := make([]byte, size)
		if _, err := io.ReadFull(r, c); err != nil {
			return err
		}
		rec.content = c
		rec.body, rec.kept = keptBody{ord: rec.ord, b: c}, true
		return nil
	}
	if size < 2 {
		if !d.keep.take(size) {
			return nil
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		rec.body, rec.kept = keptBody{ord: rec.ord, b: b}, true
		return nil
	}
	head := d.head[:min(size, headSize)]
	if _, err := io.ReadFull(r, head); err != nil {
		return err
	}
	isELF := bytes.HasPrefix(head, []byte("\x7fELF"))
	isScript := bytes.HasPrefix(head, []byte("#!"))
	var whole io.ReaderAt
	if (isELF || isScript || wantBody(rec.p)) && d.keep.take(size) {
		if d.copyBuf == nil {
			d.copyBuf = make([]byte, 64<<10)
		}
		body, ra, err := d.keep.stream(rec.ord, head, r, size, d.copyBuf)
		if err != nil {
			return err
		}
		if ra != nil {
			rec.body, rec.kept, whole = body, true, ra
		}
	}
	switch {
	case isELF:
		var info *ELFInfo
		var err error
		if whole != nil {
			info, err = ParseELF(whole, size)
		} else {
			info, err = d.parseELF(head, r, size)
		}
		var rerr *readError
		if errors.As(err, &rerr) {
			return rerr.err
		}
		if err != nil {
			d.log.Debug("not a usable ELF file", "path", rec.p, "err", err)
			return nil
		}
		rec.elf = info
	case isScript:
		if s, ok := ParseScript(head); ok {
			rec.script = s
		}
	}
	return nil
}

// grow returns the decoder's buffer resized to n bytes (its content is
// not kept).
func (d *decoder) grow(n int64) []byte {
	if int64(cap(d.buf)) < n {
		d.buf = make([]byte, n, max(n, 1<<20))
	}
	return d.buf[:n]
}

// wantBody reports whether a file at p is one the closure's rules read
// or package: configuration under /etc, time zones, and the sources of
// script interpreters (ELF files and "#!" scripts are wanted too).
func wantBody(p string) bool {
	if strings.HasPrefix(p, "/etc/") || strings.HasPrefix(p, "/usr/share/zoneinfo/") {
		return true
	}
	switch path.Ext(p) {
	case ".py", ".pth", ".pm", ".pl", ".pod", ".sh", ".tcl", ".tm", ".rb", ".lua", ".conf", ".cfg":
		return true
	}
	return false
}

// decodeInMemory is the largest ELF file a decoder reads into memory to
// parse it when it is not kept; larger ones go to a temporary file (each
// decoder running at once would hold its buffer).
const decodeInMemory = 1 << 20

// parseELF reads the rest of an ELF file whose first bytes are head into
// memory (or a temporary file when large) and parses it. I/O errors come
// back as *readError (they end the pass); other errors are parse errors of
// this one file.
func (d *decoder) parseELF(head []byte, r io.Reader, size int64) (*ELFInfo, error) {
	if size <= decodeInMemory {
		buf := d.grow(size)
		copy(buf, head)
		if _, err := io.ReadFull(r, buf[len(head):]); err != nil {
			return nil, &readError{err}
		}
		return ParseELF(bytes.NewReader(buf), size)
	}
	if d.spool == nil {
		f, err := os.CreateTemp("", "extract-elf-*")
		if err != nil {
			return nil, &readError{err}
		}
		d.spool = f
	}
	f := d.spool
	if err := f.Truncate(0); err != nil {
		return nil, &readError{err}
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		return nil, &readError{err}
	}
	if _, err := f.Seek(int64(len(head)), io.SeekStart); err != nil {
		return nil, &readError{err}
	}
	if _, err := io.CopyN(f, r, size-int64(len(head))); err != nil {
		return nil, &readError{err}
	}
	return ParseELF(f, size)
}

// readError marks I/O errors while reading a layer (as opposed to parse
// errors of one file).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
