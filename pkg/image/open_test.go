package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func testImage(t *testing.T, marker string) v1.Image {
	t.Helper()
	return mustV1(t,
		[]tf{dir("usr"), dir("usr/bin"), file("usr/bin/app", "#!/bin/sh\necho "+marker+"\n"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")},
		[]tf{file("etc/marker", marker)},
	)
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestOpenRegistry(t *testing.T) {
	rs := newRegistry(t)
	img := withPlatform(t, testImage(t, "amd64"), "linux", "amd64", "")
	ref := rs.push(t, "app:v1", img)
	ctx := context.Background()
	for _, r := range []string{ref, "docker://" + ref} {
		got, err := Open(ctx, r, WithCacheDir(t.TempDir()))
		if err != nil {
			t.Fatalf("Open(%q): %v", r, err)
		}
		if got.Digest != mustDigest(t, img) {
			t.Errorf("Open(%q).Digest = %s, want %s", r, got.Digest, mustDigest(t, img))
		}
		if got.Platform.String() != "linux/amd64" || len(got.Layers) != 2 || got.Ref != r {
			t.Errorf("Open(%q) = platform %s, %d layers, ref %q", r, got.Platform.String(), len(got.Layers), got.Ref)
		}
		idx, err := BuildIndex(ctx, got)
		if err != nil {
			t.Fatalf("BuildIndex: %v", err)
		}
		if c := contents(t, got, idx); c["/etc/marker"] != "amd64" {
			t.Errorf("/etc/marker = %q, want amd64", c["/etc/marker"])
		}
		if s, _ := idx.Lookup("/usr/bin/app"); s == nil || s.Script == nil || s.Script.Interpreter != "/bin/sh" {
			t.Errorf("/usr/bin/app script = %+v", s)
		}
		if p, ok := idx.Content("/etc/passwd"); !ok || !strings.HasPrefix(string(p), "root:") {
			t.Errorf("Content(/etc/passwd) = %q, %v", p, ok)
		}
	}
}

func TestOpenCachesBlobs(t *testing.T) {
	rs := newRegistry(t)
	ref := rs.push(t, "cached:v1", testImage(t, "x"))
	cache := t.TempDir()
	ctx := context.Background()
	run := func() string {
		var progress bytes.Buffer
		img, err := Open(ctx, ref, WithCacheDir(cache), WithProgress(&progress))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := BuildIndex(ctx, img); err != nil {
			t.Fatalf("BuildIndex: %v", err)
		}
		return progress.String()
	}
	rs.blobGets.Store(0)
	first := run()
	if n := rs.blobGets.Load(); n != 3 {
		t.Errorf("first run fetched %d blobs, want 3 (config and 2 layers)", n)
	}
	if !strings.Contains(first, "downloaded") {
		t.Errorf("first run progress has no download lines:\n%s", first)
	}
	rs.blobGets.Store(0)
	second := run()
	if n := rs.blobGets.Load(); n != 0 {
		t.Errorf("second run fetched %d blobs, want 0", n)
	}
	if strings.Count(second, ": cached") != 2 {
		t.Errorf("second run progress, want 2 cached layers:\n%s", second)
	}
	// A corrupt or partial download never lands in the cache: only
	// complete blobs named by their digest are there.
	var names []string
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, filepath.Base(p))
		}
		return nil
	})
	if len(names) != 3 {
		t.Errorf("cache holds %v, want 3 blobs", names)
	}

	// A cached blob changed on disk is detected, removed, and downloaded
	// again by the next run.
	img, _ := Open(ctx, ref, WithCacheDir(cache))
	blob := filepath.Join(cache, "sha256", strings.TrimPrefix(img.Layers[1].Digest, "sha256:"))
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	os.WriteFile(blob, b, 0o600)
	if _, err := BuildIndex(ctx, img); err == nil || !strings.Contains(err.Error(), "removed it") {
		t.Errorf("BuildIndex with a corrupt cached blob: error = %v", err)
	}
	rs.blobGets.Store(0)
	run()
	if n := rs.blobGets.Load(); n != 1 {
		t.Errorf("after removing a corrupt blob, fetched %d blobs, want 1", n)
	}
}

// TestCacheDownloadIsVerified: a blob this process downloaded into the
// cache was hashed as it was written, so the layer's next read (Extract's
// pass) does not hash it again; a blob found in the cache is hashed once.
func TestCacheDownloadIsVerified(t *testing.T) {
	rs := newRegistry(t)
	ref := rs.push(t, "verified:v1", testImage(t, "x"))
	cache := t.TempDir()
	ctx := context.Background()
	for _, run := range []string{"download", "from the cache"} {
		img, err := Open(ctx, ref, WithCacheDir(cache))
		if err != nil {
			t.Fatal(err)
		}
		ci := img.img.(*cachedImage)
		for n, l := range ci.cached {
			if l.verified.Load() {
				t.Errorf("%s: layer %d verified before it was read", run, n)
			}
		}
		idx, err := BuildIndex(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		for n, l := range ci.cached {
			if !l.verified.Load() {
				t.Errorf("%s: layer %d not marked verified after the index pass", run, n)
			}
		}
		if c := contents(t, img, idx); c["/etc/marker"] != "x" {
			t.Errorf("%s: /etc/marker = %q", run, c["/etc/marker"])
		}
	}
}

func multiPlatformIndex(t *testing.T) (v1.ImageIndex, v1.Image, v1.Image) {
	t.Helper()
	amd := withPlatform(t, testImage(t, "amd64"), "linux", "amd64", "")
	arm := withPlatform(t, testImage(t, "arm64"), "linux", "arm64", "v8")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return idx, amd, arm
}

func TestOpenPlatforms(t *testing.T) {
	rs := newRegistry(t)
	idx, amd, arm := multiPlatformIndex(t)
	ref := rs.host() + "/multi:v1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	armOnly := rs.push(t, "armonly:v1", withPlatform(t, testImage(t, "arm64"), "linux", "arm64", ""))
	ctx := context.Background()
	tests := []struct {
		ref, platform string
		want          string // digest
		err           string
	}{
		{ref: ref, want: mustDigest(t, amd)},
		{ref: ref, platform: "linux/arm64", want: mustDigest(t, arm)},
		{ref: ref, platform: "linux/arm64/v8", want: mustDigest(t, arm)},
		{ref: ref, platform: "linux/s390x", err: "image has no linux/s390x manifest; available: linux/amd64, linux/arm64/v8"},
		{ref: armOnly, err: "image is linux/arm64, not linux/amd64"},
		{ref: armOnly, platform: "linux/arm64", want: ""},
	}
	for _, tt := range tests {
		var opts []Option
		opts = append(opts, WithCacheDir(t.TempDir()))
		if tt.platform != "" {
			opts = append(opts, WithPlatform(tt.platform))
		}
		img, err := Open(ctx, tt.ref, opts...)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Open(%q, %q) error = %v, want %q", tt.ref, tt.platform, err, tt.err)
			}
			var pe *PlatformError
			if !errors.As(err, &pe) {
				t.Errorf("Open(%q, %q) error is not a *PlatformError", tt.ref, tt.platform)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q, %q): %v", tt.ref, tt.platform, err)
			continue
		}
		if tt.want != "" && img.Digest != tt.want {
			t.Errorf("Open(%q, %q).Digest = %s, want %s", tt.ref, tt.platform, img.Digest, tt.want)
		}
	}
}

func TestOpenLocalTransports(t *testing.T) {
	dir := t.TempDir()
	img := withPlatform(t, testImage(t, "local"), "linux", "amd64", "")
	ctx := context.Background()

	archive := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.com/app:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}

	single := filepath.Join(dir, "layout")
	p, err := layout.Write(single, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	other := withPlatform(t, testImage(t, "other"), "linux", "amd64", "")
	multi := filepath.Join(dir, "multi")
	mp, err := layout.Write(multi, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	mp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"}))
	mp.AppendImage(other, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v2"}))
	pidx, _, _ := multiPlatformIndex(t)
	mp.AppendIndex(pidx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"}))

	plat := filepath.Join(dir, "plat")
	pp, err := layout.Write(plat, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	_, amd, arm := multiPlatformIndex(t)
	pp.AppendImage(arm, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	pp.AppendImage(amd, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))

	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, single, ociTar)

	tests := []struct {
		ref    string
		marker string
		err    string
	}{
		{ref: "docker-archive:" + archive, marker: "local"},
		{ref: "docker-archive:" + archive + ":example.com/app:v1", marker: "local"},
		{ref: "docker-archive:" + archive + ":example.com/app:v2", err: "example.com/app:v2"},
		{ref: "oci:" + single, marker: "local"},
		{ref: "oci:" + single + ":v1", marker: "local"},
		{ref: "oci:" + multi + ":v2", marker: "other"},
		{ref: "oci:" + multi + ":multi", marker: "amd64"},
		{ref: "oci:" + multi + ":v3", err: `no image tagged "v3"`},
		{ref: "oci:" + plat, marker: "amd64"},
		{ref: "oci:" + multi, err: "holds 3 manifests; name one with oci:" + multi + ":TAG (tags: multi, v1, v2)"},
		{ref: "oci:" + filepath.Join(t.TempDir(), "missing"), err: "is not an OCI image layout (no index.json there; oci: takes a layout directory"},
		{ref: "oci-archive:" + ociTar + ":v1", marker: "local"},
		{ref: "oci-archive:" + ociTar, marker: "local"},
		{ref: "containers-storage:app", err: "unsupported transport \"containers-storage\""},
		{ref: "ftp://host/app", err: "supported: docker://REF"},
		{ref: "docker-archive:" + filepath.Join(dir, "missing.tar"), err: "no such file"},
	}
	for _, tt := range tests {
		got, err := Open(ctx, tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Open(%q) error = %v, want %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tt.ref, err)
			continue
		}
		idx, err := BuildIndex(ctx, got)
		if err != nil {
			t.Errorf("BuildIndex(%q): %v", tt.ref, err)
			continue
		}
		if c := contents(t, got, idx); c["/etc/marker"] != tt.marker {
			t.Errorf("Open(%q): /etc/marker = %q, want %q", tt.ref, c["/etc/marker"], tt.marker)
		}
		if err := got.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// tarDir writes the files below dir into a tar file.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		h, _ := tar.FileInfoHeader(info, "")
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOptions(t *testing.T) {
	for _, p := range []string{"linux", "linux/", "/amd64", "linux/arm/v7/x", "linux amd64", ""} {
		if _, err := Open(context.Background(), "x", WithPlatform(p)); err == nil || !strings.Contains(err.Error(), "os/arch") {
			t.Errorf("WithPlatform(%q) error = %v, want a format error", p, err)
		}
	}
	o, err := makeOptions(WithPlatform("linux/arm/v7"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, o.platform); diff != "" {
		t.Errorf("platform (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(o.cacheDir, filepath.Join("extract", "blobs")) {
		t.Errorf("default cache dir = %q", o.cacheDir)
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Errorf("Open(\"\") succeeded")
	}
}

type fakeECR func(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)

func (f fakeECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	return f(ctx, in, opts...)
}

func TestECRKeychain(t *testing.T) {
	calls := 0
	k := NewECRKeychainWithClient(fakeECR(func(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
		calls++
		return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{
			AuthorizationToken: aws.String(base64.StdEncoding.EncodeToString([]byte("AWS:secret-token"))),
			ExpiresAt:          aws.Time(time.Now().Add(12 * time.Hour)),
		}}}, nil
	}), nil)
	reg, _ := name.NewRegistry("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
	for range 2 {
		a, err := k.Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != "AWS" || cfg.Password != "secret-token" {
			t.Errorf("ECR auth = %+v, want AWS/secret-token", cfg)
		}
	}
	if calls != 1 {
		t.Errorf("GetAuthorizationToken called %d times, want 1 (token cached)", calls)
	}
	other, _ := name.NewRegistry("gcr.io")
	if a, err := k.Resolve(other); err != nil || a != authn.Anonymous {
		t.Errorf("Resolve(gcr.io) = %v, %v; want Anonymous", a, err)
	}
	if calls != 1 {
		t.Errorf("non-ECR host called ECR")
	}
	failing := NewECRKeychainWithClient(fakeECR(func(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
		return nil, errors.New("access denied")
	}), nil)
	if _, err := failing.Resolve(reg); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("failing ECR error = %v", err)
	}
}

var _ io.Reader = (*progressReader)(nil)

// countingTransport counts the requests it forwards.
type countingTransport struct {
	n    atomic.Int64 // layers are fetched concurrently
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestOpenWithTransportAndKeychain(t *testing.T) {
	rs := newRegistry(t)
	ref := rs.push(t, "tr:v1", testImage(t, "x"))
	ct := &countingTransport{next: http.DefaultTransport}
	img, err := Open(context.Background(), ref, WithTransport(ct), WithKeychain(authn.DefaultKeychain), WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildIndex(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if ct.n.Load() == 0 {
		t.Errorf("WithTransport: no request went through the transport")
	}
	if _, err := Open(context.Background(), ref, WithTransport(nil)); err == nil {
		t.Errorf("WithTransport(nil) accepted")
	}
}

func TestOpenDaemonUnavailable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	_, err := Open(context.Background(), "docker-daemon:app:v1")
	if err == nil || !strings.Contains(err.Error(), `opening "docker-daemon:app:v1"`) {
		t.Errorf("Open(docker-daemon:) without a daemon: error = %v", err)
	}
}

func TestOpenLayoutCompressions(t *testing.T) {
	gz := mustLayer(t, file("a", "gzip"))
	zb := tarBytes(t, file("b", "zstd"))
	zs, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(zb)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(tarBytes(t, file("c", "plain")), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, gz, zs, plain)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err := Open(context.Background(), "oci:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := BuildIndex(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"/a": "gzip", "/b": "zstd", "/c": "plain"}, contents(t, got, idx)); diff != "" {
		t.Errorf("contents (-want +got):\n%s", diff)
	}
}
