package image_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/pkg/image"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ruleCase is one fixture of TestClosureRules: the closure with the rules
// beyond ELF must hold each path of want with a reason of the given kind,
// and none of absent.
type ruleCase struct {
	fixture    string
	entrypoint []string
	want       map[string]string // path → reason kind
	absent     []string
	env        map[string]string // ClosureResult.Env name → joined paths
}

// TestClosureRules computes the closures of the Debian fixtures with
// WithImage: a "#!/bin/sh" script's body, a Python script's imports, a
// Perl one-liner's modules and a C program's data files.
func TestClosureRules(t *testing.T) {
	tests := []ruleCase{
		{
			fixture:    "sh-tools",
			entrypoint: []string{"/usr/local/bin/tally.sh"},
			want: map[string]string{
				"/usr/local/bin/tally.sh":             "entrypoint",
				"/usr/bin/dash":                       "interpreter",
				"/usr/local/lib/tally/common.sh":      "script",
				"/usr/bin/tail":                       "command",
				"/usr/bin/cut":                        "command",
				"/usr/bin/sort":                       "command",
				"/usr/bin/uniq":                       "command",
				"/usr/bin/tr":                         "command",
				"/usr/bin/mawk":                       "command",
				"/usr/bin/awk":                        "symlink",
				"/etc/alternatives/awk":               "symlink",
				"/usr/lib/x86_64-linux-gnu/libc.so.6": "needed",
			},
			absent: []string{"/usr/bin/wc", "/usr/bin/head", "/usr/local/bin/count"},
		},
		{
			fixture: "busybox",
			want: map[string]string{
				"/usr/local/bin/tally": "entrypoint",
				"/usr/bin/busybox":     "interpreter",
				"/usr/bin/sh":          "symlink",
				"/usr/bin/sort":        "symlink",
				"/usr/bin/uniq":        "symlink",
				"/usr/bin/awk":         "symlink",
				"/usr/bin/tr":          "symlink",
			},
			absent: []string{"/usr/bin/head", "/usr/bin/wc", "/usr/bin/cat"},
		},
		{
			fixture: "python",
			want: map[string]string{
				"/app/main.py":         "entrypoint",
				"/usr/bin/env":         "interpreter",
				"/usr/bin/python3.11":  "interpreter",
				"/app/helper.py":       "module",
				"/opt/pylib/fmtlib.py": "module",
				"/usr/lib/python3/dist-packages/local-libs.pth": "module",
				"/usr/lib/python3.11/csv.py":                    "library",
				"/usr/lib/python3.11/statistics.py":             "library",
				"/usr/lib/python3.11/json/__init__.py":          "library",
			},
			absent: []string{"/usr/lib/python3.11/test/__init__.py", "/usr/lib/python3.11/idlelib/__init__.py"},
			env:    map[string]string{"PYTHONPATH": "/opt/pylib"},
		},
		{
			fixture: "perl",
			want: map[string]string{
				"/usr/bin/perl": "entrypoint",
				"/usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm":           "module",
				"/usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/Util.so": "module",
				"/usr/lib/x86_64-linux-gnu/perl-base/strict.pm":              "module",
				"/usr/lib/x86_64-linux-gnu/perl-base/XSLoader.pm":            "module",
				"/usr/lib/x86_64-linux-gnu/perl-base/Exporter.pm":            "module",
			},
			env: map[string]string{"PERL5LIB": "/usr/lib/x86_64-linux-gnu/perl-base"},
		},
		{
			fixture: "c-nss",
			want: map[string]string{
				"/usr/local/bin/whenwho":            "entrypoint",
				"/etc/passwd":                       "data",
				"/etc/group":                        "data",
				"/etc/nsswitch.conf":                "data",
				"/etc/localtime":                    "symlink",
				"/usr/share/zoneinfo/Europe/Berlin": "data",
			},
			absent: []string{"/usr/share/zoneinfo/Asia/Tokyo"},
			env:    map[string]string{"TZ": ":/etc/localtime"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			img, idx := fixtureImage(t, tt.fixture)
			ov := image.Override{}
			if tt.entrypoint != nil {
				ov = image.Override{Entrypoint: tt.entrypoint, EntrypointSet: true}
			}
			cmd, err := image.ResolveCommand(img, idx, ov)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := image.Closure(context.Background(), idx, cmd, image.WithImage(img))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Closure: %v", err)
			}
			var size int64
			files := 0
			kinds := map[string][]string{}
			for _, f := range res.Files {
				if f.Kind == image.Regular {
					size += f.Size
					files++
				}
				for _, r := range f.Why {
					kinds[f.Path] = append(kinds[f.Path], r.Kind)
				}
			}
			t.Logf("%s: %d paths, %d files, %.2f MB, closure in %v; rules %+v; notes %q", tt.fixture, len(res.Files), files, float64(size)/(1<<20), took.Round(time.Millisecond), res.Rules, res.Notes)
			for p, kind := range tt.want {
				ks, ok := kinds[p]
				if !ok {
					t.Errorf("Closure(%s) lacks %s", tt.fixture, p)
					continue
				}
				if !strings.Contains(" "+strings.Join(ks, " ")+" ", " "+kind+" ") {
					t.Errorf("Closure(%s): %s has reasons %v, want one of kind %q", tt.fixture, p, ks, kind)
				}
			}
			for _, p := range tt.absent {
				if _, ok := kinds[p]; ok {
					t.Errorf("Closure(%s) has %s (%v), want it absent", tt.fixture, p, kinds[p])
				}
			}
			gotEnv := map[string]string{}
			for _, e := range res.Env {
				gotEnv[e.Name] = e.Prefix + strings.Join(e.Paths, ":")
			}
			for k, v := range tt.env {
				if gotEnv[k] != v {
					t.Errorf("Closure(%s).Env[%s] = %q, want %q (all: %v)", tt.fixture, k, gotEnv[k], v, gotEnv)
				}
			}
		})
	}
}

// dataTree is a root with a static program and the data files the data
// rules look for.
func dataTree() map[string]node {
	return map[string]node{
		"/app/run":                               prog(elfSpec{exec: true}),
		"/etc/nsswitch.conf":                     text("passwd: files\n"),
		"/etc/passwd":                            text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
		"/etc/group":                             text("root:x:0:\napp:x:1000:\n"),
		"/etc/localtime":                         link("/usr/share/zoneinfo/Europe/Paris"),
		"/etc/timezone":                          text("Europe/Paris\n"),
		"/usr/share/zoneinfo/Europe/Paris":       text("TZif2 paris"),
		"/usr/share/zoneinfo/Asia/Tokyo":         text("TZif2 tokyo"),
		"/usr/lib/locale/C.utf8/LC_CTYPE":        text("ctype"),
		"/usr/lib/locale/C.utf8/LC_MESSAGES/SYS": text("messages"),
		"/etc/ssl/certs/ca-certificates.crt":     text("-----BEGIN CERTIFICATE-----\n"),
		"/usr/share/unrelated/big":               text("not needed"),
	}
}

// TestDataRules checks each data rule on a hand-made root, alone and
// switched off with WithoutData, and the variables that point a relocated
// program at the files.
func TestDataRules(t *testing.T) {
	base := []string{"/app/run"}
	tests := []struct {
		name    string
		env     []string
		without []string
		want    []string // data files (symlinks resolved) beyond the program
		env2    map[string]string
	}{
		{
			name: "all on, TZ and LANG unset",
			want: []string{"/etc/group", "/etc/nsswitch.conf", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/etc/timezone", "/usr/share/zoneinfo/Europe/Paris"},
			env2: map[string]string{"TZ": ":/etc/localtime", "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
		},
		{
			name: "TZ set brings the zoneinfo directory, LANG its locale",
			env:  []string{"TZ=Asia/Tokyo", "LANG=C.UTF-8"},
			want: []string{"/etc/group", "/etc/nsswitch.conf", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/etc/timezone",
				"/usr/lib/locale/C.utf8/LC_CTYPE", "/usr/lib/locale/C.utf8/LC_MESSAGES/SYS", "/usr/share/zoneinfo/Asia/Tokyo", "/usr/share/zoneinfo/Europe/Paris"},
			env2: map[string]string{"TZDIR": "/usr/share/zoneinfo", "LOCPATH": "/usr/lib/locale", "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
		},
		{
			name:    "tz and certs off",
			without: []string{"tz", "certs"},
			want:    []string{"/etc/group", "/etc/nsswitch.conf", "/etc/passwd"},
			env2:    map[string]string{},
		},
		{
			name:    "all off",
			env:     []string{"TZ=Asia/Tokyo", "LANG=C.UTF-8"},
			without: []string{"all"},
			want:    nil,
			env2:    map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := v1.Config{Entrypoint: base, Env: append([]string{"PATH=/usr/bin:/bin"}, tt.env...)}
			im, idx := treeImage(t, dataTree(), cfg, "linux/amd64")
			opts := []image.ClosureOption{image.WithImage(im)}
			if tt.without != nil {
				opts = append(opts, image.WithoutData(tt.without...))
			}
			res := mustClosure(t, im, idx, opts...)
			var got []string
			for _, f := range res.Files {
				if f.Path != "/app/run" && f.Kind == image.Regular {
					got = append(got, f.Path)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure data files (-want +got):\n%s", diff)
			}
			gotEnv := map[string]string{}
			for _, e := range res.Env {
				gotEnv[e.Name] = e.Prefix + strings.Join(e.Paths, ":")
			}
			if diff := cmp.Diff(tt.env2, gotEnv, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Closure Env (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := image.Closure(context.Background(), nil, nil, image.WithoutData("tzz")); err == nil || !strings.Contains(err.Error(), "tzz") {
		t.Errorf("WithoutData(\"tzz\") error = %v, want one naming it", err)
	}
}

// TestContentRulesSwitch: the same script closure with and without
// WithScan, and without the image (no body is read).
func TestContentRulesSwitch(t *testing.T) {
	tree := map[string]node{
		"/bin/sh":                 prog(elfSpec{exec: true}),
		"/usr/bin/sort":           prog(elfSpec{exec: true}),
		"/usr/bin/gawk":           prog(elfSpec{exec: true}),
		"/usr/bin/awk":            link("gawk"),
		"/usr/share/gawk/lib.awk": text("function f() {}"),
		"/app/run.sh":             script("#!/bin/sh\nsort | awk -f /app/prog.awk\n"),
		"/app/prog.awk":           script("#!/usr/bin/awk -f\n{ print }\n"),
		"/app/tool.rb":            script("#!/usr/bin/ruby\nputs 1\n"),
		"/usr/bin/ruby":           prog(elfSpec{exec: true}),
	}
	cfg := v1.Config{Entrypoint: []string{"/app/run.sh"}, Env: []string{"PATH=/usr/bin:/bin"}}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	paths := func(res *image.ClosureResult) []string {
		var out []string
		for _, f := range res.Files {
			out = append(out, f.Path)
		}
		return out
	}
	on := paths(mustClosure(t, im, idx, image.WithImage(im), image.WithoutData("all")))
	wantOn := []string{"/app/run.sh", "/bin/sh", "/usr/bin/awk", "/usr/bin/gawk", "/usr/bin/sort"}
	if diff := cmp.Diff(wantOn, on); diff != "" {
		t.Errorf("Closure with the content rules (-want +got):\n%s", diff)
	}
	off := paths(mustClosure(t, im, idx, image.WithImage(im), image.WithScan(false), image.WithoutData("all")))
	if diff := cmp.Diff([]string{"/app/run.sh", "/bin/sh"}, off); diff != "" {
		t.Errorf("Closure with WithScan(false) (-want +got):\n%s", diff)
	}
	noImage := paths(mustClosure(t, im, idx))
	if diff := cmp.Diff([]string{"/app/run.sh", "/bin/sh"}, noImage); diff != "" {
		t.Errorf("Closure without WithImage (-want +got):\n%s", diff)
	}

	// The generic rule: awk's library tree is found, ruby's is not.
	cmd, err := image.ResolveCommand(im, idx, image.Override{Entrypoint: []string{"/app/prog.awk"}, EntrypointSet: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := image.Closure(context.Background(), idx, cmd, image.WithImage(im), image.WithInclude("/app/tool.rb"))
	if err != nil {
		t.Fatal(err)
	}
	got := paths(res)
	if !contains(got, "/usr/share/gawk/lib.awk") {
		t.Errorf("Closure(prog.awk) = %v, want gawk's library tree /usr/share/gawk", got)
	}
	notes := strings.Join(res.Notes, "\n")
	if !strings.Contains(notes, "/usr/bin/ruby") || !strings.Contains(notes, "no library tree identified") {
		t.Errorf("Closure notes = %q, want one saying ruby's library tree was not identified", notes)
	}
}

// TestPythonSearchOrder: modules are looked up in Python's sys.path
// order: the script's directory first (a local json.py shadows the
// standard library's), then the standard library (bundled whole: csv is
// not looked up in the site directories), then site-packages and the
// directories of .pth files; -m and -c are read too.
func TestPythonSearchOrder(t *testing.T) {
	tree := map[string]node{
		"/usr/bin/python3.11":                  prog(elfSpec{exec: true}),
		"/usr/bin/python3":                     link("python3.11"),
		"/usr/lib/python3.11/os.py":            text("import abc\n"),
		"/usr/lib/python3.11/json/__init__.py": text(""),
		"/usr/lib/python3.11/csv.py":           text(""),
		"/usr/lib/python3.11/test/test_os.py":  text(""),
		"/usr/lib/python3.11/lib-dynload/_x.cpython-311-x86_64-linux-gnu.so": lib(elfSpec{}),
		"/usr/local/lib/python3.11/site-packages/csv.py":                     text("# shadowed by the standard library\n"),
		"/usr/local/lib/python3.11/site-packages/req/__init__.py":            text("from req import sub\nimport idna\n"),
		"/usr/local/lib/python3.11/site-packages/req/sub.py":                 text(""),
		"/usr/local/lib/python3.11/site-packages/idna.py":                    text(""),
		"/usr/local/lib/python3.11/site-packages/extra.pth":                  text("# comment\nimport os\nvendor\n"),
		"/usr/local/lib/python3.11/site-packages/vendor/six.py":              text(""),
		"/usr/local/lib/python3.11/site-packages/unused.py":                  text(""),
		"/app/main.py": script("#!/usr/bin/python3\nimport json, csv\nimport req\nfrom six import moves\n"),
		"/app/json.py": text(""),
	}
	tests := []struct {
		name       string
		entrypoint []string
		want       []string
	}{
		{"script", []string{"/app/main.py"}, []string{
			"/app/json.py", "/usr/local/lib/python3.11/site-packages/extra.pth",
			"/usr/local/lib/python3.11/site-packages/idna.py",
			"/usr/local/lib/python3.11/site-packages/req/__init__.py", "/usr/local/lib/python3.11/site-packages/req/sub.py",
			"/usr/local/lib/python3.11/site-packages/vendor/six.py",
		}},
		{"-m", []string{"python3", "-m", "req"}, []string{
			"/usr/local/lib/python3.11/site-packages/extra.pth",
			"/usr/local/lib/python3.11/site-packages/idna.py",
			"/usr/local/lib/python3.11/site-packages/req/__init__.py", "/usr/local/lib/python3.11/site-packages/req/sub.py",
		}},
		{"-c", []string{"python3", "-c", "import idna; print(1)"}, []string{
			"/usr/local/lib/python3.11/site-packages/extra.pth",
			"/usr/local/lib/python3.11/site-packages/idna.py",
		}},
	}
	cfg := v1.Config{Env: []string{"PATH=/usr/bin:/bin"}, WorkingDir: "/srv"}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := image.ResolveCommand(im, idx, image.Override{Entrypoint: tt.entrypoint, EntrypointSet: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := image.Closure(context.Background(), idx, cmd, image.WithImage(im), image.WithoutData("all"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Files {
				for _, r := range f.Why {
					if r.Kind == "module" {
						got = append(got, f.Path)
						break
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure(%q) modules (-want +got):\n%s", tt.entrypoint, diff)
			}
			paths := map[string]bool{}
			for _, f := range res.Files {
				paths[f.Path] = true
			}
			for p, want := range map[string]bool{
				"/usr/lib/python3.11/os.py": true, "/usr/lib/python3.11/json/__init__.py": true,
				"/usr/lib/python3.11/lib-dynload/_x.cpython-311-x86_64-linux-gnu.so": true,
				"/usr/lib/python3.11/test/test_os.py":                                false, "/usr/local/lib/python3.11/site-packages/unused.py": false,
				"/usr/local/lib/python3.11/site-packages/csv.py": false,
			} {
				if paths[p] != want {
					t.Errorf("Closure(%q) has %s: %v, want %v", tt.entrypoint, p, paths[p], want)
				}
			}
		})
	}
}

// TestPerlScript: a "#!/usr/bin/perl -w" script with "use lib", a parent
// class, an XS module and a module the image lacks.
func TestPerlScript(t *testing.T) {
	inc := "\x00/etc/perl\x00/usr/share/perl5\x00/usr/lib/x86_64-linux-gnu/perl-base\x00"
	tree := map[string]node{
		"/usr/bin/perl": {data: append(mkELF(elfSpec{exec: true}), inc...), mode: 0o755},
		"/usr/lib/x86_64-linux-gnu/perl-base/strict.pm":              text("package strict;\n1;\n"),
		"/usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm":           text("package List::Util;\nrequire Exporter;\nrequire XSLoader;\n"),
		"/usr/lib/x86_64-linux-gnu/perl-base/Exporter.pm":            text("package Exporter;\n"),
		"/usr/lib/x86_64-linux-gnu/perl-base/XSLoader.pm":            text("package XSLoader;\n"),
		"/usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/Util.so": lib(elfSpec{}),
		"/usr/share/perl5/Unused.pm":                                 text(""),
		"/opt/app/lib/My/Base.pm":                                    text("package My::Base;\nuse strict;\n"),
		"/opt/app/lib/My/Thing.pm":                                   text("package My::Thing;\nuse parent -norequire, 'Nothing';\nuse parent qw(My::Base);\n"),
		"/opt/app/run.pl":                                            script("#!/usr/bin/perl -w\nuse lib '/opt/app/lib';\nuse strict;\nuse List::Util qw(sum);\nuse My::Thing;\nuse Not::There;\n"),
	}
	cfg := v1.Config{Entrypoint: []string{"/opt/app/run.pl"}, Env: []string{"PATH=/usr/bin:/bin"}}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	res := mustClosure(t, im, idx, image.WithImage(im), image.WithoutData("all"))
	var got []string
	for _, f := range res.Files {
		got = append(got, f.Path)
	}
	want := []string{
		"/opt/app/lib/My/Base.pm", "/opt/app/lib/My/Thing.pm", "/opt/app/run.pl", "/usr/bin/perl",
		"/usr/lib/x86_64-linux-gnu/perl-base/Exporter.pm", "/usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm",
		"/usr/lib/x86_64-linux-gnu/perl-base/XSLoader.pm", "/usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/Util.so",
		"/usr/lib/x86_64-linux-gnu/perl-base/strict.pm",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Closure(run.pl) (-want +got):\n%s", diff)
	}
	wantEnv := []image.PathEnv{{Name: "PERL5LIB", Paths: []string{"/opt/app/lib", "/usr/lib/x86_64-linux-gnu/perl-base"}}}
	if diff := cmp.Diff(wantEnv, res.Env); diff != "" {
		t.Errorf("Closure(run.pl).Env (-want +got):\n%s", diff)
	}
}

// TestShellRunsInterpreters: an entrypoint shell script that starts
// python3 with a script brings the script and its imports, and the
// packager's RelocateShell points the script's path into the bundle.
func TestShellRunsInterpreters(t *testing.T) {
	tree := map[string]node{
		"/bin/sh":                   prog(elfSpec{exec: true}),
		"/usr/bin/python3.11":       prog(elfSpec{exec: true}),
		"/usr/bin/python3":          link("python3.11"),
		"/usr/lib/python3.11/os.py": text(""),
		"/app/entrypoint.sh":        script("#!/bin/sh\nset -e\nexec python3 -u /app/main.py \"$@\"\n"),
		"/app/main.py":              text("import helper\n"),
		"/app/helper.py":            text(""),
	}
	cfg := v1.Config{Entrypoint: []string{"/app/entrypoint.sh"}, Env: []string{"PATH=/usr/bin:/bin"}}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	res := mustClosure(t, im, idx, image.WithImage(im), image.WithoutData("all"))
	why := map[string]string{}
	for _, f := range res.Files {
		why[f.Path] = f.Why[0].Kind
	}
	want := map[string]string{
		"/app/entrypoint.sh": "entrypoint", "/bin/sh": "interpreter", "/usr/bin/python3": "symlink", "/usr/bin/python3.11": "command",
		"/app/main.py": "script", "/app/helper.py": "module", "/usr/lib/python3.11/os.py": "library",
	}
	if diff := cmp.Diff(want, why); diff != "" {
		t.Errorf("Closure(entrypoint.sh) first reasons (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/app/entrypoint.sh"}, res.ShellScripts); diff != "" {
		t.Errorf("ShellScripts (-want +got):\n%s", diff)
	}
	got := string(image.RelocateShell([]byte(tree["/app/entrypoint.sh"].data), "/tmp/x/rootfs", func(p string) bool { _, ok := why[p]; return ok }))
	if want := "#!/bin/sh\nset -e\nexec python3 -u /tmp/x/rootfs/app/main.py \"$@\"\n"; got != want {
		t.Errorf("RelocateShell = %q, want %q", got, want)
	}
}

// TestShellFormCommand: a shell-form CMD ("sh -c '. /env.sh && exec
// python3 /app/main.py'") brings the sourced file and the Python script
// with its imports.
func TestShellFormCommand(t *testing.T) {
	tree := map[string]node{
		"/bin/sh":                   prog(elfSpec{exec: true}),
		"/usr/bin/python3":          prog(elfSpec{exec: true}),
		"/usr/lib/python3.11/os.py": text(""),
		"/env.sh":                   text("export A=1\n"),
		"/app/main.py":              text("import helper\n"),
		"/app/helper.py":            text(""),
	}
	cfg := v1.Config{Cmd: []string{"/bin/sh", "-c", ". /env.sh && exec python3 /app/main.py"}, Env: []string{"PATH=/usr/bin:/bin"}}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	res := mustClosure(t, im, idx, image.WithImage(im), image.WithoutData("all"))
	var got []string
	for _, f := range res.Files {
		got = append(got, f.Path)
	}
	want := []string{"/app/helper.py", "/app/main.py", "/bin/sh", "/env.sh", "/usr/bin/python3", "/usr/lib/python3.11/os.py"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Closure(sh -c) (-want +got):\n%s", diff)
	}
}

// TestGenericInterpreterArgs: an interpreter without a rule of its own
// given a script file ("node /app/x.js") brings the script, and its
// library tree when one is found by name, else a note says so.
func TestGenericInterpreterArgs(t *testing.T) {
	tree := map[string]node{
		"/usr/bin/node":              prog(elfSpec{exec: true}),
		"/usr/share/nodejs/acorn.js": text(""),
		"/usr/bin/ruby3.1":           prog(elfSpec{exec: true}),
		"/app/x.js":                  text("console.log(1)\n"),
		"/app/app.rb":                text("puts 1\n"),
	}
	tests := []struct {
		entrypoint []string
		want       []string
		note       string
	}{
		{[]string{"node", "/app/x.js"}, []string{"/app/x.js", "/usr/bin/node"}, "no library tree identified"},
		{[]string{"ruby3.1", "-w", "app.rb"}, []string{"/app/app.rb", "/usr/bin/ruby3.1"}, "no library tree identified"},
	}
	cfg := v1.Config{Env: []string{"PATH=/usr/bin:/bin"}, WorkingDir: "/app"}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	for _, tt := range tests {
		cmd, err := image.ResolveCommand(im, idx, image.Override{Entrypoint: tt.entrypoint, EntrypointSet: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := image.Closure(context.Background(), idx, cmd, image.WithImage(im), image.WithoutData("all"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.Files {
			got = append(got, f.Path)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Closure(%q) (-want +got):\n%s", tt.entrypoint, diff)
		}
		if n := strings.Join(res.Notes, "\n"); !strings.Contains(n, tt.note) {
			t.Errorf("Closure(%q) notes %q, want %q", tt.entrypoint, n, tt.note)
		}
	}
}

// TestDataLocaleArchive: a locale only in the locale-archive is not
// bundled (glibc reads the archive at a fixed path), and a note says so.
func TestDataLocaleArchive(t *testing.T) {
	tree := map[string]node{
		"/app/run":                       prog(elfSpec{exec: true}),
		"/usr/lib/locale/locale-archive": text("archive"),
	}
	cfg := v1.Config{Entrypoint: []string{"/app/run"}, Env: []string{"LANG=en_US.UTF-8"}}
	im, idx := treeImage(t, tree, cfg, "linux/amd64")
	res := mustClosure(t, im, idx, image.WithImage(im))
	for _, f := range res.Files {
		if strings.HasPrefix(f.Path, "/usr/lib/locale") {
			t.Errorf("Closure has %s, want no locale file", f.Path)
		}
	}
	if n := strings.Join(res.Notes, "\n"); !strings.Contains(n, "locale-archive") || !strings.Contains(n, "en_US.UTF-8") {
		t.Errorf("Closure notes = %q, want one about en_US.UTF-8 in the locale-archive", n)
	}
	for _, e := range res.Env {
		if e.Name == "LOCPATH" {
			t.Errorf("Closure Env has LOCPATH %v, want none", e.Paths)
		}
	}
}
