package image_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/pkg/image"
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
