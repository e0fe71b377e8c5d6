package image

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
)

// keptStore holds the bytes of the closure candidates the index pass
// keeps (see WithKeptBytes) in a temporary file, removed from its
// directory as soon as it is made: the bytes stay out of the heap (and
// out of the process's RSS) and disappear with the last descriptor. The
// decoders write to it concurrently, each at offsets it reserved.
type keptStore struct {
	f       *os.File
	left    atomic.Int64
	end     atomic.Int64
	perFile int64
}

// keptBody is where a kept file's bytes are, and its tar entry's ordinal
// in its layer: in memory (b, for config files and files of 0 or 1 byte)
// or in the store's file (off, n).
type keptBody struct {
	ord    int
	b      []byte
	off, n int64
}

// newKeptStore makes the store img's options ask for; nil (keeping
// nothing) when they ask for none or the temporary file cannot be made.
func newKeptStore(img *Image) *keptStore {
	total, perFile := int64(DefaultKeptBytes), int64(DefaultKeptFile)
	if img.opts != nil && img.opts.kept != nil {
		total, perFile = img.opts.kept[0], img.opts.kept[1]
	}
	if total <= 0 || perFile <= 0 {
		return nil
	}
	f, err := os.CreateTemp("", "extract-kept-*")
	if err != nil {
		logger(img).Debug("not keeping file bytes", "err", err)
		return nil
	}
	os.Remove(f.Name())
	k := &keptStore{f: f, perFile: perFile}
	k.left.Store(total)
	return k
}

// closeWith closes the store's file once idx is unreachable.
func (k *keptStore) closeWith(idx *Index) {
	if k != nil {
		runtime.AddCleanup(idx, func(f *os.File) { f.Close() }, k.f)
	}
}

// take reserves n bytes of the budget, reporting whether they fit.
func (k *keptStore) take(n int64) bool {
	if k == nil || n > k.perFile {
		return false
	}
	if k.left.Add(-n) < 0 {
		k.left.Add(n)
		return false
	}
	return true
}

// put writes b (reserved with take) to the file and returns its offset;
// a failed write (a full disk) keeps nothing.
func (k *keptStore) put(b []byte, log *slog.Logger) (int64, bool) {
	n := int64(len(b))
	off := k.end.Add(n) - n
	if _, err := k.f.WriteAt(b, off); err != nil {
		log.Debug("not keeping file bytes", "err", err)
		return 0, false
	}
	return off, true
}

// reader returns the bytes of kb.
func (k *keptStore) reader(kb keptBody) io.Reader {
	if kb.b != nil || k == nil {
		return bytes.NewReader(kb.b)
	}
	return io.NewSectionReader(k.f, kb.off, kb.n)
}
