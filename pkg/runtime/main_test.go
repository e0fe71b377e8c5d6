package runtime

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	cmd := exec.Command("go", "build", "-o", testProg, "./testdata/testprog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test program: %v\n%s", err, out)
		return 1
	}
	defer stopMoto()
	return m.Run()
}

var moto struct {
	once     sync.Once
	cmd      *exec.Cmd
	endpoint string
	err      error
}

// motoEndpoint starts moto_server once for the package, on a free port, and
// returns its URL. Without moto_server the test is skipped, unless CI is
// set: then it fails.
func motoEndpoint(t *testing.T) string {
	t.Helper()
	moto.once.Do(func() {
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			moto.err = fmt.Errorf("moto_server not found in PATH (pip install 'moto[server]'): %w", err)
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			moto.err = err
			return
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			moto.err = err
			return
		}
		moto.cmd = cmd
		moto.endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get(moto.endpoint + "/")
			if err == nil {
				resp.Body.Close()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		moto.err = fmt.Errorf("moto_server did not answer on %s within 30s", moto.endpoint)
	})
	if moto.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("moto: %v", moto.err)
		}
		t.Skipf("moto: %v", moto.err)
	}
	return moto.endpoint
}

func stopMoto() {
	if moto.cmd != nil {
		_ = syscall.Kill(-moto.cmd.Process.Pid, syscall.SIGKILL)
		_ = moto.cmd.Wait()
	}
}

// motoClient returns an S3 client for moto, built the way the bootstrap
// builds its own from the environment.
func motoClient(t *testing.T) *s3.Client {
	t.Helper()
	env := map[string]string{
		"AWS_ENDPOINT_URL_S3":   motoEndpoint(t),
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
