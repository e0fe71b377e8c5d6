package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comingout/extract/internal/testkit"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// invokeZip writes a package with the real bootstrap and the runtime's
// static test program run with args.
func invokeZip(t *testing.T, args ...string) string {
	t.Helper()
	return invokeZipWith(t, nil, args...)
}

// invokeZipWith is invokeZip with the manifest changed by edit first.
func invokeZipWith(t *testing.T, edit func(*xruntime.Manifest), args ...string) string {
	t.Helper()
	m := xruntime.Manifest{Version: 1, Program: "/bin/testprog", Args: append([]string{"testprog"}, args...)}
	if edit != nil {
		edit(&m)
	}
	return testkit.ZipPath(t,
		testkit.ZipFile{Name: "bootstrap", Mode: 0o755, Body: testkit.GoBuild(t, testkit.Bootstrap, "")},
		testkit.ZipFile{Name: xruntime.ManifestPath, Body: testkit.JSON(t, m)},
		testkit.ZipFile{Name: "rootfs/bin/testprog", Mode: 0o755, Body: testkit.GoBuild(t, testkit.TestProg, "")},
	)
}

func TestInvokeCommand(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	csv := filepath.Join(t.TempDir(), "momentum data.csv")
	data := "mass,velocity\n2,3\n"
	if err := os.WriteFile(csv, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	okZip := invokeZip(t, "stderr", "2")

	stdout, stderr, code := runCLI(t, "invoke", okZip, "--csv", csv)
	if code != exitOK || stdout != data {
		t.Errorf("invoke --csv: code %d, stdout %q; want 0 and the CSV echoed\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "momentum data.csv: note 2") {
		t.Errorf("stderr lacks the program's log:\n%s", stderr)
	}

	stdout, stderr, code = runCLI(t, "invoke", "--json", okZip, "--csv", csv)
	var res struct {
		RequestID string `json:"request_id"`
		Output    string `json:"output"`
		OutputKey string `json:"output_key"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitOK {
		t.Fatalf("invoke --json: code %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if res.Output != data || res.OutputKey != "output/momentum data.csv" || res.RequestID == "" {
		t.Errorf("invoke --json = %+v", res)
	}

	stdout, stderr, code = runCLI(t, "invoke", invokeZip(t, "fail", "3", "2"), "--csv", csv)
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, "exited with status 3") {
		t.Errorf("failing invoke: code %d, stdout %q, stderr:\n%s\nwant code 1, no stdout and the exit status", code, stdout, stderr)
	}
}

// TestInvokeCommandOutputs: -o DIR saves every object of an output
// directory run under DIR and lists the files on stdout; --json lists the
// objects.
func TestInvokeCommandOutputs(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	csv := filepath.Join(t.TempDir(), "day1.csv")
	if err := os.WriteFile(csv, []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fn := invokeZipWith(t, func(m *xruntime.Manifest) {
		m.Input = xruntime.Input{Mode: "stdin", Prefix: "input/", Suffix: ".csv"}
		m.Output = xruntime.Output{Prefix: "output/", Dir: "/out", StdoutAlso: true}
	}, "write", "0", "to stdout", "/out/summary.csv=sum", "/out/plots/a.txt=plot")

	dir := t.TempDir()
	stdout, stderr, code := runCLI(t, "invoke", fn, "--csv", csv, "-o", dir)
	var want []string
	for _, rel := range []string{"day1.csv.stdout", "day1/plots/a.txt", "day1/summary.csv", "day1/_manifest.json"} {
		want = append(want, filepath.Join(dir, rel))
	}
	if got := strings.Fields(stdout); code != exitOK || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("invoke -o: code %d, stdout %q, want %q\nstderr:\n%s", code, stdout, want, stderr)
	}
	for rel, body := range map[string]string{"day1/summary.csv": "sum", "day1/plots/a.txt": "plot", "day1.csv.stdout": "to stdout\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || string(b) != body {
			t.Errorf("%s = %q (%v), want %q", rel, b, err, body)
		}
	}

	stdout, stderr, code = runCLI(t, "invoke", "--json", fn, "--csv", csv)
	var res struct {
		Outputs []struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitOK || len(res.Outputs) != 4 || res.Outputs[3].Key != "output/day1/_manifest.json" {
		t.Errorf("invoke --json: code %d, outputs %+v (%v), want 4 ending in the manifest\nstderr:\n%s", code, res.Outputs, err, stderr)
	}
}

func TestInvokeCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"invoke"},
		{"invoke", "fn.zip"},
		{"invoke", "fn.zip", "--csv", "a.csv", "--event", "e.json"},
		{"invoke", "fn.zip", "--bucket", "b"},
		{"invoke", "a.zip", "b.zip", "--csv", "a.csv"},
		{"invoke", "fn.zip", "--event", "e.json", "-o", "out"},
		{"invoke", "fn.zip", "--csv", "a.csv", "--log-format", "xml"},
		{"invoke", "oci:x", "--csv", "a.csv", "--uid", "0"},
		{"invoke", "oci:x", "--csv", "a.csv", "--uid", "993:x"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: code %d, want %d\n%s", args, code, exitUsage, stderr)
		}
	}
	stdout, _, _ := runCLI(t, "invoke", "--help")
	if !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "--csv") || !strings.Contains(stdout, "extract invoke oci:") {
		t.Errorf("invoke --help lacks examples:\n%s", stdout)
	}
}

// TestInvokeCommandImage packages a static program as a container image
// (oci:DIR) and invokes it with --csv, as the default uid and as another
// one: the output is the CSV the program copies.
func TestInvokeCommandImage(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	if testing.Short() {
		t.Skip("builds a program and the bootstrap")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	dir := filepath.Join(t.TempDir(), "upper")
	if _, stderr, err := runPackage(t, "docker-archive:"+staticArchive(t), "-o", "oci:"+dir); err != nil {
		t.Fatalf("package -o oci:DIR: %v\n%s", err, stderr)
	}
	csv := filepath.Join(t.TempDir(), "day1.csv")
	data := "mass,velocity\n2,3\n"
	if err := os.WriteFile(csv, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--uid", "993:990"}} {
		args := append([]string{"invoke", "oci:" + dir, "--csv", csv}, extra...)
		stdout, stderr, code := runCLI(t, args...)
		if code != exitOK || stdout != data {
			t.Errorf("%q: code %d, stdout %q; want 0 and the CSV copied\nstderr:\n%s", args, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "output=s3://local/output/day1.csv") {
			t.Errorf("%q: stderr lacks the output object:\n%s", args, stderr)
		}
	}
}
