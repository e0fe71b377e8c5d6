package local

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

// probeSource is a function for an image's ENTRYPOINT that speaks the
// Runtime API itself: it takes one event and answers with what it sees of
// its sandbox.
const probeSource = `package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

func try(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.EROFS):
		return "EROFS"
	case errors.Is(err, syscall.EACCES):
		return "EACCES"
	}
	return err.Error()
}

func create(p string) string {
	f, err := os.Create(p)
	if err == nil {
		f.Close()
		os.Remove(p)
	}
	return try(err)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" {
		time.Sleep(time.Hour)
	}
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	resp, err := http.Get(api + "next")
	if err != nil {
		panic(err)
	}
	if len(os.Args) > 1 && os.Args[1] == "hang" {
		// A child in the background, in a process group of its own as
		// the bootstrap starts programs, and no answer.
		child := exec.Command("/proc/self/exe", append([]string{"sleep"}, os.Args[2:]...)...)
		child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := child.Start(); err != nil {
			panic(err)
		}
		time.Sleep(time.Hour)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	resp.Body.Close()
	r := map[string]any{}
	r["uid"], r["gid"], r["euid"] = os.Getuid(), os.Getgid(), os.Geteuid()
	r["cwd"], _ = os.Getwd()
	names, _ := os.ReadDir("/tmp")
	r["tmp_entries"] = len(names)
	r["write_root"] = create("/probe-file")
	r["write_workdir"] = create("probe-file")
	r["write_etc"] = try(os.WriteFile("/etc/app.conf", []byte("x"), 0o644))
	r["write_tmp"] = create("/tmp/probe-file")
	r["mkdir_tmp"] = try(os.Mkdir("/tmp/d", 0o700))
	if fi, err := os.Stat("/tmp"); err == nil {
		r["tmp_mode"] = fi.Mode().String()
	}
	conf, err := os.ReadFile("/etc/app.conf")
	r["conf"] = strings.TrimSpace(string(conf)) + try(err)
	r["exe"], _ = os.Executable()
	f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write([]byte("x"))
		f.Close()
	}
	r["dev_null"] = try(err)
	b := make([]byte, 8)
	f, err = os.Open("/dev/urandom")
	if err == nil {
		_, err = f.Read(b)
		f.Close()
	}
	r["dev_urandom"] = try(err)
	_, err = os.Stat("/proc/1")
	r["proc_1"] = try(err)
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	r["env"] = env
	body, _ := json.Marshal(r)
	resp, err = http.Post(api+id+"/response", "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
}
`

// probeReport is what the probe answers.
type probeReport struct {
	UID          int               `json:"uid"`
	GID          int               `json:"gid"`
	EUID         int               `json:"euid"`
	Cwd          string            `json:"cwd"`
	WriteRoot    string            `json:"write_root"`
	WriteWorkdir string            `json:"write_workdir"`
	WriteEtc     string            `json:"write_etc"`
	WriteTmp     string            `json:"write_tmp"`
	MkdirTmp     string            `json:"mkdir_tmp"`
	TmpMode      string            `json:"tmp_mode"`
	TmpEntries   int               `json:"tmp_entries"`
	Conf         string            `json:"conf"`
	Exe          string            `json:"exe"`
	DevNull      string            `json:"dev_null"`
	DevUrandom   string            `json:"dev_urandom"`
	Proc1        string            `json:"proc_1"`
	Env          map[string]string `json:"env"`
}

// mustProbeImage builds a Lambda container image whose ENTRYPOINT is the
// probe, found through the image's PATH, with a WORKDIR anyone may write
// to (so only a read-only mount can refuse writes there), a config file at
// a compiled-in path, a /tmp that is a symlink with content (Lambda mounts
// its own /tmp over it), a read-only directory and no /proc or /dev. With
// cmd "hang" (and more arguments, passed to its child), the probe takes the
// event, starts a child and never answers.
func mustProbeImage(t *testing.T, cmd ...string) v1.Image {
	t.Helper()
	probe := testkit.GoProgram(t, probeSource, "amd64")
	return testkit.Image(t, v1.Config{
		Entrypoint: []string{"probe"},
		Cmd:        cmd,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin", "APP_MODE=probe", "AWS_LAMBDA_FUNCTION_NAME=from-the-image"},
		WorkingDir: "/work",
	}, []testkit.File{
		{Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/bin/", Type: tar.TypeDir},
		{Name: "usr/bin/probe", From: probe, Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/app.conf", Body: "mode=image\n"},
		{Name: "work/", Type: tar.TypeDir, Mode: 0o777},
		{Name: "var/", Type: tar.TypeDir},
		{Name: "var/tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "var/tmp/old", Body: "left over\n"},
		{Name: "tmp", Type: tar.TypeSymlink, Link: "var/tmp"},
		{Name: "ro/", Type: tar.TypeDir, Mode: 0o555},
		{Name: "ro/file", Body: "in a read-only directory\n", Mode: 0o444},
	})
}

// mustWriteOCI writes img as an OCI layout and returns "oci:DIR".
func mustWriteOCI(t testing.TB, img v1.Image, base string) string {
	t.Helper()
	return "oci:" + testkit.OCILayout(t, img, base)
}

// mustWriteDockerArchive writes img as `docker save` would and returns
// "docker-archive:FILE".
func mustWriteDockerArchive(t testing.TB, img v1.Image, base string) string {
	t.Helper()
	return "docker-archive:" + testkit.DockerArchive(t, img, base)
}

// TestInvokeImageSandbox runs a probe as an image's ENTRYPOINT and checks
// it sees Lambda's sandbox: a non-root uid (the default and another one),
// a read-only root (EROFS in a WORKDIR with mode 777 and on a file
// it could otherwise open), a fresh empty /tmp with mode 1777, /dev and
// /proc, the image's ENV under Lambda's variables, and the WORKDIR.
func TestInvokeImageSandbox(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	img := mustProbeImage(t)
	refs := map[string]string{
		"oci":            mustWriteOCI(t, img, "probe-fn"),
		"docker-archive": mustWriteDockerArchive(t, img, "probe-fn"),
	}
	for _, tt := range []struct {
		name     string
		ref      string
		opts     []Option
		uid, gid int
	}{
		{"oci default uid", refs["oci"], nil, 65534, 65534},
		{"oci uid 993", refs["oci"], []Option{WithUID(993, 990)}, 993, 990},
		{"docker-archive", refs["docker-archive"], nil, 65534, 65534},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A TMPDIR of its own, to see Invoke leaves nothing behind.
			tmpdir := t.TempDir()
			t.Setenv("TMPDIR", tmpdir)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var log strings.Builder
			opts := append([]Option{WithEvent([]byte(`{}`)), WithLogWriter(&log), WithMemorySize(512)}, tt.opts...)
			res, err := Invoke(ctx, tt.ref, opts...)
			if err != nil {
				t.Fatalf("Invoke(%q): %v\nlog:\n%s", tt.ref, err, log.String())
			}
			var got probeReport
			if err := json.Unmarshal(res.Response, &got); err != nil {
				t.Fatalf("probe response %s: %v", res.Response, err)
			}
			env := got.Env
			got.Env = nil
			want := probeReport{
				UID: tt.uid, GID: tt.gid, EUID: tt.uid,
				Cwd:          "/work",
				WriteRoot:    "EROFS",
				WriteWorkdir: "EROFS",
				WriteEtc:     "EROFS",
				WriteTmp:     "ok",
				MkdirTmp:     "ok",
				TmpMode:      "dtrwxrwxrwx",
				TmpEntries:   0,
				Conf:         "mode=imageok",
				Exe:          "/usr/bin/probe",
				DevNull:      "ok",
				DevUrandom:   "ok",
				// The host's init is root's: hidden.
				Proc1: "stat /proc/1: no such file or directory",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("what the probe sees (-want +got):\n%s", diff)
			}
			for k, v := range map[string]string{
				"APP_MODE":                        "probe",
				"PATH":                            "/usr/local/bin:/usr/bin",
				"AWS_LAMBDA_FUNCTION_NAME":        "probe-fn",
				"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
				"LAMBDA_TASK_ROOT":                "/var/task",
				"LAMBDA_RUNTIME_DIR":              "/var/runtime",
				"TZ":                              ":UTC",
				"LD_LIBRARY_PATH":                 lambdaDefaultLibraryPath,
			} {
				if env[k] != v {
					t.Errorf("the probe's %s = %q, want %q", k, env[k], v)
				}
			}
			if !strings.HasPrefix(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
				t.Errorf("the probe's AWS_LAMBDA_RUNTIME_API = %q, want 127.0.0.1:PORT", env["AWS_LAMBDA_RUNTIME_API"])
			}
			if _, ok := env["TMPDIR"]; ok {
				t.Errorf("the probe has TMPDIR=%q; Lambda sets none for images", env["TMPDIR"])
			}
			left, err := os.ReadDir(tmpdir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("Invoke left %d entries in TMPDIR (%s...)", len(left), left[0].Name())
			}
		})
	}
}

// TestInvokeImageFortran packages the showcase (the gfortran-built momentum
// from Debian packages) as a container image with the real bootstrap,
// writes it as an OCI layout, a docker archive and to a registry, and runs
// each with --csv the way Lambda runs images: the output must equal the
// example's expected.csv. It logs the cold-path invoke time (flatten,
// start, run) of each and of the same image as a zip.
func TestInvokeImageFortran(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	fixtures := testkit.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	example := filepath.Join("..", "..", "examples", "fortran-momentum", "data")
	sample := filepath.Join(example, "sample.csv")
	expected := testkit.ReadFile(t, filepath.Join(example, "expected.csv"))

	v1img, err := imagebuild.Fixture(fixtures, "fortran-merged")
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Serve(t, v1img)
	res, err := lambda.PackageImage(ctx, img)
	if err != nil {
		t.Fatalf("PackageImage: %v", err)
	}
	defer res.Close()
	srv := testkit.NewRegistry(t, nil)
	refs := []struct{ name, dest string }{
		{"oci", "oci:" + filepath.Join(t.TempDir(), "momentum")},
		{"docker-archive", "docker-archive:" + filepath.Join(t.TempDir(), "momentum.tar")},
		{"registry", srv.Host() + "/momentum:v1"},
	}
	for _, r := range refs {
		if _, err := lambda.WriteImage(ctx, res.Image, r.dest); err != nil {
			t.Fatalf("lambda.WriteImage(%q): %v", r.dest, err)
		}
	}
	zipPath := filepath.Join(t.TempDir(), "momentum.zip")
	if _, err := lambda.PackageFile(ctx, img, zipPath); err != nil {
		t.Fatalf("PackageFile: %v", err)
	}
	refs = append(refs, struct{ name, dest string }{"zip", zipPath})

	for _, r := range refs {
		t.Run(r.name, func(t *testing.T) {
			var log strings.Builder
			start := time.Now()
			got, err := Invoke(ctx, r.dest, WithCSV(sample), WithLogWriter(&log),
				WithImageOptions(image.WithCacheDir(t.TempDir())))
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Invoke(%q): %v\nlog:\n%s", r.dest, err, log.String())
			}
			if diff := cmp.Diff(string(expected), string(got.Output)); diff != "" {
				t.Errorf("output of the %s package (-want +got):\n%s\nlog:\n%s", r.name, diff, log.String())
			}
			t.Logf("%s: cold-path invoke %v (init %v, invocation %v)", r.name, elapsed.Round(time.Millisecond), got.InitDuration.Round(time.Millisecond), got.Duration.Round(time.Millisecond))
		})
	}
}

// TestInvokeImageTimeout runs an image whose entrypoint takes the event,
// starts a child in another process group and never answers: Invoke must
// report the timeout, and leave neither process nor file behind.
func TestInvokeImageTimeout(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	tmpdir := t.TempDir()
	token := "hang-" + filepath.Base(filepath.Dir(tmpdir))
	ref := mustWriteOCI(t, mustProbeImage(t, "hang", token), "hang")
	t.Setenv("TMPDIR", tmpdir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log strings.Builder
	// While it runs, the probe and its child are seen (so the check
	// below can see them).
	seen := make(chan int)
	done := make(chan struct{})
	go func() {
		most := 0
		for {
			select {
			case <-done:
				seen <- most
				return
			case <-time.After(20 * time.Millisecond):
				most = max(most, len(processesWith(token)))
			}
		}
	}()
	res, err := Invoke(ctx, ref, WithEvent([]byte(`{}`)), WithTimeout(2*time.Second), WithLogWriter(&log))
	close(done)
	if most := <-seen; most < 2 {
		t.Errorf("saw at most %d processes of the image while it ran, want the probe and its child", most)
	}
	var ie *InvokeError
	if !errors.As(err, &ie) || res.Error == nil || res.Error.ErrorType != ErrorTypeTimeout {
		t.Fatalf("Invoke of a hanging image = %+v, %v; want an *InvokeError of type %s\nlog:\n%s", res, err, ErrorTypeTimeout, log.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesWith(token)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left running after Invoke: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left, _ := os.ReadDir(tmpdir); len(left) > 0 {
		t.Errorf("Invoke left %d entries in TMPDIR (%s...)", len(left), left[0].Name())
	}
}

// processesWith lists the processes with token among their arguments
// (none when /proc cannot be read: callers check they see running ones).
func processesWith(token string) []string {
	procs, _ := os.ReadDir("/proc")
	var out []string
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if slices.Contains(args[1:], token) {
			out = append(out, p.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}

func TestImageFunctionName(t *testing.T) {
	for ref, want := range map[string]string{
		"oci:/tmp/momentum":                         "momentum",
		"oci:/tmp/momentum/":                        "momentum",
		"oci:/tmp/momentum:v1":                      "momentum",
		"oci:layouts/my.fn":                         "my-fn",
		"docker-archive:/x/momentum.tar":            "momentum",
		"docker-archive:/x/momentum.tar:repo:tag":   "momentum",
		"oci-archive:m.tar":                         "m",
		"123.dkr.ecr.us-east-1.amazonaws.com/a/b:1": "b",
		"docker://gcr.io/p/momentum@sha256:abc":     "momentum",
		"localhost:5000/momentum":                   "momentum",
		"oci:/tmp/a b+c":                            "a-b-c",
	} {
		if got := imageFunctionName(ref); got != want {
			t.Errorf("imageFunctionName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestIsZipPackage(t *testing.T) {
	dir := t.TempDir()
	zipFile := filepath.Join(dir, "fn")
	if err := os.WriteFile(zipFile, []byte("PK\x03\x04rest"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.bin")
	if err := os.WriteFile(other, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "image.tar")
	tarBytes := testkit.Tar(t, testkit.File{Name: "manifest.json", Body: "[]"})
	if err := os.WriteFile(tarFile, tarBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	for pkg, want := range map[string]bool{
		tarFile:                           false, // an image archive without its transport
		dir:                               false, // an OCI layout without its transport
		zipFile:                           true,  // by its bytes
		other:                             true,  // a local file: the zip path says it is no zip
		filepath.Join(dir, "missing.zip"): true,  // the zip path says it is missing
		"oci:" + dir:                      false,
		"oci:" + dir + "/x.zip":           false,
		"docker-archive:" + other:         false,
		"momentum:v1":                     false,
		"gcr.io/p/momentum":               false,
	} {
		if got := isZipPackage(pkg); got != want {
			t.Errorf("isZipPackage(%q) = %v, want %v", pkg, got, want)
		}
	}
}

func TestImageEnviron(t *testing.T) {
	got := imageEnviron(
		[]string{"PATH=/app/bin", "HOME=/home/app", "TZ=Europe/Paris"},
		[]string{"AWS_REGION=eu-west-1", "TZ=:UTC"},
	)
	want := []string{"PATH=/app/bin", "HOME=/home/app", "TZ=:UTC", "AWS_REGION=eu-west-1", "LD_LIBRARY_PATH=" + lambdaDefaultLibraryPath}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imageEnviron (-want +got):\n%s", diff)
	}
	got = imageEnviron(nil, nil)
	want = []string{"PATH=" + lambdaDefaultPath, "LD_LIBRARY_PATH=" + lambdaDefaultLibraryPath}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imageEnviron of an image without ENV (-want +got):\n%s", diff)
	}
}

// TestInvokeImageLocalWithoutTransport: a local tar or directory named
// without its transport gets an error naming the transports.
func TestInvokeImageLocalWithoutTransport(t *testing.T) {
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	dir := t.TempDir()
	tarFile := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(tarFile, testkit.Tar(t, testkit.File{Name: "manifest.json", Body: "[]"}), 0o644); err != nil {
		t.Fatal(err)
	}
	for pkg, want := range map[string]string{
		tarFile: "docker-archive:" + tarFile,
		dir:     "oci:" + dir,
	} {
		_, err := Invoke(context.Background(), pkg, WithEvent([]byte(`{}`)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Invoke(%q) = %v, want an error naming %s", pkg, err, want)
		}
	}
}

// TestOpenInvokeImagePlatform: a single-platform image opens whatever its
// platform (a Lambda image has one), unless WithPlatform asks for
// another.
func TestOpenInvokeImagePlatform(t *testing.T) {
	img := testkit.Image(t, v1.Config{Entrypoint: []string{"/x"}}, []testkit.File{{Name: "x", Body: "x", Mode: 0o755}})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := mustWriteOCI(t, img, "arm")
	o := options{logger: slog.New(slog.DiscardHandler)}
	got, err := openInvokeImage(context.Background(), ref, o)
	if err != nil {
		t.Fatalf("openInvokeImage(%q): %v", ref, err)
	}
	got.Close()
	if got.Platform.String() != "linux/arm64" {
		t.Errorf("openInvokeImage(%q) platform %s, want linux/arm64", ref, got.Platform)
	}
	o.image.platform = "linux/amd64"
	var pe *image.PlatformError
	if _, err := openInvokeImage(context.Background(), ref, o); !errors.As(err, &pe) {
		t.Errorf("openInvokeImage(%q) for linux/amd64 = %v, want a *image.PlatformError", ref, err)
	}
}

func TestWithUID(t *testing.T) {
	for _, tt := range []struct {
		uid, gid int
		ok       bool
	}{{993, 990, true}, {65534, 65534, true}, {0, 0, false}, {993, 0, false}, {-1, 5, false}} {
		var o options
		err := WithUID(tt.uid, tt.gid)(&o)
		if (err == nil) != tt.ok {
			t.Errorf("WithUID(%d, %d) = %v, want ok %v", tt.uid, tt.gid, err, tt.ok)
		}
		if err == nil && (o.image.uid != tt.uid || o.image.gid != tt.gid || !o.image.uidSet) {
			t.Errorf("WithUID(%d, %d) set %+v", tt.uid, tt.gid, o.image)
		}
	}
}

// TestInvokeImageDiesWithCaller kills a process in the middle of an
// invocation of an image whose entrypoint hangs with a child: both must
// die with it.
func TestInvokeImageDiesWithCaller(t *testing.T) {
	if invokeHelperProcess() {
		return
	}
	testkit.Root(t, "running an image package needs a mount namespace and chroot")
	tmpdir := t.TempDir()
	token := "hang-" + filepath.Base(filepath.Dir(tmpdir))
	ref := mustWriteOCI(t, mustProbeImage(t, "hang", token), "hang")
	killInvokerMidInvocation(t, "TestInvokeImageDiesWithCaller", ref, "", tmpdir, token)
}

// invokeHelperProcess, in a helper process killInvokerMidInvocation
// started, invokes the package it names and returns true (the process is
// killed meanwhile); elsewhere it returns false. A test that calls
// killInvokerMidInvocation calls it first.
func invokeHelperProcess() bool {
	ref := os.Getenv("EXTRACT_TEST_INVOKE_HANG")
	if ref == "" {
		return false
	}
	what := WithEvent([]byte(`{}`))
	if csv := os.Getenv("EXTRACT_TEST_INVOKE_CSV"); csv != "" {
		what = WithCSV(csv)
	}
	Invoke(context.Background(), ref, what, WithTimeout(time.Minute))
	return true
}

// killInvokerMidInvocation runs test in a helper process that invokes ref
// (on csv with the in-process S3 when csv is set, else with an empty event)
// with TMPDIR tmpdir, waits until two processes with token in their
// arguments run (the package's program and its child), SIGKILLs the helper
// and checks that they die with it.
func killInvokerMidInvocation(t *testing.T, test, ref, csv, tmpdir, token string) {
	t.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	helper.Env = append(os.Environ(), "EXTRACT_TEST_INVOKE_HANG="+ref, "EXTRACT_TEST_INVOKE_CSV="+csv,
		"TMPDIR="+tmpdir, "AWS_ENDPOINT_URL_S3=", "AWS_ENDPOINT_URL=")
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for len(processesWith(token)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the package's processes did not start: %v", processesWith(token))
		}
		time.Sleep(20 * time.Millisecond)
	}
	helper.Process.Kill()
	helper.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for {
		left := processesWith(token)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left running after their invoker died: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
