package lambda

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/local"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// mustPackageTestProg packages an image holding only the static test
// program (pkg/runtime/testdata/testprog) at /bin/testprog, run with args
// and the image ENV env, with the real bootstrap, and returns the zip's
// path and manifest.
func mustPackageTestProg(t *testing.T, env, args []string, opts ...PackageOption) (string, xruntime.Manifest) {
	t.Helper()
	if goruntime.GOARCH != "amd64" {
		t.Skip("the test image is linux/amd64 and runs the host's build of the test program")
	}
	bootstrap, prog := mustInvBuilt(t)
	img := imagetest.Serve(t, testkit.Image(t, v1.Config{Entrypoint: append([]string{"/bin/testprog"}, args...), Env: env},
		[]testkit.File{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/testprog", From: prog, Mode: 0o755}}))
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts = append([]PackageOption{WithBootstrap(func(string) ([]byte, error) { return os.ReadFile(bootstrap) })}, opts...)
	res, err := Package(context.Background(), img, f, opts...)
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return zipPath, res.Manifest
}

// TestInvokeProgramEnvironment runs a package's program through the real
// bootstrap under local.Invoke, which gives the bootstrap Lambda's runtime
// variables and AWS credentials, and checks what the program sees: its
// image's ENV (TZ and LANG included, or none), no AWS_* variable, runtime
// API or Lambda setting unless packaged with WithPassAWSCredentials, and
// then only the credentials, region and endpoint.
func TestInvokeProgramEnvironment(t *testing.T) {
	const anyValue = "(any)"
	if testing.Short() {
		t.Skip("builds the bootstrap and runs it")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_REGION", "eu-west-3")
	for _, tt := range []struct {
		name string
		env  []string
		pass bool
		// want is every variable the program sees but PATH and HOME (and
		// TMPDIR, local.Invoke's temporary directory, and AWS_ENDPOINT_URL_S3,
		// its local S3's address, which are checked apart); anyValue
		// stands for any value but "" (local.Invoke's credentials for its
		// local S3).
		want map[string]string
	}{
		{
			name: "no TZ or LANG in the image",
			env:  []string{"PATH=/bin", "APP=1"},
			want: map[string]string{"APP": "1"},
		},
		{
			name: "the image's TZ and LANG",
			env:  []string{"PATH=/bin", "TZ=Europe/Paris", "LANG=C.UTF-8"},
			want: map[string]string{"TZ": "Europe/Paris", "LANG": "C.UTF-8"},
		},
		{
			name: "pass AWS credentials",
			env:  []string{"PATH=/bin"},
			pass: true,
			want: map[string]string{
				"AWS_ACCESS_KEY_ID": anyValue, "AWS_SECRET_ACCESS_KEY": anyValue,
				"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			zipPath, m := mustPackageTestProg(t, tt.env, []string{"env"}, WithPassAWSCredentials(tt.pass))
			if m.PassAWSCredentials != tt.pass {
				t.Errorf("manifest pass_aws_credentials = %v, want %v", m.PassAWSCredentials, tt.pass)
			}
			var logs strings.Builder
			res, err := local.Invoke(context.Background(), zipPath, local.WithCSV(testkit.TempFile(t, "e.csv", []byte("x\n"))),
				local.WithLogWriter(&logs), local.WithTimeout(time.Minute))
			if err != nil {
				t.Fatalf("local.Invoke: %v\nlogs:\n%s", err, logs.String())
			}
			got := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(res.Output)), "\n") {
				if strings.HasPrefix(l, "argv=") || strings.HasPrefix(l, "wd=") {
					continue
				}
				k, v, _ := strings.Cut(l, "=")
				got[k] = v
			}
			if got["HOME"] != "/tmp" || !strings.HasSuffix(got["PATH"], "/rootfs/bin") {
				t.Errorf("HOME=%q PATH=%q, want /tmp and the package's /bin", got["HOME"], got["PATH"])
			}
			if tmp := got["TMPDIR"]; !strings.Contains(tmp, "extract-invoke-") {
				t.Errorf("TMPDIR=%q, want local.Invoke's temporary directory", tmp)
			}
			endpoint, hasEndpoint := got["AWS_ENDPOINT_URL_S3"]
			if hasEndpoint != tt.pass || (tt.pass && !strings.HasPrefix(endpoint, "http://127.0.0.1:")) {
				t.Errorf("AWS_ENDPOINT_URL_S3=%q (set: %v), want the local S3's address only when passing AWS credentials", endpoint, hasEndpoint)
			}
			for _, k := range []string{"HOME", "PATH", "TMPDIR", "AWS_ENDPOINT_URL_S3"} {
				delete(got, k)
			}
			for k, v := range tt.want {
				if v == anyValue && got[k] != "" {
					got[k] = anyValue
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				var names []string
				for k := range got {
					names = append(names, k)
				}
				sort.Strings(names)
				t.Errorf("the program's environment (-want +got):\n%s\nnames: %s", diff, strings.Join(names, " "))
			}
		})
	}
}
