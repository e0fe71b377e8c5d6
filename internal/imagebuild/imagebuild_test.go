package imagebuild

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// mustTree makes a small root filesystem: a program, a merged-/usr style
// directory symlink, a hard link and a setuid file.
func mustTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "usr/local/bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/lib/libx.so.1"), []byte("lib"), 0o644))
	must(os.Symlink("usr/lib", filepath.Join(dir, "lib")))
	must(os.WriteFile(filepath.Join(dir, "usr/local/bin/prog"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.Link(filepath.Join(dir, "usr/lib/libx.so.1"), filepath.Join(dir, "usr/lib/liby.so.1")))
	must(os.WriteFile(filepath.Join(dir, "usr/lib/su"), []byte("x"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/lib/su"), 0o755|fs.ModeSetuid))
	return dir
}

type entry struct {
	Name, Link string
	Type       byte
	Mode       int64
	Body       string
}

func layerEntries(t *testing.T, l v1.Layer) []entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []entry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("entry %q: time %v uid %d gid %d, want epoch and root", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{Name: h.Name, Link: h.Linkname, Type: h.Typeflag, Mode: h.Mode, Body: string(b)})
	}
}

func TestFromDirLayers(t *testing.T) {
	dir := mustTree(t)
	cfg := v1.Config{Entrypoint: []string{"/usr/local/bin/prog"}, Env: []string{"PATH=/usr/bin"}}
	img, err := FromDir(dir, cfg,
		WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}),
		WithLayer(Layer{CreatedBy: "COPY prog /usr/local/bin/", Prefixes: []string{"/usr/local"}}),
		WithWhiteouts("/usr/lib/su"))
	if err != nil {
		t.Fatalf("FromDir: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("FromDir made %d layers, want 3", len(layers))
	}
	tests := []struct {
		name  string
		layer int
		want  []entry
	}{
		{"base", 0, []entry{
			{Name: "lib", Link: "usr/lib", Type: tar.TypeSymlink, Mode: 0o777},
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/lib/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/lib/libx.so.1", Type: tar.TypeReg, Mode: 0o644, Body: "lib"},
			{Name: "usr/lib/liby.so.1", Link: "usr/lib/libx.so.1", Type: tar.TypeLink, Mode: 0o644},
			{Name: "usr/lib/su", Type: tar.TypeReg, Mode: 0o4755, Body: "x"},
		}},
		{"program", 1, []entry{
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/local/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/local/bin/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/local/bin/prog", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\necho hi\n"},
		}},
		{"whiteouts", 2, []entry{
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/lib/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/lib/.wh.su", Type: tar.TypeReg, Mode: 0o644},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := layerEntries(t, layers[tt.layer])
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("layer %d entries (-want +got):\n%s", tt.layer, diff)
			}
		})
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "arm64" || cf.OS != "linux" {
		t.Errorf("platform = %s/%s, want linux/arm64", cf.OS, cf.Architecture)
	}
	if diff := cmp.Diff(cfg.Entrypoint, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	var history []string
	for _, h := range cf.History {
		history = append(history, h.CreatedBy)
	}
	if diff := cmp.Diff([]string{"ADD rootfs /", "COPY prog /usr/local/bin/", "RUN rm -rf /usr/lib/su"}, history); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestFromDirDeterministic(t *testing.T) {
	dir := mustTree(t)
	digest := func() v1.Hash {
		img, err := FromDir(dir, v1.Config{Cmd: []string{"x"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := digest()
	// Touching files changes their host times, never the image.
	now := Epoch.AddDate(50, 0, 0)
	if err := os.Chtimes(filepath.Join(dir, "usr/lib/libx.so.1"), now, now); err != nil {
		t.Fatal(err)
	}
	if b := digest(); a != b {
		t.Errorf("FromDir digest changed with host times: %s then %s", a, b)
	}
}

func TestFromDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		opts []Option
	}{
		{"missing dir", filepath.Join(t.TempDir(), "nope"), nil},
		{"not a dir", file, nil},
		{"relative prefix", t.TempDir(), []Option{WithLayer(Layer{Prefixes: []string{"usr"}})}},
		{"no prefix", t.TempDir(), []Option{WithLayer(Layer{})}},
		{"bad platform", t.TempDir(), []Option{WithPlatform(v1.Platform{OS: "linux"})}},
		{"whiteout root", t.TempDir(), []Option{WithWhiteouts("/")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromDir(tt.dir, v1.Config{}, tt.opts...); err == nil {
				t.Errorf("FromDir(%q) succeeded, want an error", tt.dir)
			}
		})
	}
}

func TestFixture(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "demo/usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo/usr/local/bin/p"), []byte("p"), 0o755); err != nil {
		t.Fatal(err)
	}
	js := `{"platform": "linux/arm64", "config": {"Entrypoint": ["/usr/local/bin/p"], "WorkingDir": "/"},
	  "layers": [{"created_by": "COPY p", "prefixes": ["/usr/local"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "demo.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Fixture(dir, "demo")
	if err != nil {
		t.Fatalf("Fixture: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "arm64" || len(cf.History) != 2 || cf.Config.Entrypoint[0] != "/usr/local/bin/p" {
		t.Errorf("Fixture config = arch %q, %d history entries, entrypoint %q", cf.Architecture, len(cf.History), cf.Config.Entrypoint)
	}
	if _, err := Fixture(dir, "absent"); err == nil {
		t.Error("Fixture(absent) succeeded, want an error")
	}
}
