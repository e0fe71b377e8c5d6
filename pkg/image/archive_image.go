package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archiveImage is one image of an archive: a v1.Image whose layers are
// read in place from the archive file.
type archiveImage struct {
	raw      []byte // the manifest
	digest   v1.Hash
	mt       types.MediaType
	manifest *v1.Manifest
	rawCfg   []byte
	layers   []*archiveLayer
}

// Layers implements v1.Image.
func (i *archiveImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		out[n] = l
	}
	return out, nil
}

// MediaType implements v1.Image.
func (i *archiveImage) MediaType() (types.MediaType, error) { return i.mt, nil }

// Size implements v1.Image: the size of the manifest.
func (i *archiveImage) Size() (int64, error) { return int64(len(i.raw)), nil }

// ConfigName implements v1.Image.
func (i *archiveImage) ConfigName() (v1.Hash, error) { return i.manifest.Config.Digest, nil }

// ConfigFile implements v1.Image.
func (i *archiveImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.rawCfg))
}

// RawConfigFile implements v1.Image.
func (i *archiveImage) RawConfigFile() ([]byte, error) { return i.rawCfg, nil }

// Digest implements v1.Image.
func (i *archiveImage) Digest() (v1.Hash, error) { return i.digest, nil }

// Manifest implements v1.Image.
func (i *archiveImage) Manifest() (*v1.Manifest, error) { return i.manifest.DeepCopy(), nil }

// RawManifest implements v1.Image.
func (i *archiveImage) RawManifest() ([]byte, error) { return i.raw, nil }

// LayerByDigest implements v1.Image.
func (i *archiveImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.desc.Digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with digest %s in the image", h)
}

// LayerByDiffID implements v1.Image.
func (i *archiveImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff ID %s in the image", h)
}

// archiveLayer is a layer stored in an archive: Compressed returns the
// stored bytes as they are (gzip, zstd, or a plain tar for the
// uncompressed media types), Uncompressed decompresses them.
type archiveLayer struct {
	a      *archive
	m      member
	desc   v1.Descriptor
	diffID v1.Hash
	// missing is why the layer cannot be read (a foreign layer whose blob
	// the archive does not hold), or nil.
	missing error
}

// Digest implements v1.Layer.
func (l *archiveLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }

// DiffID implements v1.Layer, from the image config.
func (l *archiveLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size implements v1.Layer.
func (l *archiveLayer) Size() (int64, error) { return l.desc.Size, nil }

// MediaType implements v1.Layer.
func (l *archiveLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor implements partial.Describable (foreign layers keep their
// URLs when the image is written elsewhere).
func (l *archiveLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

// Compressed implements v1.Layer: the stored bytes, read in place.
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	if l.missing != nil {
		return nil, l.missing
	}
	return l.a.open(l.m)
}

// Uncompressed implements v1.Layer.
func (l *archiveLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	return uncompress(rc)
}

// dockerEntry is one image of a docker-archive's manifest.json.
type dockerEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
}

// dockerArchiveImage reads the image tagged tag (nil: the only one) of the
// docker-archive a. It has no manifest of its own: the one made up for it
// is go-containerregistry's (tarball.Image) for gzip layers, so that the
// digest stays what it was when such archives were read through it: a
// Docker schema 2 manifest listing the config and each layer's stored
// blob. The digest of a gzip layer is taken from its name when the name
// is a digest (HEX.tar.gz as go-containerregistry writes it,
// blobs/sha256/HEX as docker save does), else the layer is hashed once. An
// uncompressed layer (docker save) is listed as one, with its diff ID as
// its digest: nothing is compressed or hashed.
func dockerArchiveImage(a *archive, tag *name.Tag, log *slog.Logger) (*archiveImage, error) {
	if _, err := a.lookup("manifest.json"); err != nil {
		return nil, fmt.Errorf("not a docker-archive (docker save): %w", err)
	}
	raw, err := a.readSmall("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("parsing manifest.json: %w", err)
	}
	e, err := findDockerEntry(entries, tag)
	if err != nil {
		return nil, err
	}
	rawCfg, err := a.readSmall(e.Config)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("parsing the config %q: %w", e.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("manifest.json lists %d layers but the config has %d diff IDs", len(e.Layers), len(cfg.RootFS.DiffIDs))
	}
	sum := sha256.Sum256(rawCfg)
	img := &archiveImage{mt: types.DockerManifestSchema2, rawCfg: rawCfg, manifest: &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(rawCfg)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}},
	}}
	for n, p := range e.Layers {
		l, err := dockerLayer(a, p, cfg.RootFS.DiffIDs[n], e.LayerSources, log)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", n, p, err)
		}
		img.layers = append(img.layers, l)
		img.manifest.Layers = append(img.manifest.Layers, l.desc)
	}
	if img.raw, err = json.Marshal(img.manifest); err != nil {
		return nil, err
	}
	sum = sha256.Sum256(img.raw)
	img.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	return img, nil
}

// findDockerEntry picks the image of entries tagged tag, or the only one.
func findDockerEntry(entries []dockerEntry, tag *name.Tag) (*dockerEntry, error) {
	var tags []string
	for _, e := range entries {
		tags = append(tags, e.RepoTags...)
	}
	sort.Strings(tags)
	if tag == nil {
		if len(entries) != 1 {
			return nil, fmt.Errorf("the archive holds %d images; name one with docker-archive:FILE:REF (tags: %s)", len(entries), strings.Join(tags, ", "))
		}
		return &entries[0], nil
	}
	for i, e := range entries {
		for _, s := range e.RepoTags {
			if t, err := name.NewTag(s); err == nil && t.Name() == tag.Name() {
				return &entries[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no image tagged %s in the archive (tags: %s)", tag, strings.Join(tags, ", "))
}

// dockerLayer describes the docker-archive layer stored at p.
func dockerLayer(a *archive, p string, diffID v1.Hash, sources map[v1.Hash]v1.Descriptor, log *slog.Logger) (*archiveLayer, error) {
	m, err := a.lookup(p)
	if err != nil {
		return nil, err
	}
	l := &archiveLayer{a: a, m: m, diffID: diffID}
	if d, ok := sources[diffID]; ok && !uncompressedType(d.MediaType) {
		// A foreign layer: listed as declared (as go-containerregistry).
		l.desc = d
		return l, nil
	}
	magic, err := a.head(m, 4)
	if err != nil {
		return nil, err
	}
	switch sniff(magic) {
	case plainTar:
		l.desc = v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: m.size, Digest: diffID}
		return l, nil
	case zstdCompressed:
		l.desc = v1.Descriptor{MediaType: types.OCILayerZStd, Size: m.size}
	default:
		l.desc = v1.Descriptor{MediaType: types.DockerLayer, Size: m.size}
	}
	if h, ok := digestFromName(p); ok {
		l.desc.Digest = h
		return l, nil
	}
	log.Debug("docker-archive layer not named by its digest; hashing it", "name", p, "bytes", m.size)
	if l.desc.Digest, err = a.hash(m); err != nil {
		return nil, err
	}
	return l, nil
}

// uncompressedType reports whether mt is an uncompressed layer type.
func uncompressedType(mt types.MediaType) bool {
	return mt == types.DockerUncompressedLayer || mt == types.OCIUncompressedLayer || mt == types.OCIUncompressedRestrictedLayer
}

// digestFromName returns the sha256 digest a layer's name in an archive
// spells: HEX, HEX.tar.gz, HEX.tar.zst, HEX.tar, sha256:HEX... or
// blobs/sha256/HEX.
func digestFromName(p string) (v1.Hash, bool) {
	base := strings.TrimPrefix(path.Base(archiveName(p)), "sha256:")
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.zst", ".tar", ".gz"} {
		if h, ok := strings.CutSuffix(base, ext); ok {
			base = h
			break
		}
	}
	if len(base) != 64 {
		return v1.Hash{}, false
	}
	for _, c := range base {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return v1.Hash{}, false
		}
	}
	return v1.Hash{Algorithm: "sha256", Hex: base}, true
}

// head returns the first n bytes of m (fewer if m is shorter).
func (a *archive) head(m member, n int64) ([]byte, error) {
	rc, err := a.open(m)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// hash returns the sha256 of m's bytes.
func (a *archive) hash(m member) (v1.Hash, error) {
	rc, err := a.open(m)
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	return h, err
}

// archiveIndex is an image index of an oci-archive (index.json or an
// index blob).
type archiveIndex struct {
	a      *archive
	raw    []byte
	digest v1.Hash
	mt     types.MediaType
}

// MediaType implements v1.ImageIndex.
func (x *archiveIndex) MediaType() (types.MediaType, error) { return x.mt, nil }

// Digest implements v1.ImageIndex.
func (x *archiveIndex) Digest() (v1.Hash, error) { return x.digest, nil }

// Size implements v1.ImageIndex.
func (x *archiveIndex) Size() (int64, error) { return int64(len(x.raw)), nil }

// RawManifest implements v1.ImageIndex.
func (x *archiveIndex) RawManifest() ([]byte, error) { return x.raw, nil }

// IndexManifest implements v1.ImageIndex.
func (x *archiveIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}

// descriptor returns the entry of the index for h.
func (x *archiveIndex) descriptor(h v1.Hash) (*v1.Descriptor, error) {
	m, err := x.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Digest == h {
			return &d, nil
		}
	}
	return nil, fmt.Errorf("no manifest %s in the index", h)
}

// ImageIndex implements v1.ImageIndex.
func (x *archiveIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.descriptor(h)
	if err != nil {
		return nil, err
	}
	raw, err := x.a.blob(h)
	if err != nil {
		return nil, err
	}
	return &archiveIndex{a: x.a, raw: raw, digest: h, mt: d.MediaType}, nil
}

// Image implements v1.ImageIndex.
func (x *archiveIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.descriptor(h)
	if err != nil {
		return nil, err
	}
	return ociArchiveImage(x.a, h, d.MediaType)
}

// ociIndex reads index.json of the oci-archive a.
func ociIndex(a *archive) (*archiveIndex, error) {
	if _, err := a.lookup("index.json"); err != nil {
		return nil, fmt.Errorf("not an OCI layout archive (oci-archive: takes a tar of an OCI layout, docker-archive: a docker save): %w", err)
	}
	raw, err := a.readSmall("index.json")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &archiveIndex{a: a, raw: raw, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, mt: types.OCIImageIndex}, nil
}

// ociArchiveImage reads the image whose manifest is blob h of a.
func ociArchiveImage(a *archive, h v1.Hash, mt types.MediaType) (*archiveImage, error) {
	raw, err := a.blob(h)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", h, err)
	}
	if mt == "" {
		mt = m.MediaType
	}
	rawCfg, err := a.blob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("parsing the config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s lists %d layers but the config has %d diff IDs", h, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &archiveImage{raw: raw, digest: h, mt: mt, manifest: m, rawCfg: rawCfg}
	for n, d := range m.Layers {
		l := &archiveLayer{a: a, desc: d, diffID: cfg.RootFS.DiffIDs[n]}
		l.m, err = a.lookup(blobName(d.Digest))
		switch {
		case err != nil && !d.MediaType.IsDistributable():
			l.missing = fmt.Errorf("layer %d (%s) is a foreign layer the archive does not hold", n, d.Digest)
		case err != nil:
			return nil, fmt.Errorf("layer %d: %w", n, err)
		case l.m.size != d.Size:
			return nil, fmt.Errorf("layer %d: %s is %d bytes in the archive, the manifest says %d", n, blobName(d.Digest), l.m.size, d.Size)
		}
		img.layers = append(img.layers, l)
	}
	return img, nil
}

// blobName is where an OCI layout keeps the blob h.
func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// blob reads the small blob h (a manifest, an index, a config) and checks
// its digest.
func (a *archive) blob(h v1.Hash) ([]byte, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm", h)
	}
	b, err := a.readSmall(blobName(h))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != h.Hex {
		return nil, errors.New("blob " + h.String() + " in the archive does not match its digest")
	}
	return b, nil
}
