package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScanShell(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		cmds, srcs []string
	}{
		{"pipeline over lines", "#!/bin/sh\n# sort the rows (by name); then count\ntail -n +2 | cut -d, -f1 |\n\tsort | uniq -c\n", []string{"tail", "cut", "sort", "uniq"}, nil},
		{"comment words are not commands", "# wc is not run\necho x # nor is head\n", nil, nil},
		{"keywords and substitutions", "if grep -q a f; then x=$(date +%s); fi\nfor f in *; do gzip \"$f\"; done\n", []string{"grep", "date", "gzip"}, nil},
		{"sourced files", ". /usr/lib/app/common.sh\nsource ./env.sh\n. \"$HOME/x\"\n", nil, []string{"/usr/lib/app/common.sh", "./env.sh"}},
		{"exec, env and runners", "exec /usr/local/bin/app --fast\nenv -i A=1 python3 x.py\nfind . | xargs -0 rm -f\nnohup nice -n 5 sleep 1\n", []string{"/usr/local/bin/app", "env", "python3", "find", "xargs", "rm", "nohup", "nice"}, nil},
		{"quoted operators stay in their command", "awk '{ printf \"%s|%d\\n\", $1, $2 }' f; grep 'a;b' g", []string{"awk", "grep"}, nil},
		{"function names are candidates (not found in PATH later)", "lower() {\n\ttr A-Z a-z\n}\nlower", []string{"lower", "tr"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, srcs := scanShell(tt.script)
			if diff := cmp.Diff(tt.cmds, cmds); diff != "" {
				t.Errorf("scanShell(%q) commands (-want +got):\n%s", tt.script, diff)
			}
			if diff := cmp.Diff(tt.srcs, srcs); diff != "" {
				t.Errorf("scanShell(%q) sources (-want +got):\n%s", tt.script, diff)
			}
		})
	}
}

func TestRelocateShell(t *testing.T) {
	bundled := func(p string) bool {
		return p == "/usr/lib/app/common.sh" || p == "/usr/local/bin/app" || p == "/bin/sh"
	}
	in := "#!/bin/sh\n. /usr/lib/app/common.sh\nexec /usr/local/bin/app --x /usr/local/bin/app.conf\n/usr/bin/missing\necho /usr/lib/app/common.sh\n"
	want := "#!/bin/sh\n. /tmp/x1/rootfs/usr/lib/app/common.sh\nexec /tmp/x1/rootfs/usr/local/bin/app --x /usr/local/bin/app.conf\n/usr/bin/missing\necho /tmp/x1/rootfs/usr/lib/app/common.sh\n"
	got := string(RelocateShell([]byte(in), "/tmp/x1/rootfs/", bundled))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RelocateShell (-want +got):\n%s", diff)
	}
	if got := string(RelocateShell([]byte("sort -u\n"), "/r", bundled)); got != "sort -u\n" {
		t.Errorf("RelocateShell of a script without absolute paths = %q, want it unchanged", got)
	}
}

func TestPythonImports(t *testing.T) {
	src := `"""doc"""
import csv
import os.path, json as j
from statistics import mean
from . import sibling
from .pkg import x
try:
    import numpy as np
except ImportError:
    pass
def f():
    from collections.abc import Mapping
x = "import notamodule"
`
	want := []string{"csv", "os", "json", "numpy", "statistics", "collections"}
	if diff := cmp.Diff(want, pythonImports(src)); diff != "" {
		t.Errorf("pythonImports (-want +got):\n%s", diff)
	}
}

func TestPerlModules(t *testing.T) {
	src := `#!/usr/bin/perl
use strict;
use warnings;
use 5.010;
use v5.36;
use List::Util qw(sum max);
no autovivification;
require Carp;
require "file.pl";
use parent -norequire, 'Base::Local';
use base qw(Foo::Bar Baz);
my $x = 1; use POSIX ();
`
	want := []string{"strict", "warnings", "List::Util", "autovivification", "Carp", "POSIX", "Base::Local", "Foo::Bar", "Baz"}
	got := perlModules(src)
	for _, w := range want {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
			t.Errorf("perlModules lacks %q: %v", w, got)
		}
	}
	for _, bad := range []string{"5.010", "v5.36", "file"} {
		for _, g := range got {
			if g == bad {
				t.Errorf("perlModules has %q: %v", bad, got)
			}
		}
	}
}

func TestPerlIncStrings(t *testing.T) {
	bin := []byte("\x7fELF\x00/etc/perl\x00junk\x00/usr/share/perl5\x00/usr/lib/debug/.dwz/perl.debug\x00/usr/lib/x86_64-linux-gnu/perl-base\x00/usr/bin/env\x00perl is nice\x00/x/../perl\x00")
	want := []string{"/etc/perl", "/usr/share/perl5", "/usr/lib/x86_64-linux-gnu/perl-base"}
	if diff := cmp.Diff(want, perlIncStrings(bin)); diff != "" {
		t.Errorf("perlIncStrings (-want +got):\n%s", diff)
	}
}

func TestNormalizeLocale(t *testing.T) {
	for in, want := range map[string]string{
		"C.UTF-8":               "C.utf8",
		"en_US.UTF-8":           "en_US.utf8",
		"de_DE.ISO-8859-1@euro": "de_DE.iso88591@euro",
		"fr_FR":                 "fr_FR",
	} {
		if got := normalizeLocale(in); got != want {
			t.Errorf("normalizeLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRuleSizesAndBudget(t *testing.T) {
	mk := func(p string, size int64, r Reason) File {
		return File{Entry: Entry{Path: p, Kind: Regular, Size: size}, Why: []Reason{r}}
	}
	files := []File{
		mk("/usr/bin/python3.11", 6<<20, Reason{Kind: "entrypoint"}),
		mk("/usr/lib/python3.11/a/b/c.py", 200<<20, Reason{Kind: "library", Detail: "python3.11 standard library"}),
		mk("/usr/lib/python3.11/a/b/d.py", 10<<20, Reason{Kind: "library", Detail: "python3.11 standard library"}),
		mk("/app/helper.py", 1<<10, Reason{Kind: "module", Detail: "import helper"}),
		mk("/usr/share/zoneinfo/UTC", 60<<20, Reason{Kind: "data", Detail: "tz: zoneinfo"}),
		mk("/usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm", 1<<10, Reason{Kind: "module", Detail: "use List::Util"}),
	}
	rules := ruleSizes(files)
	got := map[string]int64{}
	for _, r := range rules {
		got[r.Rule] = r.Size
	}
	want := map[string]int64{"python": 210<<20 + 1<<10, "data:tz": 60 << 20, "elf": 6 << 20, "perl": 1 << 10}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ruleSizes (-want +got):\n%s", diff)
	}
	if rules[0].Rule != "python" || rules[0].Largest != "/usr/lib/python3.11" {
		t.Errorf("largest rule = %+v, want python mostly in /usr/lib/python3.11", rules[0])
	}
	note := budgetNote(rules)
	for _, s := range []string{"over Lambda's 250 MB", "rule python", "turn off the content rules, or exclude '/usr/lib/python3.11/**'"} {
		if !strings.Contains(note, s) {
			t.Errorf("budgetNote = %q, want it to contain %q", note, s)
		}
	}
	if n := budgetNote(rules[1:]); n != "" {
		t.Errorf("budgetNote under the limit = %q, want none", n)
	}
}

func TestScanShellRuns(t *testing.T) {
	script := `#!/bin/sh
set -e
sh ./setup.sh --quick
exec python3 -u /app/main.py "$@"
python3 -m tools.report > out
perl -ne 'print' file
perl /opt/x.pl
python3 -c 'import os'
bash "$SCRIPT"
`
	_, _, runs := scanShellRuns(script)
	want := []shellRun{
		{Prog: "sh", Arg: "./setup.sh"},
		{Prog: "python3", Arg: "/app/main.py"},
		{Prog: "python3", Arg: "tools.report", Module: true},
		{Prog: "perl", Arg: "/opt/x.pl"},
	}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("scanShellRuns runs (-want +got):\n%s", diff)
	}
}

// FuzzScanShell: the shell scan never panics and only returns words
// without expansions; RelocateShell only inserts the root before words.
func FuzzScanShell(f *testing.F) {
	f.Add("#!/bin/sh\n. /a/b\nexec /usr/bin/x | sort\n")
	f.Add("a=$(b `c` 'd|e') && f || g; h(){ i; }\n")
	f.Add("python3 -m x; perl -e 'y'; sh ./z\n# c\n\"")
	f.Fuzz(func(t *testing.T, s string) {
		cmds, srcs, runs := scanShellRuns(s)
		for _, c := range cmds {
			if c == "" || strings.ContainsAny(c, "$`") {
				t.Errorf("scanShell(%q) returned command %q", s, c)
			}
		}
		_ = srcs
		_ = runs
		out := string(RelocateShell([]byte(s), "/R", func(string) bool { return true }))
		if strings.ReplaceAll(out, "/R/", "/") != strings.ReplaceAll(s, "/R/", "/") {
			t.Errorf("RelocateShell(%q) = %q: changed more than the root prefix", s, out)
		}
	})
}

// FuzzModuleScans: the Python and Perl scans never panic and return
// identifiers only.
func FuzzModuleScans(f *testing.F) {
	f.Add("import a.b as c, d\nfrom e import f\n")
	f.Add("use strict; use parent qw(A B); require C::D; use lib '/x';\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range pythonImports(s) {
			if m == "" || strings.ContainsAny(m, ". \t\n") {
				t.Errorf("pythonImports(%q) returned %q", s, m)
			}
		}
		for _, m := range perlModules(s) {
			if m == "" || strings.ContainsAny(m, " \t\n'\"") {
				t.Errorf("perlModules(%q) returned %q", s, m)
			}
		}
		_ = perlLibDirs(s)
		_ = perlIncStrings([]byte(s))
	})
}

func TestRelocateShellArgs(t *testing.T) {
	bundled := func(p string) bool { return p == "/app/main.py" || p == "/env.sh" }
	tests := []struct {
		args, want []string
	}{
		{[]string{"/bin/sh", "-c", ". /env.sh && exec python3 /app/main.py"}, []string{"/bin/sh", "-c", ". /R/env.sh && exec python3 /R/app/main.py"}},
		{[]string{"bash", "-ec", "python3 /app/main.py", "arg0"}, []string{"bash", "-ec", "python3 /R/app/main.py", "arg0"}},
		{[]string{"/usr/bin/python3", "/app/main.py"}, []string{"/usr/bin/python3", "/app/main.py"}},
		{[]string{"/bin/sh", "/app/run.sh"}, []string{"/bin/sh", "/app/run.sh"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, RelocateShellArgs(tt.args, "/R", bundled)); diff != "" {
			t.Errorf("RelocateShellArgs(%q) (-want +got):\n%s", tt.args, diff)
		}
	}
}
