package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// keptStore holds the bytes of the closure candidates the index pass
// keeps (see WithKeptBytes): files up to keptSmall bytes in memory while
// keptInMemory allows, the others in a temporary file, removed from its
// directory as soon as it is made: their bytes stay out of the heap (and
// out of the process's RSS) and disappear with the last descriptor. The
// decoders write to it concurrently, each at offsets it reserved.
type keptStore struct {
	left    atomic.Int64
	memLeft atomic.Int64
	end     atomic.Int64
	perFile int64

	mu  sync.Mutex
	f   *os.File
	err error
}

// The bytes of small kept files held in memory: files of at most
// keptSmall bytes, keptInMemory in all (small images never make the
// temporary file).
const (
	keptSmall    = 16 << 10
	keptInMemory = 4 << 20
)

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
	k := &keptStore{perFile: perFile}
	k.left.Store(total)
	k.memLeft.Store(keptInMemory)
	return k
}

// closeWith closes the store's file once idx is unreachable.
func (k *keptStore) closeWith(idx *Index) {
	if k != nil {
		runtime.AddCleanup(idx, (*keptStore).close, k)
	}
}

func (k *keptStore) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f != nil {
		k.f.Close()
		k.f = nil
	}
	k.err = os.ErrClosed
}

// file returns the temporary file, making it the first time.
func (k *keptStore) file() (*os.File, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f == nil && k.err == nil {
		k.f, k.err = os.CreateTemp("", "extract-kept-*")
		if k.err == nil {
			os.Remove(k.f.Name())
		}
	}
	return k.f, k.err
}

// size is the bytes kept so far (those of replaced files included).
func (k *keptStore) size() int64 {
	if k == nil {
		return 0
	}
	return k.end.Load() + keptInMemory - k.memLeft.Load()
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

// stream keeps a file of n bytes (reserved with take) whose first bytes
// are head and whose rest comes from r, as the body of tar entry ord: in
// memory when small, else copied to the temporary file through buf. It
// returns the body and the file's bytes to parse; a nil ReaderAt (when
// the temporary file cannot be made) means nothing was kept and r was
// not read. Errors reading r or writing the file end the layer.
func (k *keptStore) stream(ord int, head []byte, r io.Reader, n int64, buf []byte) (keptBody, io.ReaderAt, error) {
	if n <= keptSmall {
		if k.memLeft.Add(-n) >= 0 {
			b := make([]byte, n)
			copy(b, head)
			if _, err := io.ReadFull(r, b[len(head):]); err != nil {
				return keptBody{}, nil, err
			}
			return keptBody{ord: ord, b: b}, bytes.NewReader(b), nil
		}
		k.memLeft.Add(n)
	}
	f, err := k.file()
	if err != nil {
		return keptBody{}, nil, nil
	}
	off := k.end.Add(n) - n
	w := io.NewOffsetWriter(f, off)
	if _, err := w.Write(head); err != nil {
		return keptBody{}, nil, fmt.Errorf("keeping file bytes: %w", err)
	}
	rest := n - int64(len(head))
	c, err := io.CopyBuffer(w, io.LimitReader(r, rest), buf)
	if err == nil && c < rest {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return keptBody{}, nil, err
	}
	return keptBody{ord: ord, off: off, n: n}, io.NewSectionReader(f, off, n), nil
}

// reader returns the bytes of kb.
func (k *keptStore) reader(kb keptBody) io.Reader {
	if kb.b != nil || k == nil {
		return bytes.NewReader(kb.b)
	}
	k.mu.Lock()
	f := k.f
	k.mu.Unlock()
	return io.NewSectionReader(f, kb.off, kb.n)
}
