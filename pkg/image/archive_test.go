package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// saveArchive is a docker save archive: manifest.json, a config and
// uncompressed layers at the given names, plus extra members.
type saveArchive struct {
	layers   [][]tf
	names    []string // member names of the layers; default lN/layer.tar
	unstored []int    // layers named in manifest.json but not stored
	diffIDs  int      // diff IDs in the config (default: one per layer)
	extra    []tf     // more members, after the layers (links...)
	manifest string   // replaces manifest.json when set
}

func (s saveArchive) bytes(t *testing.T) []byte {
	t.Helper()
	var members []tf
	var diffs, names []string
	for n, l := range s.layers {
		b := tarBytes(t, l...)
		diffs = append(diffs, "sha256:"+sha256Hex(b))
		nm := filepath.ToSlash(filepath.Join("l"+string(rune('0'+n)), "layer.tar"))
		if n < len(s.names) {
			nm = s.names[n]
		}
		names = append(names, nm)
		if !slices.Contains(s.unstored, n) {
			members = append(members, file(nm, string(b)))
		}
	}
	if s.diffIDs > 0 {
		diffs = diffs[:s.diffIDs]
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffs}})
	members = append(members, file("config.json", string(cfg)))
	members = append(members, s.extra...)
	m := s.manifest
	if m == "" {
		b, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"example.com/app:v1"}, "Layers": names}})
		m = string(b)
	}
	members = append(members, file("manifest.json", m))
	return tarBytes(t, members...)
}

func writeArchive(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerArchiveDigestUnchanged: a docker-archive of gzip layers (as
// go-containerregistry, crane and extract write them) keeps the digest
// go-containerregistry's tarball.Image gave it, and reads the same files.
func TestDockerArchiveDigestUnchanged(t *testing.T) {
	img := withPlatform(t, testImage(t, "digest"), "linux", "amd64", "")
	archive := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("example.com/app:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	old, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(context.Background(), "docker-archive:"+archive)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if want := mustDigest(t, old); got.Digest != want {
		t.Errorf("Digest = %s, tarball.Image's = %s", got.Digest, want)
	}
	om, _ := old.Manifest()
	gm, _ := got.V1().Manifest()
	if diff := cmp.Diff(om, gm); diff != "" {
		t.Errorf("manifest (-tarball.Image +Open):\n%s", diff)
	}
	idx, err := BuildIndex(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if c := contents(t, got, idx); c["/etc/marker"] != "digest" {
		t.Errorf("/etc/marker = %q", c["/etc/marker"])
	}
}

// TestDockerSaveArchive reads a docker save archive: uncompressed layers,
// one reached through a symlink and one through a hard link, listed as
// uncompressed layers whose digests are their diff IDs.
func TestDockerSaveArchive(t *testing.T) {
	layers := [][]tf{
		{dir("etc"), file("etc/a", "one")},
		{file("etc/b", "two")},
		{file("etc/c", "three")},
	}
	// l1 and l2 are stored elsewhere and linked, as docker save did for
	// layers shared between images.
	b1, b2 := tarBytes(t, layers[1]...), tarBytes(t, layers[2]...)
	s := saveArchive{
		layers:   layers,
		unstored: []int{1, 2},
		extra: []tf{
			file("blobs/one.tar", string(b1)), symlink("l1/layer.tar", "../blobs/one.tar"),
			file("blobs/two.tar", string(b2)), hardlink("l2/layer.tar", "/blobs/two.tar"),
		},
	}
	archive := writeArchive(t, s.bytes(t))
	ctx := context.Background()
	img, err := Open(ctx, "docker-archive:"+archive+":example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	m, err := img.V1().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for n, l := range m.Layers {
		if l.MediaType != types.DockerUncompressedLayer || l.Digest.String() != img.Layers[n].DiffID || l.Size != int64(len(tarBytes(t, layers[n]...))) {
			t.Errorf("layer %d descriptor = %+v, want uncompressed, digest = diff ID %s", n, l, img.Layers[n].DiffID)
		}
	}
	idx, err := BuildIndex(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/etc/a": "one", "/etc/b": "two", "/etc/c": "three"}
	if diff := cmp.Diff(want, contents(t, img, idx)); diff != "" {
		t.Errorf("contents (-want +got):\n%s", diff)
	}
	// The v1 layers read the same bytes (inspect's layer report and the
	// image package read them so).
	ls, _ := img.V1().Layers()
	rc, err := ls[2].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, b2) {
		t.Errorf("layer 2 Uncompressed: %d bytes, want the %d stored", len(got), len(b2))
	}
}

// TestArchiveHostile: broken or hostile archives fail Open (or the read
// of the layer) with an error saying what is wrong, and nothing is written
// anywhere (TMPDIR stays empty).
func TestArchiveHostile(t *testing.T) {
	layer := [][]tf{{file("etc/a", "one")}}
	good := saveArchive{layers: layer}.bytes(t)
	cut := bytes.Index(good, []byte("config.json")) // a header
	tests := []struct {
		name    string
		archive []byte
		err     string
	}{
		{"no manifest.json", tarBytes(t, file("config.json", "{}")), `not a docker-archive (docker save): "manifest.json" is not in the archive`},
		{"not a tar", []byte("this is not a tar archive at all, it is text"), "image.tar: reading the archive's headers: unexpected EOF"},
		{"empty", nil, "not a tar archive, or an empty one"},
		{"layer missing", saveArchive{layers: layer, unstored: []int{0}}.bytes(t), `layer 0 (l0/layer.tar): "l0/layer.tar" is not in the archive`},
		{"symlink to nowhere", saveArchive{layers: layer, unstored: []int{0}, extra: []tf{symlink("l0/layer.tar", "missing.tar")}}.bytes(t), `"l0/layer.tar" in the archive links to "l0/missing.tar", which is not in the archive`},
		{"symlink cycle", saveArchive{layers: layer, names: []string{"a"}, unstored: []int{0}, extra: []tf{symlink("a", "b"), symlink("b", "a")}}.bytes(t), "more than 16 links, or a link cycle"},
		{"symlink out of the archive", saveArchive{layers: layer, names: []string{"a"}, unstored: []int{0}, extra: []tf{symlink("a", "../../../../etc/passwd")}}.bytes(t), `"a" in the archive links to "etc/passwd", which is not in the archive`},
		{"member names escaping", saveArchive{layers: layer, names: []string{"../../x/layer.tar"}}.bytes(t), ""},
		{"diff IDs", saveArchive{layers: [][]tf{layer[0], layer[0]}, diffIDs: 1}.bytes(t), "manifest.json lists 2 layers but the config has 1 diff IDs"},
		{"two images, no tag", saveArchive{layers: layer, manifest: `[{"Config":"config.json","RepoTags":["a:1"]},{"Config":"config.json","RepoTags":["b:1"]}]`}.bytes(t), "holds 2 images; name one with docker-archive:FILE:REF (tags: a:1, b:1)"},
		{"bad manifest.json", saveArchive{layers: layer, manifest: `{"x":`}.bytes(t), "parsing manifest.json"},
		{"truncated in a header", good[:cut+100], "reading the archive's headers"},
		{"truncated in a member", good[:1024+10], `archive member "l0/layer.tar" declares`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			archive := writeArchive(t, tt.archive)
			img, err := Open(context.Background(), "docker-archive:"+archive)
			if tt.err == "" {
				// Names are cleaned, never used as paths: the layer
				// stored as ../../x/layer.tar is x/layer.tar.
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				idx, err := BuildIndex(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				if c := contents(t, img, idx); c["/etc/a"] != "one" {
					t.Errorf("/etc/a = %q", c["/etc/a"])
				}
				img.Close()
				return
			}
			if err == nil {
				img.Close()
				t.Fatalf("Open succeeded, want an error with %q", tt.err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Open error = %v, want %q", err, tt.err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("Open left %d files in TMPDIR", len(left))
			}
		})
	}
}

// TestArchiveHugeMembers: a member declaring more bytes than the archive
// holds, and a JSON member larger than maxArchiveJSON, are refused before
// anything is read into memory.
func TestArchiveHugeMembers(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Size: 1 << 32, Mode: 0o644})
	archive := writeArchive(t, buf.Bytes()[:512])
	if _, err := Open(context.Background(), "docker-archive:"+archive); err == nil || !strings.Contains(err.Error(), `archive member "manifest.json" declares 4294967296 bytes at offset 512, past the end of the archive (512 bytes)`) {
		t.Errorf("Open of a member past the end: error = %v", err)
	}

	// A sparse file: manifest.json of 65 MiB of zeros, then the end blocks.
	big := filepath.Join(t.TempDir(), "big.tar")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(maxArchiveJSON + 1<<20)
	hdr := make([]byte, 512)
	var hb bytes.Buffer
	tw = tar.NewWriter(&hb)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
	copy(hdr, hb.Bytes())
	f.Write(hdr)
	if err := f.Truncate(512 + size + 1024); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(context.Background(), "docker-archive:"+big); err == nil || !strings.Contains(err.Error(), `"manifest.json" in the archive is 68157440 bytes, more than 64 MiB`) {
		t.Errorf("Open of a 65 MiB manifest.json: error = %v", err)
	}
}

// ociLayout writes img as an OCI layout directory.
func ociLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarOf returns the tar of dir as an oci-archive file.
func tarOf(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, dir, out)
	return out
}

func mustMediaType(t *testing.T, img v1.Image) types.MediaType {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

// TestOCIArchiveInPlace: an oci-archive reads the same image as its
// layout (same digest, same files) without unpacking anything, and a
// blob that does not match its digest, a layer of the wrong size, a
// missing layer or a tar without index.json fail with errors saying so.
func TestOCIArchiveInPlace(t *testing.T) {
	img := withPlatform(t, testImage(t, "oci"), "linux", "amd64", "")
	dir := ociLayout(t, img)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := context.Background()
	got, err := Open(ctx, "oci-archive:"+tarOf(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Digest != mustDigest(t, img) {
		t.Errorf("Digest = %s, want %s", got.Digest, mustDigest(t, img))
	}
	if mt, _ := got.V1().MediaType(); mt != mustMediaType(t, img) {
		t.Errorf("media type = %s, want the manifest's %s", mt, mustMediaType(t, img))
	}
	idx, err := BuildIndex(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if c := contents(t, got, idx); c["/etc/marker"] != "oci" {
		t.Errorf("/etc/marker = %q", c["/etc/marker"])
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("reading the oci-archive left %d files in TMPDIR", len(left))
	}

	m, _ := img.Manifest()
	cfgBlob := filepath.Join("blobs", "sha256", m.Config.Digest.Hex)
	layerBlob := filepath.Join("blobs", "sha256", m.Layers[1].Digest.Hex)
	tests := []struct {
		name   string
		change func(dir string) error
		err    string
	}{
		{"config tampered", func(dir string) error { return os.WriteFile(filepath.Join(dir, cfgBlob), []byte("{}"), 0o644) },
			"blob " + m.Config.Digest.String() + " in the archive does not match its digest"},
		{"no index.json", func(dir string) error { return os.Remove(filepath.Join(dir, "index.json")) }, "not an OCI layout archive"},
		{"layer missing", func(dir string) error { return os.Remove(filepath.Join(dir, layerBlob)) }, `layer 1: "blobs/sha256/` + m.Layers[1].Digest.Hex + `" is not in the archive`},
		{"layer cut", func(dir string) error { return os.Truncate(filepath.Join(dir, layerBlob), 10) }, "is 10 bytes in the archive, the manifest says"},
	}
	for _, tt := range tests {
		d := ociLayout(t, img)
		if err := tt.change(d); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ctx, "oci-archive:"+tarOf(t, d))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Open error = %v, want %q", tt.name, err, tt.err)
		}
	}
}

// FuzzIndexArchive: the member index of any bytes never panics, every
// member it returns lies inside the archive, and looking any of them up
// ends (links resolve to a member inside the archive or fail).
func FuzzIndexArchive(f *testing.F) {
	f.Add(tarBytes(f, file("manifest.json", "[]"), symlink("a", "b"), hardlink("b", "manifest.json"), dir("d")))
	f.Add(tarBytes(f, symlink("a", "a")))
	f.Add([]byte("not a tar"))
	var pax bytes.Buffer
	tw := tar.NewWriter(&pax)
	tw.WriteHeader(&tar.Header{Name: strings.Repeat("long/", 40) + "x", Typeflag: tar.TypeReg, Size: 3, PAXRecords: map[string]string{"comment": "c"}})
	tw.Write([]byte("abc"))
	tw.Close()
	f.Add(pax.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		members, err := indexArchive(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		a := &archive{members: members, size: int64(len(b))}
		for name, m := range members {
			if m.typ == tar.TypeReg && (m.off < 0 || m.size < 0 || m.off+m.size > int64(len(b))) {
				t.Fatalf("member %q at %d+%d outside the %d-byte archive", name, m.off, m.size, len(b))
			}
			if r, err := a.lookup(name); err == nil && (r.typ != tar.TypeReg || r.off+r.size > int64(len(b))) {
				t.Fatalf("lookup(%q) = %+v", name, r)
			}
		}
	})
}
