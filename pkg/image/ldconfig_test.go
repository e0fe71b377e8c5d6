package image_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/pkg/image"
)

const (
	ldPath  = "/lib64/ld-linux-x86-64.so.2"
	ldReal  = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	multi   = "/lib/x86_64-linux-gnu"
	usrMult = "/usr/lib/x86_64-linux-gnu"
)

// baseTree is a split-layout x86_64 glibc system made of synthetic ELF
// files: the loader (reached through the /lib64 symlink) and libc.
func baseTree() map[string]node {
	return map[string]node{
		ldPath:                 link(ldReal),
		ldReal:                 lib(elfSpec{soname: "ld-linux-x86-64.so.2"}),
		multi + "/libc.so.6":   lib(elfSpec{soname: "libc.so.6", needed: []string{"ld-linux-x86-64.so.2"}}),
		"/usr/share/doc/x.txt": text("not in any closure"),
	}
}

// withTree returns baseTree plus extra.
func withTree(extra map[string]node) map[string]node {
	t := baseTree()
	for k, v := range extra {
		t[k] = v
	}
	return t
}

// main returns a dynamic x86_64 program needing names (then libc).
func mainProg(s elfSpec) node {
	s.exec = true
	if s.interp == "" {
		s.interp = ldPath
	}
	s.needed = append(s.needed, "libc.so.6")
	return prog(s)
}

// x returns a library with the given soname and needs.
func x(soname string, needed ...string) node {
	return lib(elfSpec{soname: soname, needed: needed})
}

// neededPaths maps each DT_NEEDED name of the closure to the file it
// resolved to.
func neededPaths(res *image.ClosureResult) map[string]string {
	out := map[string]string{}
	for _, f := range res.Files {
		for _, r := range f.Why {
			if r.Kind == "needed" || r.Kind == "runtime" {
				out[r.Detail] = f.Path
			}
		}
	}
	return out
}

// TestClosureSearchRules checks each rule of ld.so's library search on
// hand-made images: every case puts the same soname in several places and
// expects the one glibc picks.
func TestClosureSearchRules(t *testing.T) {
	tests := []struct {
		name       string
		tree       map[string]node
		entrypoint string
		env        []string
		want       map[string]string // DT_NEEDED name -> file
		wantPath   []string          // LibraryPath, when set
	}{
		{
			name: "DT_RPATH before the defaults",
			tree: map[string]node{
				"/app/prog":              mainProg(elfSpec{rpath: "/opt/a", needed: []string{"libx.so.1"}}),
				"/opt/a/libx.so.1":       x("libx.so.1"),
				usrMult + "/libx.so.1":   x("libx.so.1"),
				"/usr/lib/libx.so.1":     x("libx.so.1"),
				"/opt/unused/libx.so.1":  x("libx.so.1"),
				"/opt/unused/libc.so.6":  x("libc.so.6"),
				"/opt/a/readme.txt":      text("data"),
				"/opt/a/sub/libx.so.1":   x("libx.so.1"),
				"/opt/other/libx.so.1":   x("libx.so.1"),
				"/opt/other/libxx.so.1":  x("libxx.so.1"),
				"/opt/other/lib/x.so.1":  x("x.so.1"),
				"/opt/other/lib/xy.so.1": x("xy.so.1"),
			},
			want:     map[string]string{"libx.so.1": "/opt/a/libx.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
			wantPath: []string{"/opt/a", multi},
		},
		{
			name: "DT_RUNPATH disables DT_RPATH",
			tree: map[string]node{
				"/app/prog":        mainProg(elfSpec{rpath: "/opt/a", runpath: "/opt/b", needed: []string{"libx.so.1"}}),
				"/opt/a/libx.so.1": x("libx.so.1"),
				"/opt/b/libx.so.1": x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": "/opt/b/libx.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "DT_RPATH of the loading chain applies to indirect needs",
			tree: map[string]node{
				"/app/prog":            mainProg(elfSpec{rpath: "/opt/a", needed: []string{"liby.so.1"}}),
				usrMult + "/liby.so.1": x("liby.so.1", "libz.so.1"),
				"/opt/a/libz.so.1":     x("libz.so.1"),
				usrMult + "/libz.so.1": x("libz.so.1"),
			},
			want: map[string]string{"liby.so.1": usrMult + "/liby.so.1", "libz.so.1": "/opt/a/libz.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "DT_RUNPATH applies to direct needs only",
			tree: map[string]node{
				"/app/prog":            mainProg(elfSpec{runpath: "/opt/b", needed: []string{"liby.so.1"}}),
				usrMult + "/liby.so.1": x("liby.so.1", "libz.so.1"),
				"/opt/b/libz.so.1":     x("libz.so.1"),
				multi + "/libz.so.1":   x("libz.so.1"),
			},
			want: map[string]string{"liby.so.1": usrMult + "/liby.so.1", "libz.so.1": multi + "/libz.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "LD_LIBRARY_PATH from ENV before DT_RUNPATH",
			env:  []string{"PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/env:/opt/env2"},
			tree: map[string]node{
				"/app/prog":           mainProg(elfSpec{runpath: "/opt/b", needed: []string{"libx.so.1", "liby.so.1"}}),
				"/opt/b/libx.so.1":    x("libx.so.1"),
				"/opt/env/libx.so.1":  x("libx.so.1"),
				"/opt/env2/liby.so.1": x("liby.so.1"),
				"/opt/b/liby.so.1":    x("liby.so.1"),
			},
			want:     map[string]string{"libx.so.1": "/opt/env/libx.so.1", "liby.so.1": "/opt/env2/liby.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
			wantPath: []string{"/opt/env", "/opt/env2", multi},
		},
		{
			name: "DT_RPATH before LD_LIBRARY_PATH",
			env:  []string{"LD_LIBRARY_PATH=/opt/env"},
			tree: map[string]node{
				"/app/prog":          mainProg(elfSpec{rpath: "/opt/a", needed: []string{"libx.so.1"}}),
				"/opt/a/libx.so.1":   x("libx.so.1"),
				"/opt/env/libx.so.1": x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": "/opt/a/libx.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name:       "$ORIGIN of the program is its real directory",
			entrypoint: "/usr/local/bin/prog",
			tree: map[string]node{
				"/usr/local/bin/prog":      link("/app/bin/prog"),
				"/app/bin/prog":            mainProg(elfSpec{runpath: "$ORIGIN/../lib:${ORIGIN}/../lib2", needed: []string{"libx.so.1", "liby.so.1"}}),
				"/app/lib/libx.so.1":       lib(elfSpec{soname: "libx.so.1", runpath: "$ORIGIN/sub", needed: []string{"libsub.so.1"}}),
				"/app/lib2/liby.so.1":      x("liby.so.1"),
				"/app/lib/sub/libsub.so.1": x("libsub.so.1"),
				"/usr/local/lib/libx.so.1": x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": "/app/lib/libx.so.1", "liby.so.1": "/app/lib2/liby.so.1", "libsub.so.1": "/app/lib/sub/libsub.so.1",
				"libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
			wantPath: []string{"/app/lib", "/app/lib2", "/app/lib/sub", multi},
		},
		{
			name: "$PLATFORM and $LIB (Debian: lib/TRIPLET)",
			tree: map[string]node{
				"/app/prog": mainProg(elfSpec{runpath: "/opt/$PLATFORM/$LIB", needed: []string{"libx.so.1"}}),
				"/opt/x86_64/lib/x86_64-linux-gnu/libx.so.1": x("libx.so.1"),
				"/opt/x86_64/lib64/libx.so.1":                x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": "/opt/x86_64/lib/x86_64-linux-gnu/libx.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "ld.so.conf with include, before the defaults",
			tree: map[string]node{
				"/app/prog":                   mainProg(elfSpec{needed: []string{"libx.so.1", "liby.so.1"}}),
				"/etc/ld.so.conf":             text("include /etc/ld.so.conf.d/*.conf\n/opt/first # trailing comment\n"),
				"/etc/ld.so.conf.d/a.conf":    text("# comment\n\n/opt/conf\n"),
				"/etc/ld.so.conf.d/b.txt":     text("/opt/not-included\n"),
				"/opt/conf/libx.so.1":         x("libx.so.1"),
				"/opt/first/liby.so.1":        x("liby.so.1"),
				usrMult + "/liby.so.1":        x("liby.so.1"),
				"/opt/not-included/libx.so.1": x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": "/opt/conf/libx.so.1", "liby.so.1": "/opt/first/liby.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "multiarch directories before /lib and /usr/lib",
			tree: map[string]node{
				"/app/prog":            mainProg(elfSpec{needed: []string{"libx.so.1", "liby.so.1"}}),
				"/usr/lib/libx.so.1":   x("libx.so.1"),
				usrMult + "/libx.so.1": x("libx.so.1"),
				"/usr/lib/liby.so.1":   x("liby.so.1"),
			},
			want: map[string]string{"libx.so.1": usrMult + "/libx.so.1", "liby.so.1": "/usr/lib/liby.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "wrong class, machine or format skipped",
			tree: map[string]node{
				"/app/prog":            mainProg(elfSpec{rpath: "/opt/arm:/opt/32:/opt/text", needed: []string{"libx.so.1"}}),
				"/opt/arm/libx.so.1":   lib(elfSpec{machine: emAArch64, soname: "libx.so.1"}),
				"/opt/32/libx.so.1":    lib(elfSpec{class: 32, machine: 3, soname: "libx.so.1"}),
				"/opt/text/libx.so.1":  text("INPUT(libx.so.2)\n"),
				usrMult + "/libx.so.1": x("libx.so.1"),
			},
			want: map[string]string{"libx.so.1": usrMult + "/libx.so.1", "libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
		{
			name: "NSS modules of nsswitch.conf, builtins skipped",
			tree: map[string]node{
				"/app/prog":                   mainProg(elfSpec{}),
				"/etc/nsswitch.conf":          text("passwd: files compat\nhosts: files [NOTFOUND=return] dns mymachines\n# group: ldap\n"),
				multi + "/libnss_compat.so.2": x("libnss_compat.so.2", "libc.so.6", "libnsl.so.2"),
				multi + "/libnsl.so.2":        x("libnsl.so.2"),
				multi + "/libnss_files.so.2":  x("libnss_files.so.2"),
				multi + "/libnss_dns.so.2":    x("libnss_dns.so.2"),
			},
			want: map[string]string{"nsswitch.conf service compat": multi + "/libnss_compat.so.2", "libnsl.so.2": multi + "/libnsl.so.2",
				"libc.so.6": multi + "/libc.so.6", "ld-linux-x86-64.so.2": ldReal},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := tt.entrypoint
			if entry == "" {
				entry = "/app/prog"
			}
			im, idx := treeImage(t, withTree(tt.tree), v1.Config{Entrypoint: []string{entry}, Env: tt.env}, "linux/amd64")
			res := mustClosure(t, im, idx)
			if diff := cmp.Diff(tt.want, neededPaths(res)); diff != "" {
				t.Errorf("Closure resolved (-want +got):\n%s", diff)
			}
			if tt.wantPath != nil {
				if diff := cmp.Diff(tt.wantPath, res.LibraryPath); diff != "" {
					t.Errorf("LibraryPath (-want +got):\n%s", diff)
				}
			}
			for _, f := range res.Files {
				if f.Path == "/usr/share/doc/x.txt" {
					t.Errorf("closure holds unrelated %s", f.Path)
				}
			}
		})
	}
}

// TestClosureStatic: a static program needs nothing else.
func TestClosureStatic(t *testing.T) {
	im, idx := treeImage(t, withTree(map[string]node{
		"/app/prog": prog(elfSpec{exec: true}),
	}), v1.Config{Entrypoint: []string{"/app/prog"}}, "linux/amd64")
	res := mustClosure(t, im, idx)
	var got []string
	for _, f := range res.Files {
		got = append(got, f.Path)
	}
	if diff := cmp.Diff([]string{"/app/prog"}, got); diff != "" {
		t.Errorf("Closure files (-want +got):\n%s", diff)
	}
	if len(res.Interpreters) != 0 || len(res.LibraryPath) != 0 || res.Arch != "x86_64" {
		t.Errorf("Closure = interpreters %q, library path %q, arch %q; want none, none, x86_64", res.Interpreters, res.LibraryPath, res.Arch)
	}
}

// TestClosureShebangEnv: "#!/usr/bin/env tool" brings env and tool (found
// through the image's PATH), each with its libraries.
func TestClosureShebangEnv(t *testing.T) {
	im, idx := treeImage(t, withTree(map[string]node{
		"/app/run":                script("#!/usr/bin/env -S tool -q\nbody\n"),
		"/usr/bin/env":            mainProg(elfSpec{}),
		"/usr/bin/tool":           script("#!/opt/bin/real\n"),
		"/opt/bin/real":           mainProg(elfSpec{needed: []string{"libtool.so.1"}}),
		"/opt/bin/tool":           script("#!/nonexistent\n"),
		usrMult + "/libtool.so.1": x("libtool.so.1"),
	}), v1.Config{Entrypoint: []string{"/app/run"}, Env: []string{"PATH=/usr/local/bin:/usr/bin:/opt/bin"}}, "linux/amd64")
	res := mustClosure(t, im, idx)
	got := map[string]string{}
	for _, f := range res.Files {
		got[f.Path] = f.Why[0].Kind + " " + f.Why[0].Detail
	}
	want := map[string]string{
		"/app/run":                "entrypoint /app/run",
		"/usr/bin/env":            "interpreter #!/usr/bin/env -S tool -q",
		"/usr/bin/tool":           "interpreter #!/usr/bin/env -S tool -q (through PATH)",
		"/opt/bin/real":           "interpreter #!/opt/bin/real",
		ldPath:                    "symlink " + ldPath,
		ldReal:                    "loader " + ldPath,
		multi + "/libc.so.6":      "needed libc.so.6",
		usrMult + "/libtool.so.1": "needed libtool.so.1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Closure (-want +got):\n%s", diff)
	}
}

// TestClosureIncludeExclude checks WithInclude and WithExclude.
func TestClosureIncludeExclude(t *testing.T) {
	tree := withTree(map[string]node{
		"/app/prog":                  mainProg(elfSpec{needed: []string{"libx.so.1"}}),
		usrMult + "/libx.so.1":       x("libx.so.1"),
		"/app/data/a.csv":            text("a"),
		"/app/data/deep/b.csv":       text("b"),
		"/app/data/deep/c.txt":       text("c"),
		"/opt/tool/bin/helper":       mainProg(elfSpec{needed: []string{"libhelp.so.1"}}),
		"/opt/tool/lib/libhelp.so.1": x("libhelp.so.1"),
	})
	tree["/opt/tool/bin/helper"] = mainProg(elfSpec{runpath: "$ORIGIN/../lib", needed: []string{"libhelp.so.1"}})
	tree["/opt/tool/bin/wrap"] = script("#!/opt/tool/bin/helper -x\n")
	im, idx := treeImage(t, tree, v1.Config{Entrypoint: []string{"/app/prog"}}, "linux/amd64")
	cmd, err := image.ResolveCommand(im, idx, image.Override{})
	if err != nil {
		t.Fatal(err)
	}
	paths := func(res *image.ClosureResult) []string {
		var out []string
		for _, f := range res.Files {
			out = append(out, f.Path)
		}
		return out
	}
	ctx := context.Background()

	tests := []struct {
		name    string
		opts    []image.ClosureOption
		want    []string
		wantErr string
	}{
		{
			name: "include ** and an ELF tool",
			opts: []image.ClosureOption{image.WithInclude("/app/data/**/*.csv", "/opt/tool/bin/helper")},
			want: []string{"/app/data/a.csv", "/app/data/deep/b.csv", "/app/prog", multi + "/ld-linux-x86-64.so.2", multi + "/libc.so.6",
				"/lib64/ld-linux-x86-64.so.2", "/opt/tool/bin/helper", "/opt/tool/lib/libhelp.so.1", usrMult + "/libx.so.1"},
		},
		{
			name: "include a script brings its interpreter",
			opts: []image.ClosureOption{image.WithInclude("/opt/tool/bin/wr?p")},
			want: []string{"/app/prog", multi + "/ld-linux-x86-64.so.2", multi + "/libc.so.6",
				"/lib64/ld-linux-x86-64.so.2", "/opt/tool/bin/helper", "/opt/tool/bin/wrap", "/opt/tool/lib/libhelp.so.1", usrMult + "/libx.so.1"},
		},
		{
			name: "include a directory",
			opts: []image.ClosureOption{image.WithInclude("/app/data")},
			want: []string{"/app/data/a.csv", "/app/data/deep/b.csv", "/app/data/deep/c.txt", "/app/prog", multi + "/ld-linux-x86-64.so.2", multi + "/libc.so.6",
				"/lib64/ld-linux-x86-64.so.2", usrMult + "/libx.so.1"},
		},
		{
			name: "exclude a library and a directory",
			opts: []image.ClosureOption{image.WithInclude("/app/data"), image.WithExclude(usrMult+"/libx.*", "/app/data/deep")},
			want: []string{"/app/data/a.csv", "/app/prog", multi + "/ld-linux-x86-64.so.2", multi + "/libc.so.6", "/lib64/ld-linux-x86-64.so.2"},
		},
		{name: "exclude the loader", opts: []image.ClosureOption{image.WithExclude("/lib/*/ld-linux*")}, wantErr: "the program's loader"},
		{name: "exclude the symlink to the loader", opts: []image.ClosureOption{image.WithExclude("/lib64/**")}, wantErr: "the program's loader"},
		{name: "exclude the entrypoint", opts: []image.ClosureOption{image.WithExclude("/app/*")}, wantErr: "the program's entrypoint"},
		{name: "include matching nothing", opts: []image.ClosureOption{image.WithInclude("/nope/*")}, wantErr: "matches no file"},
		{name: "relative include", opts: []image.ClosureOption{image.WithInclude("app/*")}, wantErr: "absolute"},
		{name: "bad pattern", opts: []image.ClosureOption{image.WithExclude("/app/[")}, wantErr: "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := image.Closure(ctx, idx, cmd, tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Closure = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Closure: %v", err)
			}
			got := paths(res)
			sort.Strings(tt.want)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure files (-want +got):\n%s", diff)
			}
			for _, d := range res.LibraryPath {
				if d == usrMult && !contains(got, usrMult+"/libx.so.1") {
					t.Errorf("LibraryPath %q keeps %s after its library was excluded", res.LibraryPath, usrMult)
				}
			}
		})
	}
	var ee *image.ExcludeError
	_, err = image.Closure(ctx, idx, cmd, image.WithExclude(ldReal))
	if !errors.As(err, &ee) || ee.Kind != "loader" || ee.Path != ldReal {
		t.Errorf("Closure(exclude loader) = %v, want *ExcludeError for the loader", err)
	}
}
