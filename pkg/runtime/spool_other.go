//go:build !linux

package runtime

import (
	"io"
	"os"
)

// spool is Linux's (spool_linux.go); elsewhere stdout is always a pipe.
type spool struct{ w *os.File }

func newSpool() (*spool, error) { return nil, errNoSpool }

func (s *spool) start(int, <-chan struct{}) {}

func (s *spool) Read([]byte) (int, error) { return 0, io.EOF }

func (s *spool) Close() error { return nil }
