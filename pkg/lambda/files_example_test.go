package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/local"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// filesExampleData is examples/fortran-files/data.
var filesExampleData = filepath.Join("..", "..", "examples", "fortran-files", "data")

// mustFilesPackage packages the fixture fortran-files (examples/fortran-files'
// momentum-report) as a zip with the real bootstrap and opts, and returns
// its path and bytes.
func mustFilesPackage(t *testing.T, opts ...PackageOption) (string, []byte) {
	t.Helper()
	img, bootstrap := filesFixture(t)
	zipPath := filepath.Join(t.TempDir(), "report.zip")
	if _, err := PackageFile(context.Background(), img, zipPath, append([]PackageOption{bootstrap}, opts...)...); err != nil {
		t.Fatalf("PackageFile: %v", err)
	}
	return zipPath, testkit.ReadFile(t, zipPath)
}

// filesFixture serves the fixture fortran-files and returns it with the
// option giving packages the real bootstrap.
func filesFixture(t *testing.T) (*image.Image, PackageOption) {
	t.Helper()
	fixtures := testkit.Fixtures(t)
	if goruntime.GOARCH != "amd64" {
		t.Skip("the fixture is linux/amd64")
	}
	v1img, err := imagebuild.Fixture(fixtures, "fortran-files")
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, _ := mustInvBuilt(t)
	return imagetest.Serve(t, v1img), WithBootstrap(func(string) ([]byte, error) { return os.ReadFile(bootstrap) })
}

// TestFortranFilesImage runs the Fortran example packaged as a container
// image with --output-dir /work (its WORKDIR, read-only in the image) the
// way Lambda runs images: the files it wrote are saved as with a zip.
func TestFortranFilesImage(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	img, bootstrap := filesFixture(t)
	ctx := context.Background()
	res, err := PackageImage(ctx, img, bootstrap, WithOutputDir("/work"))
	if err != nil {
		t.Fatalf("PackageImage: %v", err)
	}
	defer res.Close()
	ref := "oci:" + filepath.Join(t.TempDir(), "report")
	if _, err := WriteImage(ctx, res.Image, ref); err != nil {
		t.Fatalf("WriteImage: %v", err)
	}
	dir := t.TempDir()
	var logs bytes.Buffer
	if _, err := local.Invoke(ctx, ref, local.WithCSV(filepath.Join(filesExampleData, "sample.csv")), local.WithSaveOutputs(dir), local.WithLogWriter(&logs),
		local.WithImageOptions(image.WithCacheDir(t.TempDir()))); err != nil {
		t.Fatalf("local.Invoke(%q): %v\n%s", ref, err, logs.Bytes())
	}
	got := testkit.ReadTree(t, filepath.Join(dir, "sample"))
	checkOutputManifest(t, got[xruntime.OutputDirManifest], "output/sample/")
	delete(got, xruntime.OutputDirManifest)
	if diff := cmp.Diff(expectedFiles(t), got); diff != "" {
		t.Errorf("outputs under sample/ (-want +got):\n%s\nlog:\n%s", diff, logs.Bytes())
	}
}

// expectedFiles reads examples/fortran-files/data/expected/dir: relative
// path → content.
func expectedFiles(t *testing.T) map[string]string {
	t.Helper()
	return testkit.ReadTree(t, filepath.Join(filesExampleData, "expected", "dir"))
}

// TestFortranFilesExample runs the Fortran example that writes named files
// through the real bootstrap under local.Invoke: packaged with {output}, the
// output object is the file it wrote (data/expected/output.csv) and its
// stdout is kept beside it; packaged with --output-dir /work (its WORKDIR),
// the files it wrote there (data/expected/dir) and _manifest.json are saved
// under sample/, nothing of its empty stdout; a malformed CSV fails the
// invocation and leaves no output.
func TestFortranFilesExample(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	sample := filepath.Join(filesExampleData, "sample.csv")
	ctx := context.Background()

	t.Run("output file", func(t *testing.T) {
		zipPath, _ := mustFilesPackage(t, WithCommandOverride(image.Override{Cmd: []string{"-o", "{output}"}, CmdSet: true}), WithStdoutAlso(true))
		dir := t.TempDir()
		var logs bytes.Buffer
		if _, err := local.Invoke(ctx, zipPath, local.WithCSV(sample), local.WithSaveOutputs(dir), local.WithLogWriter(&logs)); err != nil {
			t.Fatalf("local.Invoke: %v\n%s", err, logs.Bytes())
		}
		want := map[string]string{
			"sample.csv":        string(testkit.ReadFile(t, filepath.Join(filesExampleData, "expected", "output.csv"))),
			"sample.csv.stdout": string(testkit.ReadFile(t, filepath.Join(filesExampleData, "expected", "stdout.txt"))),
		}
		if diff := cmp.Diff(want, testkit.ReadTree(t, dir)); diff != "" {
			t.Errorf("outputs (-want +got):\n%s\nlog:\n%s", diff, logs.Bytes())
		}
	})

	dirZip, _ := mustFilesPackage(t, WithOutputDir("/work"))
	t.Run("output dir", func(t *testing.T) {
		dir := t.TempDir()
		var logs bytes.Buffer
		res, err := local.Invoke(ctx, dirZip, local.WithCSV(sample), local.WithSaveOutputs(dir), local.WithLogWriter(&logs), local.WithLogFormat(local.LogFormatJSON))
		if err != nil {
			t.Fatalf("local.Invoke: %v\n%s", err, logs.Bytes())
		}
		summary := jsonSummary(t, logs.String())
		if summary["requestId"] != res.RequestID || summary["output_files"] != 3.0 || summary["exit_status"] != 0.0 {
			t.Errorf("summary line %v: want requestId %q, output_files 3, exit_status 0", summary, res.RequestID)
		}
		got := testkit.ReadTree(t, filepath.Join(dir, "sample"))
		om := checkOutputManifest(t, got[xruntime.OutputDirManifest], "output/sample/")
		delete(got, xruntime.OutputDirManifest)
		if diff := cmp.Diff(expectedFiles(t), got); diff != "" {
			t.Errorf("outputs under sample/ (-want +got):\n%s\nlog:\n%s", diff, logs.Bytes())
		}
		if len(om.Files) != 3 || om.Stdout != nil || len(res.Outputs) != 4 {
			t.Errorf("manifest %+v, Outputs %+v: want 3 files, no stdout object", om, res.Outputs)
		}
	})

	t.Run("fails", func(t *testing.T) {
		var logs bytes.Buffer
		res, err := local.Invoke(ctx, dirZip, local.WithCSV(filepath.Join(filesExampleData, "bad.csv")), local.WithSaveOutputs(t.TempDir()), local.WithLogWriter(&logs))
		var ie *local.InvokeError
		if !errors.As(err, &ie) || len(ie.Result.Outputs) != 0 {
			t.Fatalf("local.Invoke on bad.csv = %v, %+v; want an *local.InvokeError and no outputs", err, res)
		}
		for _, want := range []string{`malformed row "ten,3"`, "invocation summary", "exit_status=1"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("text log lacks %q:\n%s", want, logs.Bytes())
			}
		}
	})
}

// jsonSummary checks every line of a JSON-format log is a JSON object
// with Lambda's keys (timestamp, level, message) and returns the
// invocation's summary line.
func jsonSummary(t *testing.T, log string) map[string]any {
	t.Helper()
	var summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
			continue
		}
		for _, k := range []string{"timestamp", "level", "message"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %q lacks %q", line, k)
			}
		}
		if rec["message"] == "invocation summary" {
			summary = rec
		}
	}
	if summary == nil {
		t.Fatalf("no summary line in the log:\n%s", log)
	}
	return summary
}

// checkOutputManifest parses a _manifest.json and checks each file's key is
// under prefix; it returns the manifest.
func checkOutputManifest(t *testing.T, body, prefix string) xruntime.OutputManifest {
	t.Helper()
	var om xruntime.OutputManifest
	if err := json.Unmarshal([]byte(body), &om); err != nil {
		t.Fatalf("_manifest.json %q: %v", body, err)
	}
	for _, f := range om.Files {
		if f.Key != prefix+f.Path || f.Size <= 0 || len(f.SHA256) != 64 {
			t.Errorf("_manifest.json file %+v: want key %q+path, a size and a SHA-256", f, prefix)
		}
	}
	return om
}

// TestFortranFilesMoto runs the output-directory package of the Fortran
// example on S3 events from moto: it puts data/sample.csv and data/bad.csv
// under input/ and runs the zip on each event; output/ then holds exactly
// sample/'s three files and _manifest.json, equal to data/expected/dir, and
// nothing of bad.csv. (That deploy lets such a function delete outputs is
// TestDeployOutputDirRole's, in pkg/deploy.)
func TestFortranFilesMoto(t *testing.T) {
	zipPath, _ := mustFilesPackage(t, WithOutputDir("/work"))
	mototest.Start(t).Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	s3c := mustMotoS3(t, "uploads")
	ctx := context.Background()
	for _, name := range []string{"sample.csv", "bad.csv"} {
		key := "input/" + name
		body := testkit.ReadFile(t, filepath.Join(filesExampleData, name))
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: &key, Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		ev, err := local.S3PutEvent("uploads", key, "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = local.Invoke(ctx, zipPath, local.WithEvent(ev), local.WithTimeout(60*time.Second))
		var ie *local.InvokeError
		if (name == "bad.csv") != errors.As(err, &ie) || (err != nil && ie == nil) {
			t.Errorf("local.Invoke on %s: %v", key, err)
		}
	}
	got := map[string]string{}
	out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("uploads"), Prefix: aws.String("output/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uploads"), Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[strings.TrimPrefix(key, "output/sample/")] = string(b)
	}
	checkOutputManifest(t, got[xruntime.OutputDirManifest], "output/sample/")
	delete(got, xruntime.OutputDirManifest)
	if diff := cmp.Diff(expectedFiles(t), got); diff != "" {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("objects under output/ (-want +got):\n%s\nkeys: %q", diff, keys)
	}
}

// mustMotoS3 returns an S3 client of the moto server the environment points
// at (path-style, as moto serves no bucket subdomains) with buckets created.
func mustMotoS3(t *testing.T, buckets ...string) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	for _, b := range buckets {
		if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket(%q): %v", b, err)
		}
	}
	return c
}
