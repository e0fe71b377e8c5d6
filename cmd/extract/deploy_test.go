package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/deploy"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// runCLI runs the extract app with args and returns stdout, stderr (with
// the error and its advice as main prints them) and the exit code main
// would use.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp()
	app.Writer = &out
	app.ErrWriter = &errb
	err := advised(app.RunContext(context.Background(), append([]string{"extract"}, args...)))
	code := exitOK
	if err != nil {
		code = exitCode(err)
		errb.WriteString("extract: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), code
}

func writeTestZip(t *testing.T, m xruntime.Manifest) string {
	t.Helper()
	return testkit.ZipPath(t,
		testkit.ZipFile{Name: "bootstrap", Body: []byte("#!/bin/sh\n")},
		testkit.ZipFile{Name: xruntime.ManifestPath, Body: testkit.JSON(t, m)})
}

func TestDeployDestroyCLI(t *testing.T) {
	s := mototest.Start(t)
	s.Setenv(t)
	cfg, err := deploy.LoadAWSConfig(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	s3c := deploy.NewClients(cfg).S3.(*s3.Client)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("uploads")}); err != nil {
		t.Fatal(err)
	}
	m := xruntime.Manifest{Version: 1, Platform: "linux/amd64", Program: "/p", Args: []string{"/p"},
		Input: xruntime.Input{Mode: "stdin", Prefix: "input/", Suffix: ".csv"}, Output: xruntime.Output{Prefix: "output/"}}
	zipPath := writeTestZip(t, m)

	// Dry run: a plan on stderr, JSON on stdout, nothing created.
	stdout, stderr, code := runCLI(t, "deploy", zipPath, "--function", "momentum", "--bucket", "uploads", "--dry-run", "--json")
	if code != exitOK {
		t.Fatalf("deploy --dry-run exit %d, stderr:\n%s", code, stderr)
	}
	var res deploy.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("deploy --json stdout is not JSON: %v\n%s", err, stdout)
	}
	if !res.DryRun || len(res.Changes) != 4 || !strings.Contains(stderr, "would make 4 change(s)") {
		t.Errorf("dry run: dry_run=%v changes=%q stderr:\n%s", res.DryRun, res.Changes, stderr)
	}

	// Real run, then a no-op run.
	stdout, stderr, code = runCLI(t, "deploy", zipPath, "--function", "momentum", "--bucket", "uploads", "--memory", "256", "--timeout", "2m", "--env", "A=1", "--json")
	if code != exitOK {
		t.Fatalf("deploy exit %d, stderr:\n%s", code, stderr)
	}
	res = deploy.Result{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	want := deploy.Result{
		FunctionName: "momentum",
		FunctionARN:  "arn:aws:lambda:us-east-1:123456789012:function:momentum",
		Version:      "$LATEST",
		CodeSha256:   res.CodeSha256,
		RoleARN:      "arn:aws:iam::123456789012:role/extract-momentum",
		Architecture: "x86_64",
		PackageType:  "Zip",
		CodeLocation: "direct",
		Trigger: deploy.Trigger{ID: "extract-momentum", Bucket: "uploads", Prefix: "input/", Suffix: ".csv",
			Events: []string{"s3:ObjectCreated:*"}, StatementID: "extract-s3-uploads"},
		Changes: res.Changes,
	}
	if diff := cmp.Diff(want, res); diff != "" || len(res.Changes) != 4 || res.CodeSha256 == "" {
		t.Errorf("deploy --json (-want +got):\n%s\nchanges %q", diff, res.Changes)
	}
	stdout, stderr, code = runCLI(t, "deploy", zipPath, "--function", "momentum", "--bucket", "uploads", "--memory", "256", "--timeout", "2m", "--env", "A=1")
	if code != exitOK || strings.TrimSpace(stdout) != want.FunctionARN || !strings.Contains(stderr, "no changes") {
		t.Errorf("second deploy: exit %d, stdout %q, stderr:\n%s\nwant exit 0, the ARN, and \"no changes\"", code, stdout, stderr)
	}

	// --log-format json changes the configuration, as the plan shows.
	_, stderr, code = runCLI(t, "deploy", zipPath, "--function", "momentum", "--bucket", "uploads", "--memory", "256", "--timeout", "2m", "--env", "A=1",
		"--log-format", "json", "--dry-run")
	if code != exitOK || !strings.Contains(stderr, "update function configuration: log format Text → JSON") {
		t.Errorf("deploy --log-format json --dry-run: exit %d, stderr:\n%s\nwant the log format change", code, stderr)
	}
	if _, _, code = runCLI(t, "deploy", zipPath, "--function", "x", "--bucket", "uploads", "--log-format", "xml"); code != exitUsage {
		t.Errorf("deploy --log-format xml: exit %d, want %d", code, exitUsage)
	}
	// An output directory whose keys the trigger could match is refused
	// with exit 4, whatever the suffixes.
	dirLoop := m
	dirLoop.Output = xruntime.Output{Prefix: "input/out/", Suffix: ".txt", Dir: "/out"}
	_, stderr, code = runCLI(t, "deploy", writeTestZip(t, dirLoop), "--function", "dirloop", "--bucket", "uploads")
	if code != exitRefused || !strings.Contains(stderr, "output directory's files") {
		t.Errorf("deploy of an output directory under the trigger prefix: exit %d, stderr:\n%s\nwant exit %d", code, stderr, exitRefused)
	}

	// A recursive trigger is refused with exit 4.
	m.Input.Prefix = ""
	_, stderr, code = runCLI(t, "deploy", writeTestZip(t, m), "--function", "loop", "--bucket", "uploads")
	if code != exitRefused || !strings.Contains(stderr, "re-trigger") || !strings.Contains(stderr, "--output-prefix output/") {
		t.Errorf("recursive deploy: exit %d, stderr:\n%s\nwant exit %d", code, stderr, exitRefused)
	}

	// Usage errors.
	if _, stderr, code = runCLI(t, "deploy", zipPath, "--function", "x", "--bucket", "uploads", "--prefix", "data/", "--platform", "linux/arm64"); code != exitUsage ||
		!strings.Contains(stderr, "--platform, --prefix: these flags apply when deploying an IMAGE") {
		t.Errorf("deploy of a zip with image flags: exit %d, stderr %q; want %d naming the flags", code, stderr, exitUsage)
	}
	if _, _, code = runCLI(t, "deploy", zipPath, "--function", "x", "--bucket", "uploads", "--env", "novalue"); code != exitUsage {
		t.Errorf("deploy --env novalue: exit %d, want %d", code, exitUsage)
	}

	// Destroy, twice.
	stdout, stderr, code = runCLI(t, "destroy", "--function", "momentum", "--bucket", "uploads", "--json")
	if code != exitOK {
		t.Fatalf("destroy exit %d, stderr:\n%s", code, stderr)
	}
	var dres deploy.DestroyResult
	if err := json.Unmarshal([]byte(stdout), &dres); err != nil {
		t.Fatal(err)
	}
	if len(dres.Changes) != 4 {
		t.Errorf("destroy changes = %q, want 4", dres.Changes)
	}
	_, stderr, code = runCLI(t, "destroy", "--function", "momentum", "--bucket", "uploads")
	if code != exitOK || !strings.Contains(stderr, "no changes") {
		t.Errorf("second destroy: exit %d, stderr:\n%s\nwant exit 0 and \"no changes\"", code, stderr)
	}
}

func TestDeployHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"deploy", "destroy"} {
		stdout, _, code := runCLI(t, cmd, "--help")
		if code != exitOK || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "extract "+cmd+" ") {
			t.Errorf("extract %s --help: exit %d, output lacks examples:\n%s", cmd, code, stdout)
		}
	}
}

func TestDeployFlagsAnywhere(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.zip")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"flags after the zip", []string{"deploy", missing, "--function", "f", "--bucket", "bkt", "--region", "us-east-1"}, exitFailure, "opening package"},
		{"flags around the zip", []string{"deploy", "--function", "f", missing, "--bucket", "bkt", "--region", "us-east-1"}, exitFailure, "opening package"},
		{"dash-dash ends flags", []string{"deploy", "--function", "f", "--bucket", "bkt", "--region", "us-east-1", "--", missing}, exitFailure, "opening package"},
		{"missing bucket", []string{"deploy", missing, "--function", "f"}, exitUsage, "--bucket"},
		{"missing both", []string{"destroy"}, exitUsage, "--function, --bucket"},
		{"two packages", []string{"deploy", missing, missing, "--function", "f", "--bucket", "bkt"}, exitUsage, "one argument"},
		{"unknown flag", []string{"deploy", missing, "--functoin", "f"}, exitUsage, "functoin"},
		{"bad memory", []string{"deploy", missing, "--function", "f", "--bucket", "bkt", "--region", "us-east-1", "--memory", "64"}, exitFailure, "128 to 10240"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CONFIG_FILE", os.DevNull)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("extract %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.wantCode, tc.wantErr)
			}
		})
	}
}

// TestDeployImageCLI deploys an image archive with package flags and checks
// the function runs exactly the zip `extract package` makes of it.
func TestDeployImageCLI(t *testing.T) {
	archive := "docker-archive:" + staticArchive(t)
	s := mototest.Start(t)
	s.Setenv(t)
	cfg, err := deploy.LoadAWSConfig(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	s3c := deploy.NewClients(cfg).S3.(*s3.Client)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("uploads")}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "deploy", archive, "--function", "upper", "--bucket", "uploads", "--prefix", "data/", "--json")
	if code != exitOK {
		t.Fatalf("deploy IMAGE: exit %d, stderr:\n%s", code, stderr)
	}
	var res deploy.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("deploy --json: %v\n%s", err, stdout)
	}
	if res.Trigger.Prefix != "data/" || res.Architecture != "x86_64" || len(res.Changes) != 4 {
		t.Errorf("deploy IMAGE: trigger prefix %q, arch %q, changes %q; want data/, x86_64, 4 changes", res.Trigger.Prefix, res.Architecture, res.Changes)
	}
	zipPath := filepath.Join(t.TempDir(), "upper.zip")
	pout, perr, code := runCLI(t, "package", archive, "--prefix", "data/", "-o", zipPath, "--json")
	if code != exitOK {
		t.Fatalf("package: exit %d, stderr:\n%s", code, perr)
	}
	var pres struct {
		CodeSHA256 string `json:"code_sha256"`
	}
	if err := json.Unmarshal([]byte(pout), &pres); err != nil {
		t.Fatal(err)
	}
	if pres.CodeSHA256 != res.CodeSha256 {
		t.Errorf("deploy IMAGE CodeSha256 %s, package gives %s", res.CodeSha256, pres.CodeSHA256)
	}
	// The zip from package deploys as "no changes".
	_, stderr, code = runCLI(t, "deploy", zipPath, "--function", "upper", "--bucket", "uploads")
	if code != exitOK || !strings.Contains(stderr, "no changes") {
		t.Errorf("deploy of the packaged zip: exit %d, stderr:\n%s\nwant \"no changes\"", code, stderr)
	}
}

// TestDeployImageFormatCLI deploys an image archive as a container image
// (--format image) through an in-process registry to moto's Lambda, re-runs
// it as "no changes", is refused a zip deploy over it, and destroys it with
// --purge-images.
func TestDeployImageFormatCLI(t *testing.T) {
	archive := "docker-archive:" + staticArchive(t)
	s := mototest.Start(t)
	s.Setenv(t)
	cfg, err := deploy.LoadAWSConfig(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	s3c := deploy.NewClients(cfg).S3.(*s3.Client)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("uploads")}); err != nil {
		t.Fatal(err)
	}
	repo := testkit.NewRegistry(t, nil).Host() + "/extract-upper"

	args := []string{"deploy", archive, "--function", "upper", "--bucket", "uploads", "--format", "image", "--repository", repo}
	stdout, stderr, code := runCLI(t, append(args, "--json")...)
	if code != exitOK {
		t.Fatalf("deploy --format image: exit %d, stderr:\n%s", code, stderr)
	}
	var res deploy.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("deploy --json: %v\n%s", err, stdout)
	}
	if res.PackageType != "Image" || !strings.HasPrefix(res.ImageURI, repo+"@sha256:") || res.Architecture != "x86_64" ||
		!slices.ContainsFunc(res.Changes, func(c string) bool { return strings.HasPrefix(c, "push image "+res.ImageURI) }) {
		t.Errorf("deploy --format image: package type %q, image %q, arch %q, changes %q", res.PackageType, res.ImageURI, res.Architecture, res.Changes)
	}
	if !strings.Contains(stderr, "  image    "+res.ImageURI) {
		t.Errorf("deploy summary does not show the image:\n%s", stderr)
	}
	ref, err := name.ParseReference(res.ImageURI)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err != nil {
		t.Errorf("registry does not hold %s: %v", res.ImageURI, err)
	}

	_, stderr, code = runCLI(t, args...)
	if code != exitOK || !strings.Contains(stderr, "no changes") {
		t.Errorf("second deploy --format image: exit %d, stderr:\n%s\nwant \"no changes\"", code, stderr)
	}
	_, stderr, code = runCLI(t, "deploy", archive, "--function", "upper", "--bucket", "uploads", "--format", "zip")
	if code != exitRefused || !strings.Contains(stderr, "cannot change the package type") || !strings.Contains(stderr, "deploy the IMAGE with --format image") {
		t.Errorf("zip deploy over the image function: exit %d, stderr:\n%s\nwant %d and advice naming --format image", code, stderr, exitRefused)
	}
	zipPath := writeTestZip(t, xruntime.Manifest{Version: 1, Platform: "linux/amd64", Program: "/p", Args: []string{"/p"},
		Input: xruntime.Input{Mode: "stdin", Prefix: "input/", Suffix: ".csv"}, Output: xruntime.Output{Prefix: "output/"}})
	if _, stderr, code = runCLI(t, "deploy", zipPath, "--function", "z", "--bucket", "uploads", "--format", "image", "--repository", repo); code != exitUsage ||
		!strings.Contains(stderr, "--repository, --format image") {
		t.Errorf("deploy of a zip with --format image: exit %d, stderr %q; want %d naming the flags", code, stderr, exitUsage)
	}

	// Without --purge-images the images stay, and destroy says where.
	_, stderr, code = runCLI(t, "destroy", "--function", "upper", "--bucket", "uploads", "--dry-run")
	if want := "the function's images stay in " + repo + ": --purge-images removes them"; code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("destroy --dry-run: exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
	stdout, stderr, code = runCLI(t, "destroy", "--function", "upper", "--bucket", "uploads", "--purge-images", "--json")
	if code != exitOK {
		t.Fatalf("destroy --purge-images: exit %d, stderr:\n%s", code, stderr)
	}
	var dres deploy.DestroyResult
	if err := json.Unmarshal([]byte(stdout), &dres); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(dres.Changes, func(c string) bool { return strings.HasPrefix(c, "delete image "+repo+":extract-upper-") }) {
		t.Errorf("destroy --purge-images changes = %q, want the image deleted", dres.Changes)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Errorf("%s still in the registry after destroy --purge-images", res.ImageURI)
	}
}
