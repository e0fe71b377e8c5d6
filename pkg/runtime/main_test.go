package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
)

// testProg is the static test program (testdata/testprog) built by TestMain.
var testProg string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testProg = filepath.Join(dir, "testprog")
	b, err := testkit.Build(testkit.TestProg, "")
	if err == nil {
		err = os.WriteFile(testProg, b, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test program: %v\n", err)
		return 1
	}
	defer mototest.StopShared()
	return m.Run()
}

// motoClient returns an S3 client for moto, built the way the bootstrap
// builds its own from the environment.
func motoClient(t *testing.T) *s3.Client {
	t.Helper()
	env := map[string]string{
		"AWS_ENDPOINT_URL_S3":   mototest.Shared(t).URL,
		"AWS_REGION":            "us-east-1",
		"AWS_ACCESS_KEY_ID":     "testing",
		"AWS_SECRET_ACCESS_KEY": "testing",
	}
	return newS3Client(func(k string) string { return env[k] })
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// mustBucket creates a fresh bucket on moto.
func mustBucket(t *testing.T, c *s3.Client) string {
	t.Helper()
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), bucketSeq.n)
	bucketSeq.Unlock()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("CreateBucket(%s): %v", name, err)
	}
	return name
}
