package image

import (
	"bufio"
	"bytes"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

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
