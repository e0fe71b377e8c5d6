package main

import (
	"archive/zip"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
)

// TestPackageFlagsManifest: --suffix "", --pass-aws-credentials, {output}
// in --cmd and --stdout-also reach the zip's extract.json: an empty suffix
// written as such (not left out, which the bootstrap reads as ".csv"),
// pass_aws_credentials true, the argument {output} as written and
// output.stdout_also true.
func TestPackageFlagsManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program and the bootstrap")
	}
	archive := staticArchive(t)
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	if _, stderr, err := runPackage(t, "docker-archive:"+archive, "-o", zipPath, "--suffix", "", "--pass-aws-credentials",
		"--cmd", `["-o","{output}"]`, "--stdout-also"); err != nil {
		t.Fatalf("package: %v\n%s", err, stderr)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open("extract.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Input struct {
			Suffix *string `json:"suffix"`
		} `json:"input"`
		PassAWSCredentials bool     `json:"pass_aws_credentials"`
		Args               []string `json:"args"`
		Output             struct {
			StdoutAlso bool `json:"stdout_also"`
		} `json:"output"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("extract.json %s: %v", b, err)
	}
	if m.Input.Suffix == nil || *m.Input.Suffix != "" || !m.PassAWSCredentials {
		t.Errorf("extract.json = %s, want input.suffix \"\" and pass_aws_credentials true", b)
	}
	if len(m.Args) != 3 || m.Args[1] != "-o" || m.Args[2] != "{output}" || !m.Output.StdoutAlso {
		t.Errorf("extract.json = %s, want args [PROGRAM -o {output}] and output.stdout_also true", b)
	}
}
