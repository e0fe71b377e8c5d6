package lambda

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"
)

const (
	// zipInPlaceSize is the size above which a regular file is deflated by
	// the zip writer as it is written, not ahead of it by a worker.
	zipInPlaceSize = 8 << 20
	// zipAheadBudget bounds the sizes of the files deflated ahead of the
	// zip writer and not yet written: their buffers hold at most about that
	// many bytes.
	zipAheadBudget = 16 << 20
)

// deflateLimits are how a zip's files are deflated in parallel.
type deflateLimits struct {
	// workers is how many files are deflated at once (the writer helps).
	workers int
	// inPlace and ahead are zipInPlaceSize and zipAheadBudget (smaller in
	// tests).
	inPlace, ahead int64
}

// deflateJob is a regular file deflated ahead of the zip writer.
type deflateJob struct {
	e    zipEntry
	done chan struct{} // closed when data, crc and err are set
	data []byte        // the deflated content
	crc  uint32
	err  error
	// early: made by deflateAhead, outside the pool's budget.
	early bool
}

// deflateAhead starts deflating e, a regular file, on a goroutine of its
// own; the job goes in e.Deflated. It stops early when ctx is done.
func deflateAhead(ctx context.Context, e zipEntry) *deflateJob {
	j := &deflateJob{e: e, done: make(chan struct{}), early: true}
	go func() {
		var d deflater
		d.deflate(ctx, j)
	}()
	return j
}

// deflatePool deflates the small regular files of a zip on workers, ahead
// of the writer, which writes them in order. Only the writer calls its
// methods.
type deflatePool struct {
	ctx    context.Context
	cancel context.CancelFunc
	jobs   []*deflateJob // by entry index; nil for entries the writer writes itself
	order  []*deflateJob // the jobs in entry order
	next   int           // order[next] is the next job to queue
	budget int64         // zipAheadBudget
	ahead  int64         // sizes of the queued jobs not yet written
	queue  chan *deflateJob
	own    deflater // the writer's, when it helps while it waits
	wg     sync.WaitGroup
}

// writeEntriesParallel writes the sorted entries as writeEntries does, to the
// same bytes, but deflates the regular files up to lim.inPlace bytes on
// lim.workers-1 goroutines and the writer while it waits, ahead of the
// writer by at most lim.ahead bytes. Larger files are deflated by the writer
// as it writes them, while the workers go on with the next files.
func writeEntriesParallel(ctx context.Context, zw *zip.Writer, list []zipEntry, lim deflateLimits) (zipStats, error) {
	var st zipStats
	p := newDeflatePool(ctx, list, lim)
	defer p.stop()
	for i, e := range list {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		p.dispatch()
		var size int64
		var err error
		if j := p.jobs[i]; j != nil {
			size, err = p.write(ctx, zw, j)
		} else {
			size, err = writeZipEntry(zw, e)
		}
		if err != nil {
			return st, err
		}
		st.add(e, size)
	}
	return st, nil
}

func newDeflatePool(ctx context.Context, list []zipEntry, lim deflateLimits) *deflatePool {
	p := &deflatePool{jobs: make([]*deflateJob, len(list)), budget: lim.ahead}
	p.ctx, p.cancel = context.WithCancel(ctx)
	for i, e := range list {
		if e.Deflated != nil {
			p.jobs[i] = e.Deflated
			continue
		}
		if e.Mode.IsRegular() && e.Size <= lim.inPlace {
			j := &deflateJob{e: e, done: make(chan struct{})}
			p.jobs[i] = j
			p.order = append(p.order, j)
		}
	}
	p.queue = make(chan *deflateJob, len(p.order))
	for range lim.workers - 1 {
		p.wg.Go(func() {
			var d deflater
			for j := range p.queue {
				d.deflate(p.ctx, j)
			}
		})
	}
	return p
}

// dispatch queues the next jobs, in order, while their sizes fit in the
// budget (the first always does).
func (p *deflatePool) dispatch() {
	for p.next < len(p.order) {
		j := p.order[p.next]
		if p.ahead > 0 && p.ahead+j.e.Size > p.budget {
			return
		}
		p.ahead += j.e.Size
		p.next++
		p.queue <- j
	}
}

// write waits for j, deflating queued jobs meanwhile, and writes it to zw
// with the header, data descriptor and directory record CreateHeader would
// have written.
func (p *deflatePool) write(ctx context.Context, zw *zip.Writer, j *deflateJob) (int64, error) {
	for waiting := true; waiting; {
		select {
		case <-j.done:
			waiting = false
		case k := <-p.queue:
			p.own.deflate(p.ctx, k)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if !j.early {
		p.ahead -= j.e.Size
	}
	data := j.data
	j.data = nil
	if j.err != nil {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, j.err
	}
	h, err := entryHeader(j.e)
	if err != nil {
		return 0, err
	}
	// CreateHeader fills in the flags, versions, time and extra fields;
	// a throwaway writer runs it, storing (no compressor), and CreateRaw
	// writes a copy with the deflated data's method, CRC and sizes.
	h.Method = zip.Store
	if _, err := zip.NewWriter(io.Discard).CreateHeader(h); err != nil {
		return 0, fmt.Errorf("adding %q to the zip: %w", j.e.Name, err)
	}
	raw := *h
	raw.Method = zip.Deflate
	raw.CRC32 = j.crc
	raw.CompressedSize64 = uint64(len(data))
	raw.UncompressedSize64 = uint64(j.e.Size)
	fw, err := zw.CreateRaw(&raw)
	if err != nil {
		return 0, fmt.Errorf("adding %q to the zip: %w", j.e.Name, err)
	}
	if _, err := fw.Write(data); err != nil {
		return 0, fmt.Errorf("adding %q to the zip: %w", j.e.Name, err)
	}
	return j.e.Size, nil
}

// stop ends the workers once they have finished or abandoned their jobs.
func (p *deflatePool) stop() {
	p.cancel()
	close(p.queue)
	p.wg.Wait()
}

// deflater deflates jobs at zipLevel, reusing one compressor.
type deflater struct {
	fw  *flate.Writer
	crc hash.Hash32
}

// deflate sets j's data and crc, or its err: the errors writeZipEntry
// returns for the same file. It stops early when ctx is done.
func (d *deflater) deflate(ctx context.Context, j *deflateJob) {
	defer close(j.done)
	if err := ctx.Err(); err != nil {
		j.err = err
		return
	}
	rc, err := j.e.Open()
	if err != nil {
		j.err = fmt.Errorf("opening %q: %w", j.e.Name, err)
		return
	}
	defer rc.Close()
	out := bytes.NewBuffer(make([]byte, 0, j.e.Size+j.e.Size/64+64))
	if d.fw == nil {
		if d.fw, err = flate.NewWriter(out, zipLevel); err != nil {
			j.err = fmt.Errorf("adding %q to the zip: %w", j.e.Name, err)
			return
		}
		d.crc = crc32.NewIEEE()
	} else {
		d.fw.Reset(out)
		d.crc.Reset()
	}
	// At most Size bytes are deflated; more are only counted, for the error.
	n, err := io.Copy(&deflateSink{ctx: ctx, fw: d.fw, crc: d.crc, left: j.e.Size}, rc)
	if err == nil {
		err = d.fw.Close()
	}
	switch {
	case err != nil:
		j.err = fmt.Errorf("adding %q to the zip: %w", j.e.Name, err)
	case n != j.e.Size:
		j.err = fmt.Errorf("adding %q to the zip: read %d bytes, want %d", j.e.Name, n, j.e.Size)
	default:
		j.data, j.crc = out.Bytes(), d.crc.Sum32()
	}
}

// deflateSink takes a file's content as the zip's fileWriter does (the CRC,
// then the compressor, in the caller's chunks), up to left bytes, and
// discards the rest.
type deflateSink struct {
	ctx  context.Context
	fw   *flate.Writer
	crc  hash.Hash32
	left int64
}

func (s *deflateSink) Write(b []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n := len(b)
	if int64(len(b)) > s.left {
		b = b[:s.left]
	}
	s.left -= int64(len(b))
	s.crc.Write(b)
	if _, err := s.fw.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}
