// Package syncio holds the small I/O helper that pkg/image and pkg/local
// both need.
package syncio

import (
	"io"
	"sync"
)

// Writer serializes Writes to W: writers on several goroutines (layers
// decoded at once, a program's stdout and stderr) never interleave within
// one Write.
type Writer struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
