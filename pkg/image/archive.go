package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// An archive source (docker-archive, oci-archive) is read in place: Open
// reads the tar headers of the archive once to learn where each member's
// bytes lie, reads the small JSON members it needs (manifests, configs),
// and closes the file. A layer is then read by offset from the archive
// (an io.SectionReader over a descriptor opened for that read and closed
// with it): never copied to a temporary file or the blob cache, never
// hashed again, and no descriptor is held between reads.

// Limits on what an archive may declare, so that a hostile archive fails
// with a clear error instead of exhausting memory.
const (
	// maxArchiveMembers bounds the members of an archive's member index.
	maxArchiveMembers = 1 << 20
	// maxArchiveNameBytes bounds the bytes of their names and link
	// targets.
	maxArchiveNameBytes = 64 << 20
	// maxArchiveJSON bounds a JSON member read into memory (manifest.json,
	// index.json, manifests, configs).
	maxArchiveJSON = 64 << 20
	// maxArchiveLinks bounds the links followed to resolve one name.
	maxArchiveLinks = 16
)

// member is where one tar member's bytes lie in the archive.
type member struct {
	typ  byte  // tar.TypeReg, tar.TypeSymlink or tar.TypeLink
	off  int64 // offset of the first byte of its data (regular files)
	size int64
	link string // cleaned target of a link, relative to the archive root
}

// archiveName cleans a member name or a name looked up: no leading "/" or
// "./", no "..", so that "a/../b", "./b" and "/b" are all "b".
func archiveName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// indexArchive reads the tar headers of r (size bytes) and returns where
// each member lies, by cleaned name. Data is skipped with Seek, not read.
// Only regular files and links are kept (directories and other types are
// skipped); a later member of the same name replaces an earlier one, as
// when the archive is unpacked. Sparse members, members reaching past the
// end of the archive, and archives beyond the limits above are refused.
func indexArchive(r io.ReaderAt, size int64) (map[string]member, error) {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	members := map[string]member{}
	var nameBytes int
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if len(members) == 0 {
				return nil, errors.New("not a tar archive, or an empty one")
			}
			return members, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive's headers: %w", err)
		}
		var m member
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse:
			if hdr.Typeflag == tar.TypeGNUSparse || sparsePAX(hdr) {
				return nil, fmt.Errorf("archive member %q is a sparse file (not supported in an image archive)", hdr.Name)
			}
			off, err := sr.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if hdr.Size < 0 || hdr.Size > size-off {
				return nil, fmt.Errorf("archive member %q declares %d bytes at offset %d, past the end of the archive (%d bytes)", hdr.Name, hdr.Size, off, size)
			}
			m = member{typ: tar.TypeReg, off: off, size: hdr.Size}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(archiveName(hdr.Name)), target)
			}
			m = member{typ: tar.TypeSymlink, link: archiveName(target)}
		case tar.TypeLink:
			m = member{typ: tar.TypeLink, link: archiveName(hdr.Linkname)}
		default:
			continue
		}
		name := archiveName(hdr.Name)
		if name == "" {
			continue
		}
		nameBytes += len(name) + len(m.link)
		if _, dup := members[name]; !dup && len(members) >= maxArchiveMembers {
			return nil, fmt.Errorf("archive has more than %d members", maxArchiveMembers)
		}
		if nameBytes > maxArchiveNameBytes {
			return nil, fmt.Errorf("archive's member names exceed %d MiB", maxArchiveNameBytes>>20)
		}
		members[name] = m
	}
}

// sparsePAX reports whether hdr describes a PAX sparse file, whose data
// begins with its sparse map.
func sparsePAX(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// archive is an image archive file and its member index.
type archive struct {
	file    string
	size    int64
	modTime time.Time
	members map[string]member

	mu     sync.Mutex
	closed bool
}

// openArchive indexes file.
func openArchive(file string) (*archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	members, err := indexArchive(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &archive{file: file, size: fi.Size(), modTime: fi.ModTime(), members: members}, nil
}

// close makes later reads fail; no descriptor is held between reads.
func (a *archive) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return nil
}

// lookup returns the regular member name resolves to, following links.
func (a *archive) lookup(name string) (member, error) {
	want := archiveName(name)
	cur := want
	for range maxArchiveLinks {
		m, ok := a.members[cur]
		if !ok {
			if cur != want {
				return member{}, fmt.Errorf("%q in the archive links to %q, which is not in the archive", want, cur)
			}
			return member{}, fmt.Errorf("%q is not in the archive", want)
		}
		if m.typ == tar.TypeReg {
			return m, nil
		}
		cur = m.link
	}
	return member{}, fmt.Errorf("%q in the archive: more than %d links, or a link cycle", want, maxArchiveLinks)
}

// readSmall reads a small member whole, refusing one larger than
// maxArchiveJSON.
func (a *archive) readSmall(name string) ([]byte, error) {
	m, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	if m.size > maxArchiveJSON {
		return nil, fmt.Errorf("%q in the archive is %d bytes, more than %d MiB", archiveName(name), m.size, maxArchiveJSON>>20)
	}
	rc, err := a.open(m)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading %q in the archive: %w", archiveName(name), err)
	}
	return b, nil
}

// open returns the bytes of m, read in place through a descriptor opened
// now and closed with the reader. The file must still be the one indexed
// (same size and modification time).
func (a *archive) open(m member) (io.ReadCloser, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("reading %s: image closed", a.file)
	}
	f, err := os.Open(a.file)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != a.size || !fi.ModTime().Equal(a.modTime) {
		f.Close()
		return nil, fmt.Errorf("%s changed since it was opened", a.file)
	}
	return &memberReader{SectionReader: io.NewSectionReader(f, m.off, m.size), f: f}, nil
}

// memberReader reads one member and closes its descriptor.
type memberReader struct {
	*io.SectionReader
	f *os.File
}

func (r *memberReader) Close() error { return r.f.Close() }

// Compression kinds of a stored layer, told by its first bytes.
const (
	plainTar = iota
	gzipped
	zstdCompressed
)

// sniff tells the compression of a blob from its first bytes.
func sniff(magic []byte) int {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b, 0x08}):
		return gzipped
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zstdCompressed
	}
	return plainTar
}

// uncompress returns the tar stream of the stored layer rc (gzip with
// klauspost/compress, zstd, or a plain tar); closing it closes rc.
func uncompress(rc io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(4)
	switch sniff(magic) {
	case gzipped:
		zr, err := kgzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &uncompressed{Reader: zr, closeZ: zr.Close, rc: rc}, nil
	case zstdCompressed:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &uncompressed{Reader: zr, closeZ: func() error { zr.Close(); return nil }, rc: rc}, nil
	}
	return &uncompressed{Reader: br, closeZ: func() error { return nil }, rc: rc}, nil
}

// uncompressed reads a decompressor and closes it and the blob.
type uncompressed struct {
	io.Reader
	closeZ func() error
	rc     io.Closer
}

func (u *uncompressed) Close() error {
	zerr := u.closeZ()
	if err := u.rc.Close(); err != nil {
		return err
	}
	return zerr
}
