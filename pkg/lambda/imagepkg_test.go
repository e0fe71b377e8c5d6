package lambda

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// imageTestSource is a small image with a static program, a data file it
// does not need, and a WORKDIR the image lacks.
func imageTestSource(t *testing.T) v1.Image {
	t.Helper()
	prog := testkit.GoProgram(t, "package main\nfunc main() {}\n", "amd64")
	return testkit.Image(t, v1.Config{
		Entrypoint: []string{"/app/run"},
		Env:        []string{"PATH=/usr/bin:/bin", "APP=1"},
		WorkingDir: "/work",
		User:       "app",
	}, []testkit.File{
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/run", From: prog, Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
	}, []testkit.File{
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/share/", Type: tar.TypeDir},
		{Name: "usr/share/big.dat", Body: strings.Repeat("x", 4096)},
	})
}

// layerFiles reads a layer's tar entries: name → header, and the bodies of
// regular files.
func layerFiles(t *testing.T, l v1.Layer) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hs, bodies := map[string]*tar.Header{}, map[string][]byte{}
	for _, e := range testkit.ReadTar(t, rc) {
		hs[e.Header.Name] = e.Header
		if e.Header.Typeflag == tar.TypeReg {
			bodies[e.Header.Name] = e.Body
		}
	}
	return hs, bodies
}

func mustPackageImage(t *testing.T, img *image.Image, opts ...PackageOption) *ImageResult {
	t.Helper()
	res, err := PackageImage(context.Background(), img, append([]PackageOption{WithBootstrap(testBootstrap)}, opts...)...)
	if err != nil {
		t.Fatalf("PackageImage: %v", err)
	}
	t.Cleanup(func() { res.Close() })
	return res
}

func TestPackageImageWhole(t *testing.T) {
	src := imageTestSource(t)
	img := imagetest.Serve(t, src)
	res := mustPackageImage(t, img)
	again := mustPackageImage(t, img)
	if res.Digest != again.Digest {
		t.Errorf("PackageImage digests differ for the same image: %s, %s", res.Digest, again.Digest)
	}
	if res.Shape != ShapeWhole {
		t.Errorf("Shape = %q, want %q", res.Shape, ShapeWhole)
	}

	// The source's layers, as they are, then the bootstrap layer.
	srcLayers, _ := src.Layers()
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(srcLayers)+1 || res.Layers != len(layers) {
		t.Fatalf("%d layers (result says %d), want the source's %d plus one", len(layers), res.Layers, len(srcLayers))
	}
	for i, l := range srcLayers {
		want, _ := l.Digest()
		got, _ := layers[i].Digest()
		if got != want {
			t.Errorf("layer %d digest %s, want the source's %s", i, got, want)
		}
	}
	hs, bodies := layerFiles(t, layers[len(layers)-1])
	if got := string(bodies["opt/extract/bootstrap"]); got != "bootstrap for amd64\n" {
		t.Errorf("bootstrap = %q", got)
	}
	if h := hs["opt/extract/bootstrap"]; h == nil || h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("bootstrap header %+v, want mode 755 owned by root", h)
	}
	if h := hs["work/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("the missing WORKDIR is not made: %+v", h)
	}
	if h := hs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp header %+v, want a directory with mode 1777", h)
	}
	var m xruntime.Manifest
	if err := json.Unmarshal(bodies["opt/extract/extract.json"], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.Format != xruntime.FormatImage || m.Program != "/app/run" || m.LinkDir != "" || m.WorkDir != "/work" || m.User != "app" {
		t.Errorf("manifest %+v: want format image, program /app/run, no link dir, workdir /work, user app", m)
	}
	if diff := cmp.Diff([]string{"PATH=/usr/bin:/bin", "APP=1", "HOME=/home/app"}, m.Env); diff != "" {
		t.Errorf("manifest env (-want +got):\n%s", diff)
	}

	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.User != "" || cf.Config.Cmd != nil ||
		!cmp.Equal(cf.Config.Entrypoint, []string{"/opt/extract/bootstrap"}) || cf.Config.WorkingDir != "/work" {
		t.Errorf("config %+v: want linux/amd64, ENTRYPOINT the bootstrap, no CMD or USER, the image's WORKDIR", cf.Config)
	}
	if len(cf.History) != len(layers) {
		t.Errorf("%d history entries for %d layers", len(cf.History), len(layers))
	}
	if res.SlimOmits.Files != 1 || res.SlimOmits.Bytes != 4096 {
		t.Errorf("SlimOmits = %+v, want the one 4096-byte file outside the closure", res.SlimOmits)
	}
}

func TestPackageImageSlim(t *testing.T) {
	img := imagetest.Serve(t, imageTestSource(t))
	res := mustPackageImage(t, img, WithSlim(true))
	if again := mustPackageImage(t, img, WithSlim(true)); again.Digest != res.Digest {
		t.Errorf("slim digests differ for the same image: %s, %s", res.Digest, again.Digest)
	}
	layers, err := res.Image.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("slim image has %d layers (%v), want the closure and the bootstrap", len(layers), err)
	}
	hs, bodies := layerFiles(t, layers[0])
	var names []string
	for n := range hs {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"app/", "app/run", "etc/", "etc/passwd", "tmp/", "work/"} // passwd: the data rule
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("closure layer entries (-want +got):\n%s", diff)
	}
	if h := hs["app/run"]; h.Mode != 0o755 {
		t.Errorf("/app/run mode %o, want 755", h.Mode)
	}
	if len(bodies["app/run"]) == 0 || !bytes.HasPrefix(bodies["app/run"], []byte("\x7fELF")) {
		t.Errorf("/app/run is not the program (%d bytes)", len(bodies["app/run"]))
	}
	bh, _ := layerFiles(t, layers[1])
	if _, ok := bh["work/"]; ok {
		t.Error("the slim bootstrap layer repeats the WORKDIR")
	}
	whole := mustPackageImage(t, img)
	if res.CompressedSize >= whole.CompressedSize || res.Size >= whole.Size {
		t.Errorf("slim %d/%d bytes, not smaller than whole %d/%d", res.CompressedSize, res.Size, whole.CompressedSize, whole.Size)
	}
}

// TestPackageImageSlimFortran checks the slim closure of the showcase: the
// files at their original paths and unchanged (no PT_INTERP rewrite),
// symlinks kept as written.
func TestPackageImageSlimFortran(t *testing.T) {
	fixtures := testkit.Fixtures(t)
	v1img, err := imagebuild.Fixture(fixtures, "fortran-merged")
	if err != nil {
		t.Fatal(err)
	}
	res := mustPackageImage(t, imagetest.Serve(t, v1img), WithSlim(true))
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	hs, bodies := layerFiles(t, layers[0])
	root := filepath.Join(fixtures, "fortran-merged")
	for _, p := range []string{"usr/local/bin/momentum", "usr/lib/x86_64-linux-gnu/libc.so.6"} {
		real, err := filepath.EvalSymlinks(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, real)
		want, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bodies[rel], want) {
			t.Errorf("%s in the slim layer differs from the image's file (%d vs %d bytes)", rel, len(bodies[rel]), len(want))
		}
	}
	if h := hs["lib64"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/lib64" {
		t.Errorf("lib64 entry %+v, want the image's symlink to usr/lib64", h)
	}
	for _, f := range res.Closure.Files {
		if _, ok := hs[strings.TrimPrefix(f.Path, "/")]; !ok {
			t.Errorf("closure file %s is not in the slim layer", f.Path)
		}
	}
}

func TestPackageImageRecompressesZstd(t *testing.T) {
	prog := testkit.GoProgram(t, "package main\nfunc main() {}\n", "amd64")
	b := testkit.Tar(t, testkit.File{Name: "run", From: prog, Mode: 0o755})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	src, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := src.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Entrypoint = "linux", "amd64", []string{"/run"}
	if src, err = mutate.ConfigFile(src, cf); err != nil {
		t.Fatal(err)
	}
	res := mustPackageImage(t, imagetest.Serve(t, src))
	layers, _ := res.Image.Layers()
	for i, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer %d media type %s, want %s (Lambda takes gzip layers only)", i, mt, types.OCILayer)
		}
	}
	if mt, _ := res.Image.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want the source's %s", mt, types.OCIManifestSchema1)
	}
}

func TestPackageImageRefusesImageDir(t *testing.T) {
	prog := testkit.GoProgram(t, "package main\nfunc main() {}\n", "amd64")
	src := testkit.Image(t, v1.Config{Entrypoint: []string{"/run"}}, []testkit.File{
		{Name: "run", From: prog, Mode: 0o755},
		{Name: "opt/", Type: tar.TypeDir},
		{Name: "opt/extract/", Type: tar.TypeDir},
	})
	_, err := PackageImage(context.Background(), imagetest.Serve(t, src), WithBootstrap(testBootstrap))
	if err == nil || !strings.Contains(err.Error(), "already has /opt/extract") {
		t.Errorf("PackageImage of an image with /opt/extract = %v, want a refusal naming it", err)
	}
}

func TestWriteImage(t *testing.T) {
	ctx := context.Background()
	res := mustPackageImage(t, imagetest.Serve(t, imageTestSource(t)))
	dir := t.TempDir()

	t.Run("oci", func(t *testing.T) {
		out := filepath.Join(dir, "layout")
		if err := os.MkdirAll(filepath.Join(out, "stale"), 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := WriteImage(ctx, res.Image, "oci:"+out+":v1")
		if err != nil {
			t.Fatal(err)
		}
		if want := out + "@" + res.Digest; got != want {
			t.Errorf("WriteImage = %q, want %q", got, want)
		}
		var idx v1.IndexManifest
		b, err := os.ReadFile(filepath.Join(out, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != res.Digest || !idx.Manifests[0].MediaType.IsImage() {
			t.Fatalf("index.json manifests %+v, want exactly the image manifest %s", idx.Manifests, res.Digest)
		}
		if idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1" {
			t.Errorf("annotations %v, want the tag v1", idx.Manifests[0].Annotations)
		}
		if _, err := os.Stat(filepath.Join(out, "stale")); !os.IsNotExist(err) {
			t.Errorf("the old layout's content survived: %v", err)
		}
		back := imagetest.Open(t, "oci:"+out)
		if back.Digest != res.Digest {
			t.Errorf("reopened digest %s, want %s", back.Digest, res.Digest)
		}
		if _, err := layout.FromPath(out); err != nil {
			t.Error(err)
		}
	})

	t.Run("docker-archive", func(t *testing.T) {
		out := filepath.Join(dir, "fn.tar")
		if _, err := WriteImage(ctx, res.Image, "docker-archive:"+out); err != nil {
			t.Fatal(err)
		}
		back := imagetest.Open(t, "docker-archive:"+out)
		want, _ := res.Image.ConfigName()
		got, err := back.V1().ConfigName()
		if err != nil || got != want {
			t.Errorf("reopened config %s (%v), want %s", got, err, want)
		}
		if matches, _ := filepath.Glob(filepath.Join(dir, ".fn.tar.tmp-*")); len(matches) > 0 {
			t.Errorf("temporary files left: %v", matches)
		}
	})

	t.Run("registry", func(t *testing.T) {
		var uploads atomic.Int32
		srv := testkit.NewRegistry(t, func(r *http.Request) {
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads") {
				uploads.Add(1)
			}
		})
		repo := srv.Host() + "/extract-fn"
		got, err := WriteImage(ctx, res.Image, repo+":latest")
		if err != nil {
			t.Fatal(err)
		}
		if want := repo + "@" + res.Digest; got != want {
			t.Errorf("WriteImage = %q, want %q", got, want)
		}
		ref, _ := name.ParseReference(got)
		pulled, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := pulled.Digest(); d.String() != res.Digest {
			t.Errorf("pulled %s, want %s", d, res.Digest)
		}
		first := uploads.Load()
		if first == 0 {
			t.Fatal("the first push uploaded no blob")
		}
		if _, err := WriteImage(ctx, res.Image, "docker://"+repo+":latest"); err != nil {
			t.Fatal(err)
		}
		if again := uploads.Load() - first; again != 0 {
			t.Errorf("the second push of the same image uploaded %d blobs, want none", again)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, dest := range []string{"oci:", "docker-archive:", "oci-archive:x.tar", "docker-daemon:x:y", "UPPER case"} {
			if _, err := WriteImage(ctx, res.Image, dest); err == nil {
				t.Errorf("WriteImage(%q) = nil error", dest)
			}
		}
	})
}

// TestImageSizeLimit: an image over Lambda's limit (lowered here) is a
// *SizeError before anything is written; the slim shape of the same image
// may fit.
func TestImageSizeLimit(t *testing.T) {
	img := imagetest.Serve(t, imageTestSource(t))
	whole := mustPackageImage(t, img)
	limit := whole.Size - 1
	_, err := PackageImage(context.Background(), img, WithBootstrap(testBootstrap), withMaxImage(limit))
	var se *SizeError
	if !errors.As(err, &se) || !se.Image || se.Size != whole.Size || !strings.Contains(err.Error(), "container images") {
		t.Fatalf("PackageImage over the limit = %v, want an image *SizeError of %d bytes", err, whole.Size)
	}
	if _, err := PackageImage(context.Background(), img, WithBootstrap(testBootstrap), withMaxImage(limit), WithSlim(true)); err != nil {
		t.Errorf("the slim image over the limit: %v", err)
	}
}

// TestPrepareFormat checks auto's choice: a program that names a data file
// by its image path gets an image, and its zip warns; one that names none
// gets a zip.
func TestPrepareFormat(t *testing.T) {
	ctx := context.Background()
	// NUL-delimited, as a C string literal is (Go packs its strings
	// together without separators).
	named := testkit.GoProgram(t, "package main\nimport \"os\"\nvar p = []byte(\"\\x00/usr/share/app/table.dat\\x00\")\nfunc main() { os.ReadFile(string(p[1:len(p)-1])) }\n", "amd64")
	plain := testkit.GoProgram(t, "package main\nfunc main() {}\n", "amd64")
	mk := func(prog string) *image.Image {
		return imagetest.Serve(t, testkit.Image(t, v1.Config{Entrypoint: []string{"/app/run"}}, []testkit.File{
			{Name: "app/", Type: tar.TypeDir},
			{Name: "app/run", From: prog, Mode: 0o755},
			{Name: "usr/", Type: tar.TypeDir},
			{Name: "usr/share/", Type: tar.TypeDir},
			{Name: "usr/share/app/", Type: tar.TypeDir},
			{Name: "usr/share/app/table.dat", Body: "42\n"},
		}))
	}

	pp, err := Prepare(ctx, mk(named), WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	if pp.Format != FormatImage {
		t.Errorf("Format = %q (%s), want image", pp.Format, pp.Reason)
	}
	want := []image.PathRef{{File: "/app/run", Path: "/usr/share/app/table.dat", Kind: "file"}}
	if diff := cmp.Diff(want, pp.PathRefs); diff != "" {
		t.Errorf("PathRefs (-want +got):\n%s", diff)
	}
	res, err := pp.Zip(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(res.Warnings, WarnOriginalPaths) || len(res.PathRefs) != 1 {
		t.Errorf("zip warnings %q, path refs %v: want a WarnOriginalPaths warning", res.Warnings, res.PathRefs)
	}
	if _, err := pp.Image(ctx); err == nil {
		t.Error("a Prepared packaged twice")
	}

	// The same warning from Package itself, whose scan rides on the
	// extraction.
	var buf bytes.Buffer
	direct, err := Package(ctx, mk(named), &buf, WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, direct.PathRefs); diff != "" {
		t.Errorf("Package PathRefs (-want +got):\n%s", diff)
	}

	pp, err = Prepare(ctx, mk(plain), WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	if pp.Format != FormatZip || len(pp.PathRefs) != 0 {
		t.Errorf("Format = %q, refs %v, want zip and none", pp.Format, pp.PathRefs)
	}
	ir, err := pp.Image(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	if ir.Shape != ShapeWhole {
		t.Errorf("Image shape %q", ir.Shape)
	}

	// The command line and the environment name paths too: an exec-form
	// argument and an ENV value the zip leaves as written.
	cfg := v1.Config{Entrypoint: []string{"/app/run", "--table=/usr/share/app/table.dat"}, Env: []string{"PATH=/usr/bin", "TABLES=/usr/share/app"}}
	pp, err = Prepare(ctx, imagetest.Serve(t, testkit.Image(t, cfg, []testkit.File{
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/run", From: plain, Mode: 0o755},
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/share/", Type: tar.TypeDir},
		{Name: "usr/share/app/", Type: tar.TypeDir},
		{Name: "usr/share/app/table.dat", Body: "42\n"},
	})), WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	wantCmd := []image.PathRef{
		{File: "(command)", Path: "/usr/share/app/table.dat", Kind: "file"},
		{File: "(env TABLES)", Path: "/usr/share/app", Kind: "dir"},
	}
	if diff := cmp.Diff(wantCmd, pp.PathRefs); diff != "" || pp.Format != FormatImage {
		t.Errorf("Prepare of a command naming paths: format %s, refs (-want +got):\n%s", pp.Format, diff)
	}
	zres, err := pp.Zip(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCmd, zres.PathRefs); diff != "" {
		t.Errorf("the zip's refs differ from Prepare's (-want +got):\n%s", diff)
	}
}

// TestPackagedImage: an image package written and opened again is
// recognized with its manifest, and is not packaged a second time.
func TestPackagedImage(t *testing.T) {
	ctx := context.Background()
	src := imagetest.Serve(t, imageTestSource(t))
	if _, ok, err := PackagedImage(src); ok || err != nil {
		t.Errorf("PackagedImage(source) = %v, %v; want not a package", ok, err)
	}
	res := mustPackageImage(t, src)
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := WriteImage(ctx, res.Image, "oci:"+dir); err != nil {
		t.Fatal(err)
	}
	pkg := imagetest.Open(t, "oci:"+dir)
	m, ok, err := PackagedImage(pkg)
	if err != nil || !ok {
		t.Fatalf("PackagedImage(package) = %v, %v", ok, err)
	}
	if diff := cmp.Diff(res.Manifest, *m); diff != "" {
		t.Errorf("manifest read back (-want +got):\n%s", diff)
	}
	for _, f := range []func() error{
		func() error { _, err := PackageImage(ctx, pkg, WithBootstrap(testBootstrap)); return err },
		func() error { _, err := Package(ctx, pkg, io.Discard, WithBootstrap(testBootstrap)); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "already a Lambda image package") {
			t.Errorf("packaging an image package again: %v, want a refusal", err)
		}
	}
}
