package lambda

import (
	"archive/zip"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// zipTime is the modification time of every zip entry: the earliest time a
// zip (MS-DOS) timestamp can hold, so that the zip depends on nothing but its
// contents.
var zipTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// zipLevel is the Deflate level of every compressed entry. The best
// compression keeps more packages under the 50 MB direct-upload limit.
const zipLevel = flate.BestCompression

// zipEntry is one file of the package before it is written.
type zipEntry struct {
	// Name is the path in the zip, relative, slash separated, no trailing
	// slash.
	Name string
	// Mode is the file's type and permission bits: a regular file, a
	// symlink (fs.ModeSymlink) or a directory (fs.ModeDir).
	Mode fs.FileMode
	// Target is a symlink's target, stored as its content.
	Target string
	// Size is a regular file's size and Open returns its content.
	Size int64
	Open func() (io.ReadCloser, error)
	// Deflated, when set, is this regular file's content already being
	// deflated (deflateAhead); a parallel write waits for it instead of
	// deflating the file again.
	Deflated *deflateJob
}

// zipStats is what writeZip wrote.
type zipStats struct {
	// Entries counts the entries written, directories included; Files
	// counts regular files and symlinks.
	Entries, Files int
	// Unzipped is the sum of the entries' uncompressed sizes, symlinks
	// counting their target's length.
	Unzipped int64
}

// writeZip writes entries to w as a deterministic zip: directories implied
// by the entries' names are added explicitly (0755), entries are sorted by
// name, every entry has the same time and Unix creator fields, regular files
// are deflated at zipLevel and symlinks and directories stored. Two entries
// with the same name, or an entry below a non-directory, are errors. With
// more than one CPU (GOMAXPROCS), files are deflated in parallel to the same
// bytes (writeEntriesParallel).
func writeZip(ctx context.Context, w io.Writer, entries []zipEntry) (zipStats, error) {
	lim := deflateLimits{workers: runtime.GOMAXPROCS(0), inPlace: zipInPlaceSize, ahead: zipAheadBudget}
	return writeZipLimits(ctx, w, entries, lim)
}

// writeZipLimits is writeZip, deflating files in parallel within lim when
// lim.workers > 1, to the same bytes.
func writeZipLimits(ctx context.Context, w io.Writer, entries []zipEntry, lim deflateLimits) (zipStats, error) {
	var st zipStats
	all := make(map[string]zipEntry, len(entries))
	for _, e := range entries {
		if e.Name == "" || strings.HasPrefix(e.Name, "/") || strings.HasSuffix(e.Name, "/") || path.Clean(e.Name) != e.Name || strings.HasPrefix(e.Name, "../") || e.Name == ".." {
			return st, fmt.Errorf("zip entry name %q is not a clean relative path", e.Name)
		}
		if prev, ok := all[e.Name]; ok && !(prev.Mode.IsDir() && e.Mode.IsDir()) {
			return st, fmt.Errorf("zip entry %q added twice", e.Name)
		}
		all[e.Name] = e
	}
	for _, e := range entries {
		for dir := path.Dir(e.Name); dir != "."; dir = path.Dir(dir) {
			d, ok := all[dir]
			if !ok {
				all[dir] = zipEntry{Name: dir, Mode: fs.ModeDir | 0o755}
				continue
			}
			if !d.Mode.IsDir() {
				return st, fmt.Errorf("zip entry %q is below %q, which is not a directory", e.Name, dir)
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)

	list := make([]zipEntry, len(names))
	for i, n := range names {
		list[i] = all[n]
	}

	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, zipLevel)
	})
	var err error
	if lim.workers > 1 {
		st, err = writeEntriesParallel(ctx, zw, list, lim)
	} else {
		st, err = writeEntries(ctx, zw, list)
	}
	if err != nil {
		return st, err
	}
	if err := zw.Close(); err != nil {
		return st, fmt.Errorf("writing the zip directory: %w", err)
	}
	return st, nil
}

// writeEntries writes the sorted entries one after another, each regular
// file deflated as it is written.
func writeEntries(ctx context.Context, zw *zip.Writer, list []zipEntry) (zipStats, error) {
	var st zipStats
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		size, err := writeZipEntry(zw, e)
		if err != nil {
			return st, err
		}
		st.add(e, size)
	}
	return st, nil
}

// add counts the entry e of size bytes.
func (st *zipStats) add(e zipEntry, size int64) {
	st.Entries++
	if !e.Mode.IsDir() {
		st.Files++
	}
	st.Unzipped += size
}

// entryHeader is the zip header of e, before the writer completes it.
func entryHeader(e zipEntry) (*zip.FileHeader, error) {
	h := &zip.FileHeader{Name: e.Name, Modified: zipTime, Method: zip.Store}
	switch {
	case e.Mode.IsDir():
		h.Name += "/"
		h.SetMode(fs.ModeDir | e.Mode.Perm())
	case e.Mode&fs.ModeSymlink != 0:
		h.SetMode(fs.ModeSymlink | 0o777)
	case e.Mode.IsRegular():
		h.SetMode(e.Mode.Perm())
		h.Method = zip.Deflate
	default:
		return nil, fmt.Errorf("zip entry %q: unsupported file type %v", e.Name, e.Mode.Type())
	}
	return h, nil
}

func writeZipEntry(zw *zip.Writer, e zipEntry) (int64, error) {
	h, err := entryHeader(e)
	if err != nil {
		return 0, err
	}
	fw, err := zw.CreateHeader(h)
	if err != nil {
		return 0, fmt.Errorf("adding %q to the zip: %w", e.Name, err)
	}
	switch {
	case e.Mode.IsDir():
		return 0, nil
	case e.Mode&fs.ModeSymlink != 0:
		n, err := io.WriteString(fw, e.Target)
		if err != nil {
			return 0, fmt.Errorf("adding %q to the zip: %w", e.Name, err)
		}
		return int64(n), nil
	}
	rc, err := e.Open()
	if err != nil {
		return 0, fmt.Errorf("opening %q: %w", e.Name, err)
	}
	defer rc.Close()
	n, err := io.Copy(fw, rc)
	if err != nil {
		return 0, fmt.Errorf("adding %q to the zip: %w", e.Name, err)
	}
	if n != e.Size {
		return 0, fmt.Errorf("adding %q to the zip: read %d bytes, want %d", e.Name, n, e.Size)
	}
	return n, nil
}
