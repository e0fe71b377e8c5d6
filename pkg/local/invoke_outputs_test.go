package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

func TestLocalOutputPath(t *testing.T) {
	for _, tt := range []struct{ key, want string }{
		{"output/day1.csv", "day1.csv"},
		{"output/day1/plots/a.png", "day1/plots/a.png"},
		{"output/day1/_manifest.json", "day1/_manifest.json"},
		{"elsewhere/x.csv", "elsewhere/x.csv"},
		{"output/../etc/passwd", ""},
		{"output/a//b", ""},
		{"output/a/", ""},
		{"output/", ""},
		{"/etc/passwd", ""},
		{`output/a\..\b`, ""},
	} {
		got, err := localOutputPath(tt.key, "output/")
		if tt.want == "" {
			if err == nil {
				t.Errorf("localOutputPath(%q) = %q, want refused", tt.key, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("localOutputPath(%q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
	}
}

// outputsManifest is testManifest with the trigger input/*.csv.
func outputsManifest(args ...string) xruntime.Manifest {
	m := testManifest(args...)
	m.Input.Prefix = "input/"
	return m
}

// TestInvokeOutputFile: a program writing {output} and, kept with
// StdoutAlso, stdout: the output object is the file; WithSaveOutputs saves
// both at their keys without the output prefix. Without StdoutAlso, and
// with nothing on stdout, only the file is written.
func TestInvokeOutputFile(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := outputsManifest("write", "0", "to stdout", "{output}=result")
	m.Output.StdoutAlso = true
	zipPath := mustPackage(t, m)
	csv := testkit.TempFile(t, "day1.csv", []byte("1,2\n"))

	var logs bytes.Buffer
	res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithLogWriter(&logs))
	if err != nil {
		t.Fatalf("Invoke: %v\n%s", err, logs.Bytes())
	}
	if string(res.Output) != "result" {
		t.Errorf("Output = %q, want the {output} file's %q", res.Output, "result")
	}
	dir := t.TempDir()
	res, err = Invoke(context.Background(), zipPath, WithCSV(csv), WithSaveOutputs(dir))
	if err != nil {
		t.Fatalf("Invoke(WithSaveOutputs): %v", err)
	}
	want := map[string]string{"day1.csv": "result", "day1.csv.stdout": "to stdout\n"}
	if diff := cmp.Diff(want, testkit.ReadTree(t, dir)); diff != "" {
		t.Errorf("saved outputs (-want +got):\n%s", diff)
	}
	wantOut := []InvokeOutput{
		{Bucket: LocalBucket, Key: "output/day1.csv", Size: 6, Path: filepath.Join(dir, "day1.csv")},
		{Bucket: LocalBucket, Key: "output/day1.csv.stdout", Size: 10, Path: filepath.Join(dir, "day1.csv.stdout")},
	}
	if diff := cmp.Diff(wantOut, res.Outputs); diff != "" {
		t.Errorf("Outputs (-want +got):\n%s", diff)
	}

	quiet := outputsManifest("write", "0", "", "{output}=result")
	res, err = Invoke(context.Background(), mustPackage(t, quiet), WithCSV(csv))
	if err != nil {
		t.Fatalf("Invoke of a program silent on stdout: %v", err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Key != "output/day1.csv" || string(res.Output) != "result" {
		t.Errorf("Outputs = %+v, Output %q; want only output/day1.csv = %q", res.Outputs, res.Output, "result")
	}
}

// TestInvokeOutputDir: a program writing two files and a subdirectory
// into its output directory: WithSaveOutputs saves them and _manifest.json
// under day1/, the manifest lists them, and without it Output is the
// manifest.
func TestInvokeOutputDir(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := outputsManifest("write", "0", "", "/out/summary.csv=sum", "/out/count.txt=2", "/out/plots/a.txt=plot")
	m.Output.Dir = "/out"
	zipPath := mustPackage(t, m)
	csv := testkit.TempFile(t, "day1.csv", []byte("1,2\n"))

	dir := t.TempDir()
	var logs bytes.Buffer
	res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithSaveOutputs(dir), WithLogWriter(&logs))
	if err != nil {
		t.Fatalf("Invoke: %v\n%s", err, logs.Bytes())
	}
	got := testkit.ReadTree(t, dir)
	var om xruntime.OutputManifest
	if err := json.Unmarshal([]byte(got["day1/_manifest.json"]), &om); err != nil {
		t.Fatalf("day1/_manifest.json %q: %v", got["day1/_manifest.json"], err)
	}
	delete(got, "day1/_manifest.json")
	want := map[string]string{"day1/summary.csv": "sum", "day1/count.txt": "2", "day1/plots/a.txt": "plot"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("saved outputs (-want +got):\n%s", diff)
	}
	var keys []string
	for _, f := range om.Files {
		keys = append(keys, f.Key)
	}
	sort.Strings(keys)
	if diff := cmp.Diff([]string{"output/day1/count.txt", "output/day1/plots/a.txt", "output/day1/summary.csv"}, keys); diff != "" {
		t.Errorf("_manifest.json files (-want +got):\n%s", diff)
	}
	if n := len(res.Outputs); n != 4 || res.Outputs[n-1].Key != "output/day1/_manifest.json" {
		t.Errorf("Outputs = %+v, want the 3 files and the manifest last", res.Outputs)
	}

	res, err = Invoke(context.Background(), zipPath, WithCSV(csv))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if err := json.Unmarshal(res.Output, &om); err != nil || len(om.Files) != 3 {
		t.Errorf("Output = %q (%v), want the _manifest.json of 3 files", res.Output, err)
	}

	// {output} and the directory together: the file is the output.
	both := outputsManifest("write", "0", "", "{output}=main", "/out/a.txt=A")
	both.Output.Dir = "/out"
	res, err = Invoke(context.Background(), mustPackage(t, both), WithCSV(csv))
	if err != nil {
		t.Fatalf("Invoke with {output} and a directory: %v", err)
	}
	var keys2 []string
	for _, o := range res.Outputs {
		keys2 = append(keys2, o.Key)
	}
	if want := []string{"output/day1.csv", "output/day1/a.txt", "output/day1/_manifest.json"}; string(res.Output) != "main" || !cmp.Equal(want, keys2) {
		t.Errorf("Output %q, objects %q; want %q and %q", res.Output, keys2, "main", want)
	}
}

// TestInvokeOutputsMoto runs output-directory and {output} programs that
// fail, against moto, and lists the bucket: a failed run leaves no output
// object, and Invoke lists none.
func TestInvokeOutputsMoto(t *testing.T) {
	endpoint := mototest.Start(t).SetenvS3(t)
	dirFails := outputsManifest("write", "3", "", "/out/summary.csv=sum", "/out/plots/a.txt=plot")
	dirFails.Output.Dir = "/out"
	fileFails := outputsManifest("write", "4", "partial", "{output}=half")
	fileFails.Output.StdoutAlso = true
	for _, m := range []xruntime.Manifest{dirFails, fileFails} {
		res, err := Invoke(context.Background(), mustPackage(t, m), WithCSV(testkit.TempFile(t, "day1.csv", []byte("1,2\n"))),
			WithSaveOutputs(t.TempDir()), WithTimeout(30*time.Second))
		var ie *InvokeError
		if !errors.As(err, &ie) {
			t.Fatalf("Invoke of %q = %v, want an *InvokeError", m.Args, err)
		}
		if len(res.Outputs) != 0 {
			t.Errorf("Invoke of %q: Outputs = %+v, want none", m.Args, res.Outputs)
		}
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(LocalBucket), Prefix: aws.String("output/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		t.Errorf("a failed run left s3://%s/%s", LocalBucket, aws.ToString(o.Key))
	}
}
