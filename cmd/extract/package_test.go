package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// staticArchive writes a docker-archive holding a static Go program at
// /usr/local/bin/upper, its ENTRYPOINT.
func staticArchive(t *testing.T) string {
	t.Helper()
	prog := testkit.GoProgram(t, "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() { io.Copy(os.Stdout, os.Stdin) }\n", "amd64")
	img := testkit.Image(t, v1.Config{Entrypoint: []string{"upper"}, Env: []string{"PATH=/usr/local/bin"}},
		[]testkit.File{{Name: "usr/local/bin/upper", From: prog, Mode: 0o755}})
	return testkit.DockerArchive(t, img, "upper")
}

func runPackage(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"extract", "package"}, args...))
	return out.String(), errOut.String(), err
}

func TestPackageCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program and the bootstrap")
	}
	archive := staticArchive(t)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")

	// Flags after IMAGE, --json.
	stdout, stderr, err := runPackage(t, "docker-archive:"+archive, "-o", zipPath, "--suffix", ".tsv", "--json")
	if err != nil {
		t.Fatalf("package: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(stderr, "I'm coming out") {
		t.Errorf("stderr does not start with the banner: %q", stderr)
	}
	var doc struct {
		Path       string            `json:"path"`
		ZippedSize int64             `json:"zipped_size"`
		CodeSHA256 string            `json:"code_sha256"`
		Arch       string            `json:"arch"`
		Manifest   xruntime.Manifest `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	zipped, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipped)
	if doc.Path != zipPath || doc.ZippedSize != int64(len(zipped)) || doc.CodeSHA256 != base64.StdEncoding.EncodeToString(sum[:]) || doc.Arch != "x86_64" {
		t.Errorf("--json = %+v; want path %s, %d bytes, the zip's CodeSha256, x86_64", doc, zipPath, len(zipped))
	}
	if doc.Manifest.Program != "/usr/local/bin/upper" || doc.Manifest.Input.Suffix != ".tsv" {
		t.Errorf("manifest program %q, suffix %q; want /usr/local/bin/upper, .tsv", doc.Manifest.Program, doc.Manifest.Input.Suffix)
	}

	// Text output: the same zip again, byte for byte.
	again := filepath.Join(dir, "again.zip")
	stdout, stderr, err = runPackage(t, "--suffix", ".tsv", "-o", again, "docker-archive:"+archive)
	if err != nil {
		t.Fatalf("package: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if lines[0] != again || !strings.Contains(stdout, "CodeSha256: "+doc.CodeSHA256) {
		t.Errorf("stdout = %q; want the zip path first and CodeSha256 %s", stdout, doc.CodeSHA256)
	}
	if b, _ := os.ReadFile(again); !bytes.Equal(b, zipped) {
		t.Error("packaging the same image with the same flags twice gave different zips")
	}

	// -o -: the zip on stdout, the summary on stderr.
	stdout, stderr, err = runPackage(t, "docker-archive:"+archive, "--suffix", ".tsv", "-o", "-")
	if err != nil {
		t.Fatalf("package -o -: %v\n%s", err, stderr)
	}
	if stdout != string(zipped) {
		t.Errorf("package -o - wrote %d bytes to stdout, want the %d-byte zip", len(stdout), len(zipped))
	}
	if !strings.Contains(stderr, "CodeSha256: "+doc.CodeSHA256) {
		t.Errorf("package -o - stderr = %q, want the summary", stderr)
	}
}

func TestPackageCommandErrors(t *testing.T) {
	archive := staticArchive(t)
	out := filepath.Join(t.TempDir(), "fn.zip")
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no image", []string{"-o", out}, exitUsage},
		{"two images", []string{"a", "b"}, exitUsage},
		{"bad entrypoint JSON", []string{"--entrypoint", "[nope", "docker-archive:" + archive}, exitUsage},
		{"bad input mode", []string{"docker-archive:" + archive, "--input", "pipe"}, exitUsage},
		{"bad stdout mode", []string{"docker-archive:" + archive, "--stdout", "socket"}, exitUsage},
		{"unknown flag after image", []string{"docker-archive:" + archive, "--nope"}, exitUsage},
		{"missing entrypoint", []string{"docker-archive:" + archive, "--entrypoint", "/no/such/program", "-o", out}, exitNotFound},
		{"looping output", []string{"docker-archive:" + archive, "--prefix", "", "-o", out}, exitFailure},
		{"relative output dir", []string{"docker-archive:" + archive, "--output-dir", "out", "-o", out}, exitFailure},
		{"stdout also without an output file", []string{"docker-archive:" + archive, "--stdout-also", "-o", out}, exitFailure},
		{"output dir under the trigger prefix", []string{"docker-archive:" + archive, "--output-dir", "/out", "--output-prefix", "input/out/", "-o", out}, exitFailure},
		{"bad format", []string{"docker-archive:" + archive, "--format", "tarball", "-o", out}, exitUsage},
		{"slim zip", []string{"docker-archive:" + archive, "--slim", "-o", out}, exitUsage},
		{"zip to an image destination", []string{"docker-archive:" + archive, "--format", "zip", "-o", "oci:" + out}, exitUsage},
		{"image to a file", []string{"docker-archive:" + archive, "--format", "image", "-o", out}, exitUsage},
		{"auto chose a zip, -o is an image", []string{"docker-archive:" + archive, "--format", "auto", "-o", "oci:" + out}, exitRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runPackage(t, tt.args...)
			if err == nil {
				t.Fatalf("package %q succeeded, want exit code %d", tt.args, tt.code)
			}
			if got := exitCode(err); got != tt.code {
				t.Errorf("package %q: exit code %d (%v), want %d\n%s", tt.args, got, err, tt.code, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("package %q left %s behind", tt.args, out)
			}
		})
	}
}

func TestPackageCommandImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program and the bootstrap")
	}
	archive := staticArchive(t)
	dir := filepath.Join(t.TempDir(), "layout")

	stdout, stderr, err := runPackage(t, "docker-archive:"+archive, "-o", "oci:"+dir)
	if err != nil {
		t.Fatalf("package -o oci:DIR: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if !strings.HasPrefix(lines[0], dir+"@sha256:") || !strings.Contains(stdout, "format:     image (whole)") ||
		!strings.Contains(stdout, "--slim:     would leave out 0 files") {
		t.Errorf("stdout = %q; want the layout by digest, the whole shape and what --slim leaves out", stdout)
	}
	var idx v1.IndexManifest
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json %s (%v): want one manifest", b, err)
	}
	if want := strings.TrimPrefix(lines[0], dir+"@"); idx.Manifests[0].Digest.String() != want {
		t.Errorf("index.json holds %s, stdout says %s", idx.Manifests[0].Digest, want)
	}

	// --json, --slim, auto: the static program names no path, but -o
	// asks for an image: --format image is explicit.
	stdout, stderr, err = runPackage(t, "docker-archive:"+archive, "--format", "image", "--slim", "-o", "docker-archive:"+filepath.Join(t.TempDir(), "fn.tar"), "--json")
	if err != nil {
		t.Fatalf("package --slim: %v\n%s", err, stderr)
	}
	var doc struct {
		Path   string `json:"path"`
		Format string `json:"format"`
		Shape  string `json:"shape"`
		Digest string `json:"digest"`
		Layers int    `json:"layers"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	if doc.Format != "image" || doc.Shape != "slim" || doc.Layers != 2 || !strings.HasSuffix(doc.Path, "@"+doc.Digest) {
		t.Errorf("--json = %+v; want an image, slim, 2 layers, the path by digest", doc)
	}

	// auto picks a zip for a program that names no image path.
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	_, stderr, err = runPackage(t, "docker-archive:"+archive, "--format", "auto", "-o", zipPath)
	if err != nil {
		t.Fatalf("package --format auto: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "format: zip (") {
		t.Errorf("stderr %q does not say auto chose a zip", stderr)
	}
	if _, err := os.Stat(zipPath); err != nil {
		t.Error(err)
	}
}

func TestImageDestination(t *testing.T) {
	for out, want := range map[string]bool{
		"fn.zip":                   false,
		"-":                        false,
		"out/fn":                   false,
		"function":                 false,
		"oci:./layout":             true,
		"docker-archive:fn.tar":    true,
		"docker://example.com/x":   true,
		"127.0.0.1:5000/extract-f": true,
		"localhost/fn:v1":          true,
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/extract-fn": true,
		"gcr.io/p/fn.zip": false,
	} {
		if got := imageDestination(out); got != want {
			t.Errorf("imageDestination(%q) = %v, want %v", out, got, want)
		}
	}
}
