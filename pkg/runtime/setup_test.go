package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
)

func writeManifest(t *testing.T, root string, m any) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ManifestPath), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadManifest(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]any
		want    *Manifest
		wantErr []string
	}{
		{
			name: "defaults",
			m:    map[string]any{"version": 1, "program": "/usr/bin/momentum"},
			want: &Manifest{Version: 1, Program: "/usr/bin/momentum", Args: []string{"/usr/bin/momentum"},
				Input: Input{Mode: "stdin", Suffix: ".csv"}, Output: Output{Prefix: "output/", Stdout: "file"}},
		},
		{
			name: "kept",
			m: map[string]any{"version": 1, "program": "/bin/p", "args": []string{"p", "{input}"},
				"input": map[string]any{"mode": "file", "suffix": ".tsv"}, "output": map[string]any{"bucket": "out", "prefix": "res/", "suffix": ".out", "stdout": "pipe"}},
			want: &Manifest{Version: 1, Program: "/bin/p", Args: []string{"p", "{input}"},
				Input: Input{Mode: "file", Suffix: ".tsv"}, Output: Output{Bucket: "out", Prefix: "res/", Suffix: ".out", Stdout: "pipe"}},
		},
		{
			name: "an empty suffix is every key, not the default",
			m:    map[string]any{"version": 1, "program": "/bin/p", "input": map[string]any{"prefix": "in/", "suffix": ""}},
			want: &Manifest{Version: 1, Program: "/bin/p", Args: []string{"/bin/p"},
				Input: Input{Mode: "stdin", Prefix: "in/"}, Output: Output{Prefix: "output/", Stdout: "file"}},
		},
		{
			name: "an absent suffix is the default",
			m:    map[string]any{"version": 1, "program": "/bin/p", "input": map[string]any{"mode": "file"}},
			want: &Manifest{Version: 1, Program: "/bin/p", Args: []string{"/bin/p"},
				Input: Input{Mode: "file", Suffix: ".csv"}, Output: Output{Prefix: "output/", Stdout: "file"}},
		},
		{
			name: "all problems at once",
			m: map[string]any{"version": 2, "program": "bin/p", "input": map[string]any{"mode": "pipe"}, "link_dir": "tmp/x",
				"output": map[string]any{"stdout": "socket"}},
			wantErr: []string{"version 2", `program "bin/p"`, `input mode "pipe"`, `link dir "tmp/x"`, `stdout mode "socket"`},
		},
		{
			name:    "unknown format",
			m:       map[string]any{"version": 1, "program": "/bin/p", "format": "tarball"},
			wantErr: []string{`format "tarball"`},
		},
		{
			name:    "an image package has no link dir",
			m:       map[string]any{"version": 1, "program": "/bin/p", "format": "image", "link_dir": "/tmp/x1"},
			wantErr: []string{`no link dir, got "/tmp/x1"`},
		},
		{
			name:    "no program",
			m:       map[string]any{"version": 1},
			wantErr: []string{"no program"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeManifest(t, root, tt.m)
			got, err := LoadManifest(root)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadManifest = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LoadManifest (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := LoadManifest(t.TempDir()); err == nil {
		t.Error("LoadManifest(empty dir) = nil error")
	}
}

func TestEnviron(t *testing.T) {
	const root = "/var/task"
	// What Lambda gives the bootstrap, with one variable of the
	// function's (deploy --env LEVEL=debug).
	lambdaEnv := []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64",
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
		"AWS_ACCESS_KEY_ID=AKIA",
		"AWS_SECRET_ACCESS_KEY=s",
		"AWS_SESSION_TOKEN=t",
		"AWS_LAMBDA_FUNCTION_NAME=fn",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT=/var/task",
		"_HANDLER=bootstrap",
		"_X_AMZN_TRACE_ID=Root=1",
		"LEVEL=debug",
	}
	tests := []struct {
		name string
		m    Manifest
		base []string
		want []string
	}{
		{
			name: "the image's env and the function's, none of Lambda's runtime variables",
			m: Manifest{
				Env:         []string{"PATH=/opt/app/bin:/usr/bin:/bin", "LANG=C.UTF-8", "APP=1"},
				LibraryPath: []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"},
			},
			base: lambdaEnv,
			want: []string{
				"LEVEL=debug",
				"LANG=C.UTF-8",
				"APP=1",
				"PATH=/var/task/rootfs/opt/app/bin:/var/task/rootfs/usr/bin:/var/task/rootfs/bin",
				"LD_LIBRARY_PATH=/var/task/rootfs/usr/lib/x86_64-linux-gnu:/var/task/rootfs/lib/x86_64-linux-gnu",
				"HOME=/tmp",
			},
		},
		{
			name: "no image PATH, no libraries, no TZ or LANG",
			m:    Manifest{},
			base: lambdaEnv,
			want: []string{
				"LEVEL=debug",
				"PATH=/var/task/rootfs/usr/local/sbin:/var/task/rootfs/usr/local/bin:/var/task/rootfs/usr/sbin:/var/task/rootfs/usr/bin:/var/task/rootfs/sbin:/var/task/rootfs/bin",
				"HOME=/tmp",
			},
		},
		{
			name: "the closure's variables from the manifest",
			m: Manifest{
				Env:     []string{"LANG=C.UTF-8", "TZ=:/tmp/x0123456789/rootfs/etc/localtime", "LOCPATH=/tmp/x0123456789/rootfs/usr/lib/locale"},
				LinkDir: "/tmp/x0123456789",
			},
			base: lambdaEnv,
			want: []string{
				"LEVEL=debug",
				"LANG=C.UTF-8",
				"TZ=:/tmp/x0123456789/rootfs/etc/localtime",
				"LOCPATH=/tmp/x0123456789/rootfs/usr/lib/locale",
				"PATH=/var/task/rootfs/usr/local/sbin:/var/task/rootfs/usr/local/bin:/var/task/rootfs/usr/sbin:/var/task/rootfs/usr/bin:/var/task/rootfs/sbin:/var/task/rootfs/bin",
				"HOME=/tmp",
			},
		},
		{
			name: "pass AWS credentials: credentials, region and endpoints, not the runtime API",
			m:    Manifest{PassAWSCredentials: true, Env: []string{"PATH=/bin"}},
			base: append([]string{"AWS_ENDPOINT_URL_S3=http://127.0.0.1:5000", "AWS_ENDPOINT_URL=http://127.0.0.1:4566"}, lambdaEnv...),
			want: []string{
				"AWS_ENDPOINT_URL_S3=http://127.0.0.1:5000",
				"AWS_ENDPOINT_URL=http://127.0.0.1:4566",
				"AWS_REGION=eu-west-1",
				"AWS_DEFAULT_REGION=eu-west-1",
				"AWS_ACCESS_KEY_ID=AKIA",
				"AWS_SECRET_ACCESS_KEY=s",
				"AWS_SESSION_TOKEN=t",
				"LEVEL=debug",
				"PATH=/var/task/rootfs/bin",
				"HOME=/tmp",
			},
		},
		{
			name: "image LD_LIBRARY_PATH after LibraryPath, duplicates and relative entries dropped",
			m: Manifest{
				Env:         []string{"LD_LIBRARY_PATH=/opt/lib:/usr/lib:rel", "HOME=/home/app", "PATH=/bin::/bin"},
				LibraryPath: []string{"/usr/lib"},
			},
			base: []string{"HOME=/x"},
			want: []string{
				"HOME=/home/app",
				"PATH=/var/task/rootfs/bin",
				"LD_LIBRARY_PATH=/var/task/rootfs/usr/lib:/var/task/rootfs/opt/lib",
			},
		},
		{
			name: "image package: the container's environment, none of Lambda's runtime variables",
			m: Manifest{
				Format: FormatImage,
				Env:    []string{"PATH=/opt/app/bin:/usr/bin:/bin", "APP=1", "HOME=/root"},
			},
			base: lambdaEnv,
			want: []string{
				"LEVEL=debug",
				"APP=1",
				"HOME=/root",
				"PATH=/opt/app/bin:/usr/bin:/bin",
			},
		},
		{
			name: "image package: the image's LD_LIBRARY_PATH as written, HOME / when unset",
			m: Manifest{
				Format: FormatImage,
				Env:    []string{"LD_LIBRARY_PATH=/opt/lib", "TZ=Europe/Paris"},
			},
			base: lambdaEnv,
			want: []string{
				"LEVEL=debug",
				"TZ=Europe/Paris",
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"LD_LIBRARY_PATH=/opt/lib",
				"HOME=/",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Environ(&tt.m, root, tt.base)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Environ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetupLinkDir(t *testing.T) {
	tmp := t.TempDir()
	link := filepath.Join(tmp, "x0123456789")
	root1, root2 := t.TempDir(), t.TempDir()
	m := &Manifest{Program: "/bin/p", LinkDir: link}
	for i, root := range []string{root1, root1, root2} { // create, keep, replace
		if err := Setup(m, root); err != nil {
			t.Fatalf("Setup %d: %v", i, err)
		}
		got, err := os.Readlink(link)
		if err != nil || got != root {
			t.Errorf("Setup %d: %s -> %q (%v), want %q", i, link, got, err, root)
		}
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 1 {
		t.Errorf("%d entries in the link's directory, want only the link (no temporary names left)", len(entries))
	}
	// A directory where the link goes is an error, not silently kept.
	blocked := filepath.Join(tmp, "xdir")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocked, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Setup(&Manifest{Program: "/bin/p", LinkDir: blocked}, root1); err == nil {
		t.Error("Setup with a non-empty directory at LinkDir = nil error")
	}
}

func TestSetupWritableWorkDir(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root := t.TempDir()
	work := filepath.Join(root, RootDir, "app")
	if err := os.MkdirAll(filepath.Join(work, "data"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "data", "table.txt"), []byte("42"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data/table.txt", filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Program: "/bin/p", WorkDir: "/app", WritableWorkDir: true}
	if err := Setup(m, root); err != nil {
		t.Fatal(err)
	}
	dir := WorkDir(m, root)
	if !strings.HasPrefix(dir, os.TempDir()) {
		t.Fatalf("WorkDir = %q, want a copy under %s", dir, os.TempDir())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "link")); err != nil || string(b) != "42" {
		t.Errorf("copied link reads %q (%v), want 42", b, err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "link")); target != "data/table.txt" {
		t.Errorf("copied link -> %q, want it kept as a symlink", target)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "new.txt"), []byte("x"), 0o644); err != nil {
		t.Errorf("the copy is not writable: %v", err)
	}
	// Once: a second Setup keeps what the program wrote.
	if err := Setup(m, root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "new.txt")); err != nil {
		t.Errorf("second Setup replaced the copy: %v", err)
	}
	// A missing WORKDIR gets an empty writable directory.
	m2 := &Manifest{Program: "/bin/p", WorkDir: "/missing"}
	if err := Setup(m2, root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(WorkDir(m2, root)); err != nil || !fi.IsDir() {
		t.Errorf("WorkDir for a missing WORKDIR: %v", err)
	}
	// A present WORKDIR without WritableWorkDir is used in place.
	m3 := &Manifest{Program: "/bin/p", WorkDir: "/app"}
	if got := WorkDir(m3, root); got != work {
		t.Errorf("WorkDir = %q, want %q", got, work)
	}
}

func TestProgramPath(t *testing.T) {
	root := t.TempDir()
	rootfs := filepath.Join(root, RootDir)
	for _, d := range []string{"usr/bin", "usr/lib/app"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "usr/lib/app/run"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"bin":                 "usr/bin",               // relative
		"usr/bin/app":         "/usr/lib/app/run",      // absolute: an image path
		"usr/bin/escape":      "../../../../../../etc", // stays inside the root
		"usr/bin/loop":        "loop",
		"usr/bin/escape-file": "/../../usr/lib/app/run",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		program string
		want    string
		wantErr bool
	}{
		{"/bin/app", filepath.Join(rootfs, "usr/lib/app/run"), false},
		{"/usr/bin/escape-file", filepath.Join(rootfs, "usr/lib/app/run"), false},
		{"/usr/bin/escape/passwd", "", true}, // /etc/passwd of the image, which is not there
		{"/usr/bin/loop", "", true},
	}
	for _, tt := range tests {
		got, err := ProgramPath(&Manifest{Program: tt.program}, root)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ProgramPath(%q) = %q, %v; want %q, error %v", tt.program, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNewS3ClientFromEnv(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		region    string
		endpoint  string
		pathStyle bool
	}{
		{"lambda", map[string]string{"AWS_REGION": "eu-west-1"}, "eu-west-1", "", false},
		{"s3 endpoint", map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5000"}, "us-east-1", "http://127.0.0.1:5000", true},
		{"global endpoint", map[string]string{"AWS_ENDPOINT_URL": "http://h:1", "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1", "http://h:1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newS3Client(func(k string) string { return tt.env[k] }).Options()
			if o.Region != tt.region || aws.ToString(o.BaseEndpoint) != tt.endpoint || o.UsePathStyle != tt.pathStyle {
				t.Errorf("client region %q endpoint %q path-style %v; want %q %q %v",
					o.Region, aws.ToString(o.BaseEndpoint), o.UsePathStyle, tt.region, tt.endpoint, tt.pathStyle)
			}
		})
	}
}

// TestImagePaths checks that an image package's program and WORKDIR are
// taken at their own paths, not under a task root.
func TestImagePaths(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("prog", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: FormatImage, Program: filepath.Join(dir, "link"), WorkDir: dir}
	got, err := ProgramPath(m, "/opt/extract")
	if err != nil || got != prog {
		t.Errorf("ProgramPath = %q, %v, want %q", got, err, prog)
	}
	if got := WorkDir(m, "/opt/extract"); got != dir {
		t.Errorf("WorkDir = %q, want the image's WORKDIR %q in place", got, dir)
	}
}
