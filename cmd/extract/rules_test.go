package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

// scriptLayout writes an OCI layout of an image made of this Debian
// machine's uname and dash, a "#!/usr/bin/sh" script running uname by name,
// and data files the data rules add.
func scriptLayout(t *testing.T) string {
	t.Helper()
	root := testkit.HostRoot(t, map[string]string{
		"/usr/bin/uname":                                 "/usr/bin/uname",
		"/usr/bin/sh":                                    "/usr/bin/dash",
		"/usr/lib/x86_64-linux-gnu/libc.so.6":            "/lib/x86_64-linux-gnu/libc.so.6",
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
	}, map[string]string{"/lib64": "usr/lib64", "/usr/lib64/ld-linux-x86-64.so.2": "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"})
	mustWriteFile(t, filepath.Join(root, "app", "run.sh"), []byte("#!/usr/bin/sh\nuname -s && exit 0\n"), 0o755)
	mustWriteFile(t, filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	mustWriteFile(t, filepath.Join(root, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	mustWriteFile(t, filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt"), []byte("certs\n"), 0o644)
	img, err := imagebuild.FromDir(root, v1.Config{Entrypoint: []string{"/app/run.sh"}, Env: []string{"PATH=/usr/bin"}, WorkingDir: "/"})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.OCILayout(t, img, "layout")
}

func mustWriteFile(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestInspectRuleFlags: inspect applies the rules beyond ELF by default
// (the script's body runs uname; passwd, group and certs are data) and
// --no-scan and --no-data turn them off.
func TestInspectRuleFlags(t *testing.T) {
	dir := scriptLayout(t)
	tests := []struct {
		name  string
		flags []string
		want  map[string]string // path → first reason kind, for the files beyond ELF
	}{
		{"default", nil, map[string]string{"/usr/bin/uname": "command", "/etc/passwd": "data", "/etc/group": "data", "/etc/ssl/certs/ca-certificates.crt": "data"}},
		{"no-scan", []string{"--no-scan"}, map[string]string{"/etc/passwd": "data", "/etc/group": "data", "/etc/ssl/certs/ca-certificates.crt": "data"}},
		{"no-data passwd,certs", []string{"--no-data", "passwd,certs"}, map[string]string{"/usr/bin/uname": "command"}},
		{"no-data all and no-scan", []string{"--no-data", "all", "--no-scan"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"inspect", "--json", "--no-layers"}, tt.flags...), "oci:"+dir)
			out, stderr, err := runApp(t, args...)
			if err != nil {
				t.Fatalf("inspect %v: %v\n%s", tt.flags, err, stderr)
			}
			var doc struct {
				Closure image.ClosureResult `json:"closure"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("decoding the JSON: %v\n%s", err, out)
			}
			got := map[string]string{}
			for _, f := range doc.Closure.Files {
				switch k := f.Why[0].Kind; k {
				case "command", "data", "script", "module", "library":
					got[f.Path] = k
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("inspect %v: files beyond ELF (-want +got):\n%s", tt.flags, diff)
			}
		})
	}
	_, stderr, err := runApp(t, "inspect", "--no-data", "bogus", "oci:"+dir)
	if err == nil || !strings.Contains(err.Error()+stderr, "bogus") {
		t.Errorf("inspect --no-data bogus: %v %q, want a usage error naming it", err, stderr)
	}
}
