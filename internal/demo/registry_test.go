package demo

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRegistryPush(t *testing.T) {
	r, err := StartRegistry("127.0.0.1:0", nil)
	if err != nil {
		t.Fatalf("StartRegistry: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") || strings.HasSuffix(r.Addr, ":0") {
		t.Fatalf("registry address %q, want 127.0.0.1:<port>", r.Addr)
	}

	img, err := BuildImage(mustRootfs(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := Push(ctx, img, r.Addr+"/demo/momentum:v1")
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	want, _ := img.Digest()
	if p.Ref.DigestStr() != want.String() || p.Ref.Context().Name() != r.Addr+"/demo/momentum" {
		t.Errorf("Push returned %s, want %s/demo/momentum@%s", p.Ref, r.Addr, want)
	}

	// Pull it back by tag, over the real protocol.
	ref, err := name.ParseReference(r.Addr + "/demo/momentum:v1")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	m, err := pulled.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	compressed := m.Config.Size
	var uncompressed int64
	layers, _ := pulled.Layers()
	for i, l := range layers {
		compressed += m.Layers[i].Size
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		uncompressed += n
	}
	if p.Compressed != compressed || p.Uncompressed != uncompressed {
		t.Errorf("Push sizes %d/%d, want %d/%d (compressed/uncompressed)", p.Compressed, p.Uncompressed, compressed, uncompressed)
	}

	// Close stops serving.
	ctxc, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Close(ctxc); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Wait(); err != nil {
		t.Errorf("Wait after Close = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("registry still accepts connections on %s after Close", r.Addr)
	}
}

func TestPushBadRef(t *testing.T) {
	img, err := BuildImage(mustRootfs(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), img, "127.0.0.1:1/demo/Momentum:v1"); err == nil || !strings.Contains(err.Error(), "parsing") {
		t.Errorf("Push to an invalid repository = %v, want a parsing error", err)
	}
}
