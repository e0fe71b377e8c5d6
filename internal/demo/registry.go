package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is go-containerregistry's in-memory registry (pkg/registry, the
// real distribution protocol) served over plain HTTP on a loopback port.
// go-containerregistry clients talk HTTP to 127.0.0.1 registries without
// being told to.
type Registry struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	srv  *http.Server
	done chan error
}

// StartRegistry listens on addr ("127.0.0.1:0" picks a free port) and
// serves the registry until Close. Requests are logged to logw (nil:
// nowhere).
func StartRegistry(addr string, logw io.Writer) (*Registry, error) {
	if logw == nil {
		logw = io.Discard
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	r := &Registry{
		Addr: l.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(logw, "registry: ", log.LstdFlags))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() {
		err := r.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.done <- err
	}()
	return r, nil
}

// Wait blocks until the server stops and returns why.
func (r *Registry) Wait() error { return <-r.done }

// Close stops the server, letting requests in flight finish until ctx ends,
// then cutting what is left.
func (r *Registry) Close(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if err != nil && ctx.Err() != nil {
		// Connections still busy when ctx ended — or only just accepted:
		// Shutdown waits up to 5 s for a connection that has sent no
		// request yet, which a client's spare connection can be. Cut them.
		err = r.srv.Close()
	}
	if err != nil {
		return fmt.Errorf("stopping registry on %s: %w", r.Addr, err)
	}
	return nil
}

// Pushed is what Push wrote.
type Pushed struct {
	// Ref is the digest reference, REPO@sha256:...
	Ref name.Digest
	// Compressed is the sum of the layers' compressed sizes plus the config,
	// what a pull downloads; Uncompressed the sum of the layers' tar sizes.
	Compressed, Uncompressed int64
}

// Push writes img to ref (a tag reference such as
// 127.0.0.1:5000/demo/momentum:v1) and returns its digest reference and
// sizes.
func Push(ctx context.Context, img v1.Image, ref string) (*Pushed, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", ref, err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	p := &Pushed{Ref: tag.Context().Digest(d.String())}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	p.Compressed = m.Config.Size
	for _, l := range m.Layers {
		p.Compressed += l.Size
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		p.Uncompressed += n
	}
	return p, nil
}
