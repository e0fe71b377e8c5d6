package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// mustBuilt writes the real bootstrap (./cmd/bootstrap) and the static test
// program, built once per test binary, to the test's directory.
func mustBuilt(t testing.TB) (bootstrap, testProg string) {
	t.Helper()
	return testkit.GoBuildFile(t, testkit.Bootstrap, ""), testkit.GoBuildFile(t, testkit.TestProg, "")
}

// zipEntry is one entry of a test package: name, mode, content.
type zipEntry struct {
	name string
	mode fs.FileMode
	data []byte
}

// mustZip writes the entries as function.zip in the test's directory.
func mustZip(t testing.TB, entries []zipEntry) string {
	t.Helper()
	files := make([]testkit.ZipFile, len(entries))
	for i, e := range entries {
		files[i] = testkit.ZipFile{Name: e.name, Mode: e.mode, Body: e.data}
	}
	return testkit.ZipPath(t, files...)
}

// testLinkDir returns a fresh link directory name like the packager's.
func testLinkDir() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "/tmp/x" + hex.EncodeToString(b[:])
}

// mustPackage writes a package in the layout of ARCHITECTURE.md: the real
// bootstrap, extract.json, and the test program at rootfs/usr/bin/testprog
// reached through the symlink rootfs/bin -> usr/bin.
func mustPackage(t testing.TB, m xruntime.Manifest) string {
	t.Helper()
	bootstrap, prog := mustBuilt(t)
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return mustZip(t, []zipEntry{
		{"bootstrap", 0o755, testkit.ReadFile(t, bootstrap)},
		{"extract.json", 0o644, mb},
		{"rootfs/bin", fs.ModeSymlink | 0o777, []byte("usr/bin")},
		{"rootfs/usr/bin/testprog", 0o755, testkit.ReadFile(t, prog)},
		{"rootfs/work/", fs.ModeDir | 0o755, nil},
	})
}

func testManifest(args ...string) xruntime.Manifest {
	return xruntime.Manifest{
		Version: 1,
		Program: "/bin/testprog",
		Args:    append([]string{"testprog"}, args...),
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello"},
		WorkDir: "/work",
		LinkDir: testLinkDir(),
		Input:   xruntime.Input{Mode: "stdin", Suffix: ".csv"},
		Output:  xruntime.Output{Prefix: "output/"},
	}
}

func TestInvokeCSVLocalS3(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := testManifest("stderr", "3")
	zipPath := mustPackage(t, m)
	data := []byte("mass,velocity\n1,2\n3,4\n")
	var logs bytes.Buffer
	res, err := Invoke(context.Background(), zipPath, WithCSV(testkit.TempFile(t, "red flower.csv", data)), WithLogWriter(&logs), WithTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Invoke: %v\nlogs:\n%s", err, logs.String())
	}
	if !bytes.Equal(res.Output, data) {
		t.Errorf("Output = %q, want %q", res.Output, data)
	}
	if res.OutputBucket != LocalBucket || res.OutputKey != "output/red flower.csv" {
		t.Errorf("output at s3://%s/%s, want s3://local/output/red flower.csv", res.OutputBucket, res.OutputKey)
	}
	if res.InitDuration <= 0 {
		t.Errorf("InitDuration = %v, want > 0", res.InitDuration)
	}
	for _, want := range []string{"red flower.csv: note 1", "red flower.csv: note 3"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Lstat(m.LinkDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link dir %s left behind after Invoke (%v)", m.LinkDir, err)
	}
}

func TestInvokeCSVInputPrefix(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := testManifest("cat")
	m.Input.Prefix = "input/"
	res, err := Invoke(context.Background(), mustPackage(t, m), WithCSV(testkit.TempFile(t, "day1.csv", []byte("1,2\n"))))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.OutputKey != "output/day1.csv" || string(res.Output) != "1,2\n" {
		t.Errorf("output s3://%s/%s = %q, want output/day1.csv = %q", res.OutputBucket, res.OutputKey, res.Output, "1,2\n")
	}
}

func TestInvokeEnvironment(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := testManifest("env")
	m.WritableWorkDir = true
	zipPath := mustPackage(t, m)
	var logs bytes.Buffer
	res, err := Invoke(context.Background(), zipPath, WithCSV(testkit.TempFile(t, "e.csv", []byte("x\n"))), WithLogWriter(&logs))
	if err != nil {
		t.Fatalf("Invoke: %v\nlogs:\n%s", err, logs.String())
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(res.Output), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	if got := env["argv"]; got != `["testprog" "env"]` {
		t.Errorf("argv = %s, want the manifest's Args unchanged", got)
	}
	if !strings.Contains(env["wd"], "extract-workdir-") {
		t.Errorf("working directory %q is not the writable copy", env["wd"])
	}
	if env["GREETING"] != "hello" || env["HOME"] != "/tmp" {
		t.Errorf("GREETING=%q HOME=%q, want hello and /tmp", env["GREETING"], env["HOME"])
	}
	if _, ok := env["LD_LIBRARY_PATH"]; ok {
		t.Errorf("LD_LIBRARY_PATH=%q leaks Lambda's library path to the program", env["LD_LIBRARY_PATH"])
	}
	paths := strings.Split(env["PATH"], ":")
	if len(paths) != 3 {
		t.Fatalf("PATH = %q, want the image's 3 entries", env["PATH"])
	}
	for i, suffix := range []string{"/rootfs/usr/local/bin", "/rootfs/usr/bin", "/rootfs/bin"} {
		if !strings.HasSuffix(paths[i], suffix) || !strings.Contains(paths[i], "extract-invoke-") {
			t.Errorf("PATH[%d] = %q, want the package's %s", i, paths[i], suffix)
		}
	}
}

func TestInvokeFailures(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	badManifest := testManifest("cat")
	badManifest.Program = "/bin/missing"
	tests := []struct {
		name     string
		m        xruntime.Manifest
		timeout  time.Duration
		wantType string
		wantMsg  []string
	}{
		{"exit status", testManifest("fail", "3", "25"), 20 * time.Second, "RecordError", []string{"exited with status 3", "error line 25", "s3://local/in.csv"}},
		{"timeout", testManifest("sleep"), 2 * time.Second, "RecordError", []string{"timed out"}},
		{"init error", badManifest, 20 * time.Second, xruntime.InitErrorType, []string{"/bin/missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			start := time.Now()
			res, err := Invoke(context.Background(), mustPackage(t, tt.m), WithCSV(testkit.TempFile(t, "in.csv", []byte("a\n"))), WithTimeout(tt.timeout), WithLogWriter(&logs))
			var ie *InvokeError
			if !errors.As(err, &ie) {
				t.Fatalf("Invoke = %v, want an *InvokeError\nlogs:\n%s", err, logs.String())
			}
			if res == nil || res.Error == nil || res.Error.ErrorType != tt.wantType {
				t.Fatalf("result error = %+v, want type %s", res.Error, tt.wantType)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(res.Error.ErrorMessage, w) {
					t.Errorf("error message %q lacks %q", res.Error.ErrorMessage, w)
				}
			}
			if d := time.Since(start); d > tt.timeout+30*time.Second { // unzip, build and upload under load take seconds
				t.Errorf("Invoke took %v, over the %v timeout plus setup", d, tt.timeout)
			}
		})
	}
}

func TestInvokeWithEvent(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	// An s3:TestEvent needs no S3 at all and succeeds with no records.
	ev := []byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-22T03:00:00.000Z","Bucket":"in"}`)
	res, err := Invoke(context.Background(), mustPackage(t, testManifest("cat")), WithEvent(ev), WithTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var r xruntime.Result
	if err := json.Unmarshal(res.Response, &r); err != nil {
		t.Fatalf("response %s: %v", res.Response, err)
	}
	if diff := cmp.Diff(xruntime.Result{Records: []xruntime.RecordResult{}}, r); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

func TestInvokeMoto(t *testing.T) {
	mototest.Start(t).SetenvS3(t)
	zipPath := mustPackage(t, testManifest("cat"))
	data := make([]byte, 9<<20+3) // more than one 8 MiB part
	_, _ = rand.Read(data)
	res, err := Invoke(context.Background(), zipPath, WithCSV(testkit.TempFile(t, "big data.csv", data)), WithTimeout(60*time.Second))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if !bytes.Equal(res.Output, data) {
		t.Errorf("Output is %d bytes, differs from the %d input bytes", len(res.Output), len(data))
	}
	// The same object again, named by bucket and key: same output.
	res, err = Invoke(context.Background(), zipPath, WithS3Object(LocalBucket, "big data.csv"), WithTimeout(60*time.Second))
	if err != nil {
		t.Fatalf("Invoke(WithS3Object): %v", err)
	}
	var r xruntime.Result
	if err := json.Unmarshal(res.Response, &r); err != nil || len(r.Records) != 1 || r.Records[0].OutputBytes != int64(len(data)) {
		t.Errorf("response = %s (%v), want one record of %d output bytes", res.Response, err, len(data))
	}
}

func TestInvokeOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{"none", nil},
		{"two", []Option{WithEvent([]byte(`{}`)), WithCSV("a.csv")}},
		{"bad JSON", []Option{WithEvent([]byte(`{`))}},
		{"bad timeout", []Option{WithCSV("a.csv"), WithTimeout(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Invoke(context.Background(), "nope.zip", tt.opts...); err == nil {
				t.Error("Invoke = nil error, want a usage error")
			}
		})
	}
}

func TestUnzip(t *testing.T) {
	tests := []struct {
		name    string
		entries []zipEntry
		wantErr string
	}{
		{"dot-dot", []zipEntry{{"a/../../evil", 0o644, []byte("x")}}, `".."`},
		{"absolute", []zipEntry{{"/etc/evil", 0o644, []byte("x")}}, "absolute"},
		{"through symlink", []zipEntry{{"l", fs.ModeSymlink | 0o777, []byte("/tmp")}, {"l/evil", 0o644, []byte("x")}}, "symlink"},
		{"duplicate", []zipEntry{{"a", 0o644, []byte("x")}, {"a", 0o644, []byte("y")}}, "duplicate"},
		{"backslash", []zipEntry{{`..\evil`, 0o644, []byte("x")}}, "backslash"},
		{"fine", []zipEntry{{"bin/", fs.ModeDir | 0o755, nil}, {"bin/run", 0o4755, []byte("#!")}, {"l", fs.ModeSymlink | 0o777, []byte("/abs/target")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			err := unzip(mustZip(t, tt.entries), dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("unzip = %v, want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unzip: %v", err)
			}
			fi, err := os.Stat(filepath.Join(dir, "bin/run"))
			if err != nil || fi.Mode().Perm() != 0o755 || fi.Mode()&fs.ModeSetuid != 0 {
				t.Errorf("bin/run mode = %v (%v), want 0755 without setuid", fi.Mode(), err)
			}
			if target, err := os.Readlink(filepath.Join(dir, "l")); err != nil || target != "/abs/target" {
				t.Errorf("symlink l -> %q (%v), want /abs/target", target, err)
			}
		})
	}
}

func TestS3PutEvent(t *testing.T) {
	b, err := S3PutEvent("in", "dir/red flower+1.csv", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Records []struct {
			EventName string `json:"eventName"`
			S3        struct {
				Bucket struct{ Name string } `json:"bucket"`
				Object struct{ Key string }  `json:"object"`
			} `json:"s3"`
		}
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 1 || ev.Records[0].S3.Object.Key != "dir%2Fred+flower%2B1.csv" || ev.Records[0].S3.Bucket.Name != "in" || ev.Records[0].EventName != "ObjectCreated:Put" {
		t.Errorf("S3PutEvent = %s", b)
	}
}

// TestBootstrapWarmInvocations drives one bootstrap process through several
// invocations, as a warm Lambda sandbox does: the loop goes back to /next
// after each answer, successes and failures alike.
func TestBootstrapWarmInvocations(t *testing.T) {
	s := mustLocalS3(t)
	if err := s.CreateBucket("in"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"a.csv": "1\n", "b.csv": "2\n"} {
		if err := s.PutObject("in", k, strings.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	m := testManifest("cat")
	dir := filepath.Join(t.TempDir(), "task")
	if err := unzip(mustPackage(t, m), dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(m.LinkDir) })
	api := mustRuntimeAPI(t)
	cmd := exec.Command(filepath.Join(dir, "bootstrap"))
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(), "LAMBDA_TASK_ROOT=" + dir, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3=" + s.URL(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "TMPDIR=" + t.TempDir(),
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	for i, tt := range []struct {
		key       string
		wantError bool
	}{{"a.csv", false}, {"missing.csv", true}, {"b.csv", false}} {
		ev, err := S3PutEvent("in", tt.key, "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		res, err := api.Invoke(context.Background(), ev, 20*time.Second)
		if err != nil {
			t.Fatalf("invocation %d: %v\nlogs:\n%s", i, err, logs.String())
		}
		if (res.Error != nil) != tt.wantError {
			t.Errorf("invocation %d (%s): error %v, want error %v", i, tt.key, res.Error, tt.wantError)
		}
	}
	for k, want := range map[string]string{"output/a.csv": "1\n", "output/b.csv": "2\n"} {
		rc, err := s.Object("in", k)
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		got := new(bytes.Buffer)
		got.ReadFrom(rc)
		rc.Close()
		if got.String() != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestInvokeArm64 runs an arm64 package (arm64 bootstrap and program) the
// way an arm64 Lambda function runs: here through qemu-user's binfmt
// handler when the host is not arm64.
func TestInvokeArm64(t *testing.T) {
	if goruntime.GOARCH != "arm64" {
		if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
			t.Skip("no arm64 host and no qemu-aarch64 binfmt handler (apt-get install qemu-user-static)")
		}
	}
	if testing.Short() {
		t.Skip("builds arm64 binaries; skipped with -short")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	bins := map[string][]byte{
		"bootstrap": testkit.GoBuild(t, testkit.Bootstrap, "arm64"),
		"testprog":  testkit.GoBuild(t, testkit.TestProg, "arm64"),
	}
	m := testManifest("cat")
	m.Platform = "linux/arm64"
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	zipPath := mustZip(t, []zipEntry{
		{"bootstrap", 0o755, bins["bootstrap"]},
		{"extract.json", 0o644, mb},
		{"rootfs/bin/testprog", 0o755, bins["testprog"]},
		{"rootfs/work/", fs.ModeDir | 0o755, nil},
	})
	data := []byte("mass,velocity\n10,2.5\n")
	var logs bytes.Buffer
	res, err := Invoke(context.Background(), zipPath, WithCSV(testkit.TempFile(t, "arm.csv", data)), WithLogWriter(&logs), WithTimeout(60*time.Second))
	if err != nil {
		t.Fatalf("Invoke: %v\nlogs:\n%s", err, logs.String())
	}
	if !bytes.Equal(res.Output, data) {
		t.Errorf("Output = %q, want %q", res.Output, data)
	}
}

// Two local invocations of one package share its link directory: the
// second waits for the first to end, then runs, and neither leaves the
// link or its lock behind.
func TestInvokeWaitsForLinkDir(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	m := testManifest("cat")
	zipPath := mustPackage(t, m)
	data := []byte("a,b\n1,2\n")
	csv := testkit.TempFile(t, "in.csv", data)

	// Another invocation holds the link directory.
	unlock, err := lockLinkDir(context.Background(), m.LinkDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		res, err := Invoke(context.Background(), zipPath, WithCSV(csv), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithTimeout(20*time.Second))
		if err == nil && !bytes.Equal(res.Output, data) {
			err = fmt.Errorf("Output = %q, want %q", res.Output, data)
		}
		done <- err
	}()
	// It says it waits (unpacking comes first: give it time), and waits.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "waiting for another local invocation of this package"); {
		if time.Now().After(deadline) {
			unlock()
			t.Fatalf("logs do not say Invoke is waiting:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		unlock()
		t.Fatalf("Invoke ended (%v) while the link directory was held", err)
	case <-time.After(500 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Invoke after the link directory was freed: %v\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Invoke still waiting after the link directory was freed")
	}
	for _, p := range []string{m.LinkDir, m.LinkDir + ".lock"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}

	// Cancelled while waiting: the context's error, promptly.
	unlock, err = lockLinkDir(context.Background(), m.LinkDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Invoke(ctx, zipPath, WithCSV(csv)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Invoke cancelled while waiting = %v, want the deadline", err)
	}
}

// treeSource is a program for a zip package that leaves a process tree
// behind: "tree TOKEN" starts a child in a session of its own (setsid),
// holding the program's stdout, and both sleep.
const treeSource = `package main

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if os.Args[1] == "tree" {
		c := exec.Command("/proc/self/exe", "orphan", os.Args[2])
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		c.Stdout = os.Stdout
		if err := c.Start(); err != nil {
			panic(err)
		}
	}
	time.Sleep(time.Hour)
}
`

// mustTreePackage writes a zip package whose program runs treeSource's
// "tree" with token, its stdout a pipe (the child keeps it open), and
// returns it with a CSV to invoke it on.
func mustTreePackage(t *testing.T, token string) (zipPath, csv string) {
	t.Helper()
	bootstrap, _ := mustBuilt(t)
	m := testManifest()
	m.Program = "/bin/tree"
	m.Args = []string{"tree", "tree", token}
	m.Output.Stdout = xruntime.StdoutPipe
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	zipPath = mustZip(t, []zipEntry{
		{"bootstrap", 0o755, testkit.ReadFile(t, bootstrap)},
		{"extract.json", 0o644, mb},
		{"rootfs/bin/tree", 0o755, testkit.ReadFile(t, testkit.GoProgram(t, treeSource, "amd64"))},
		{"rootfs/work/", fs.ModeDir | 0o755, nil},
	})
	return zipPath, testkit.TempFile(t, "in.csv", []byte("a\n"))
}

// TestInvokeDiesWithCaller kills a process in the middle of an invocation
// of a zip package whose program started a child in a session of its
// own: the bootstrap, the program and the child must die with it.
func TestInvokeDiesWithCaller(t *testing.T) {
	if invokeHelperProcess() {
		return
	}
	testkit.Root(t, "the bootstrap gets a PID namespace only as root")
	tmpdir := t.TempDir()
	token := "tree-" + filepath.Base(filepath.Dir(tmpdir))
	zipPath, csv := mustTreePackage(t, token)
	killInvokerMidInvocation(t, "TestInvokeDiesWithCaller", zipPath, csv, tmpdir, token)
}

// TestInvokeCancelKillsTree cancels an invocation (Ctrl-C) of a zip package
// whose program started a child in a session of its own, holding its
// stdout: Invoke must return promptly and leave no process behind.
func TestInvokeCancelKillsTree(t *testing.T) {
	testkit.Root(t, "the bootstrap gets a PID namespace only as root")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	tmpdir := t.TempDir()
	token := "tree-" + filepath.Base(filepath.Dir(tmpdir))
	zipPath, csv := mustTreePackage(t, token)
	t.Setenv("TMPDIR", tmpdir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Invoke(ctx, zipPath, WithCSV(csv), WithTimeout(time.Minute))
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(processesWith(token)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the program and its child did not start: %v", processesWith(token))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Invoke cancelled = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Invoke still running 10s after its context was cancelled")
	}
	if left := processesWith(token); len(left) > 0 {
		t.Errorf("processes left running after Invoke returned: %v", left)
	}
}

func TestLocalEndpoint(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:5000":              true,
		"http://127.0.0.2:5000":              true,
		"http://[::1]:9000":                  true,
		"http://localhost:4566":              true,
		"http://s3.localhost.":               true,
		"http://0.0.0.0:9000":                true,
		"::not a url":                        true,
		"https://s3.eu-west-1.amazonaws.com": false,
		"http://minio.internal:9000":         false,
		"http://10.0.0.5:9000":               false,
		"http://localhost.example.com":       false,
	} {
		if got := localEndpoint(endpoint); got != want {
			t.Errorf("localEndpoint(%q) = %v, want %v", endpoint, got, want)
		}
	}
}

// TestInvokeLocalEndpointCredentials runs a package against moto on
// 127.0.0.1 behind a proxy that records the access keys of the requests,
// with the caller's credentials in the environment: the endpoint and the
// bootstrap get per-invocation dummy credentials, never the caller's,
// unless WithCallerCredentials asks. The program (made with
// PassAWSCredentials) shows what the bootstrap got.
func TestInvokeLocalEndpointCredentials(t *testing.T) {
	moto, err := url.Parse(mototest.Start(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	proxy := httputil.NewSingleHostReverseProxy(moto)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[requestAccessKey(r)]++
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	const callerKey, callerSecret = "AKIACALLERSREALKEY01", "caller-secret"
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ACCESS_KEY_ID", callerKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", callerSecret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "us-east-1")
	m := testManifest("env")
	m.PassAWSCredentials = true
	zipPath := mustPackage(t, m)
	csv := testkit.TempFile(t, "creds.csv", []byte("x\n"))
	programEnv := func(opts ...Option) map[string]string {
		t.Helper()
		var logs bytes.Buffer
		res, err := Invoke(context.Background(), zipPath, append(opts, WithCSV(csv), WithLogWriter(&logs), WithTimeout(20*time.Second))...)
		if err != nil {
			t.Fatalf("Invoke: %v\nlogs:\n%s", err, logs.String())
		}
		env := map[string]string{}
		for _, l := range strings.Split(string(res.Output), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = v
			}
		}
		return env
	}

	env := programEnv()
	if got := env["AWS_ACCESS_KEY_ID"]; got == callerKey || !strings.HasPrefix(got, "LOCAL") {
		t.Errorf("with a local endpoint the bootstrap got AWS_ACCESS_KEY_ID=%q, want a dummy LOCAL... key", got)
	}
	if got := env["AWS_SECRET_ACCESS_KEY"]; got == callerSecret || got == "" {
		t.Errorf("with a local endpoint the bootstrap got AWS_SECRET_ACCESS_KEY=%q, want a dummy one", got)
	}
	mu.Lock()
	if seen[callerKey] > 0 || seen[env["AWS_ACCESS_KEY_ID"]] == 0 {
		t.Errorf("the local endpoint saw access keys %v, want only the dummy %q", seen, env["AWS_ACCESS_KEY_ID"])
	}
	clear(seen)
	mu.Unlock()

	env = programEnv(WithCallerCredentials())
	if got := env["AWS_ACCESS_KEY_ID"]; got != callerKey || env["AWS_SECRET_ACCESS_KEY"] != callerSecret {
		t.Errorf("WithCallerCredentials: the bootstrap got AWS_ACCESS_KEY_ID=%q, want the caller's %q", got, callerKey)
	}
	mu.Lock()
	if seen[callerKey] == 0 {
		t.Errorf("WithCallerCredentials: the endpoint saw access keys %v, want the caller's", seen)
	}
	mu.Unlock()
}

// mustForeignSymlink makes a symlink at p to target owned by another user
// (65534), as one another local user would plant in /tmp, and removes it
// at the end of the test.
func mustForeignSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	if err := os.Lchown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// TestInvokeRefusesForeignLinkDir plants what another local user could
// before an invocation — a symlink at the link directory's lock, a symlink
// at the link directory, a lock file of theirs — and checks that Invoke
// refuses with a clear error instead of following or using it.
func TestInvokeRefusesForeignLinkDir(t *testing.T) {
	testkit.Root(t, "planting another user's files needs root (chown)")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	csv := testkit.TempFile(t, "in.csv", []byte("a\n"))
	invoke := func(m xruntime.Manifest) error {
		t.Helper()
		_, err := Invoke(context.Background(), mustPackage(t, m), WithCSV(csv), WithTimeout(20*time.Second))
		return err
	}

	t.Run("symlink at the lock", func(t *testing.T) {
		m := testManifest("cat")
		victim := filepath.Join(t.TempDir(), "victim")
		mustForeignSymlink(t, victim, m.LinkDir+".lock")
		err := invoke(m)
		if err == nil || !strings.Contains(err.Error(), m.LinkDir+".lock") || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("Invoke with a foreign symlink at the lock = %v, want a refusal naming it", err)
		}
		if _, err := os.Lstat(victim); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the symlink's target was created (%v)", err)
		}
	})
	t.Run("lock file of another user", func(t *testing.T) {
		m := testManifest("cat")
		lock := m.LinkDir + ".lock"
		if err := os.WriteFile(lock, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(lock) })
		if err := os.Chown(lock, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := invoke(m)
		if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("Invoke with another user's lock = %v, want a refusal naming the owner", err)
		}
	})
	t.Run("symlink at the link directory", func(t *testing.T) {
		m := testManifest("cat")
		theirs := t.TempDir()
		mustForeignSymlink(t, theirs, m.LinkDir)
		err := invoke(m)
		if err == nil || !strings.Contains(err.Error(), m.LinkDir) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("Invoke with a foreign symlink at the link directory = %v, want a refusal naming it and its owner", err)
		}
		if target, err := os.Readlink(m.LinkDir); err != nil || target != theirs {
			t.Errorf("the planted link now points at %q (%v), want it left alone", target, err)
		}
		if _, err := os.Lstat(m.LinkDir + ".lock"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the lock was left behind after the refusal (%v)", err)
		}
	})
	t.Run("stale link of ours", func(t *testing.T) {
		// A killed invocation's link (ours) is replaced, not refused.
		m := testManifest("cat")
		if err := os.Symlink(t.TempDir(), m.LinkDir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(m.LinkDir) })
		if err := invoke(m); err != nil {
			t.Errorf("Invoke with a stale link of ours: %v", err)
		}
		if _, err := os.Lstat(m.LinkDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("link dir left behind after Invoke (%v)", err)
		}
	})
}
