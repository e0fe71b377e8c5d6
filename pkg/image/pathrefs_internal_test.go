package image

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPathStrings(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"\x00/usr/share/app\x00", []string{"/usr/share/app"}},
		{"/etc/app.conf", []string{"/etc/app.conf"}},
		{"db=/var/lib/app/db,x", []string{"/var/lib/app/db"}},
		{"rel/usr/share x/../y ./a/b", nil},
		{"see /usr/lib/git-core.", []string{"/usr/lib/git-core."}},
		{"http://example.com/a/b", []string{"//example.com/a/b"}},
		{"'/a b/c'", []string{"/a"}},
		{"/" + strings.Repeat("a", maxPath) + " /ok/x", []string{"/ok/x"}},
		{"/" + strings.Repeat("a", maxPath-1), []string{"/" + strings.Repeat("a", maxPath-1)}},
	}
	for _, tt := range tests {
		_, got := pathStrings([]byte(tt.in))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("pathStrings(%.40q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestPathStringsChunks feeds the same bytes split at every position and
// finds the same paths at the same offsets.
func TestPathStringsChunks(t *testing.T) {
	in := []byte("\x00/usr/share/app\x00x/rel/a \x7fELF/etc/fonts/fonts.conf\n/opt/x/" + strings.Repeat("y", 300) + "\x00/e")
	wantOffs, wantRuns := pathStrings(in)
	for i := 0; i <= len(in); i++ {
		for _, j := range []int{i, (i + len(in)) / 2, len(in)} {
			offs, runs := pathStrings(in[:i], in[i:j], in[j:])
			if !cmp.Equal(wantOffs, offs) || !cmp.Equal(wantRuns, runs) {
				t.Fatalf("split at %d and %d: got %v %v, want %v %v", i, j, offs, runs, wantOffs, wantRuns)
			}
		}
	}
}

func TestRefPath(t *testing.T) {
	tests := []struct {
		run  string
		want string // "" for no path
	}{
		{"/usr/share/app", "/usr/share/app"},
		{"/usr/share/app/.", "/usr/share/app"},
		{"/usr/lib/../lib", "/usr/lib"},
		{"/usr//lib/", "/usr/lib"},
		{"/app", "/app"},
		{"/ab", ""},
		{"/", ""},
		{"//host/share", ""},
		{"/../../src/x.c", ""},
		{"/./x/y", ""},
	}
	for _, tt := range tests {
		got, ok := refPath(tt.run)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("refPath(%q) = %q, %v; want %q", tt.run, got, ok, tt.want)
		}
	}
}

func TestLibcFile(t *testing.T) {
	for p, want := range map[string]bool{
		"/usr/lib/x86_64-linux-gnu/libc.so.6":              true,
		"/lib/x86_64-linux-gnu/libm-2.31.so":               true,
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2":   true,
		"/usr/lib/x86_64-linux-gnu/libnss_files.so.2":      true,
		"/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0": true,
		"/usr/lib/x86_64-linux-gnu/libgfortran.so.5.0.0":   false,
		"/usr/lib/x86_64-linux-gnu/libcrypto.so.3":         false,
		"/usr/lib/x86_64-linux-gnu/libcap.so.2":            false,
		"/usr/bin/ld":                                      false,
	} {
		if got := libcFile(&Entry{Path: p, Kind: Regular}); got != want {
			t.Errorf("libcFile(%q) = %v, want %v", p, got, want)
		}
	}
	gconv := &Entry{Path: "/usr/lib/x86_64-linux-gnu/gconv/IBM880.so", Kind: Regular, ELF: &ELFInfo{}}
	if !libcFile(gconv) {
		t.Errorf("libcFile(%q) = false, want true", gconv.Path)
	}
}

func TestHierarchyAndSystemPaths(t *testing.T) {
	for p, want := range map[string]bool{
		"/usr/lib": true, "/usr/lib/x86_64-linux-gnu": true, "/lib/aarch64-linux-gnu": true, "/etc": true,
		"/usr/local/share": true, "/usr/lib/git-core": false, "/etc/fonts": false, "/usr/share/tcltk/tcl8.6": false,
		"/usr/lib/x86_64-linux-gnu/ossl-modules": false, "/usr/share/man": true, "/usr/share/man/man1": false,
	} {
		if got := hierarchyDir(p); got != want {
			t.Errorf("hierarchyDir(%q) = %v, want %v", p, got, want)
		}
	}
	for p, want := range map[string]bool{
		"/etc/ld.so.conf.d/x.conf": true, "/usr/lib/locale/C.utf8": true, "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules": true,
		"/usr/share/zoneinfo/Europe/Paris": true, "/proc/self/exe": true, "/bin/sh": true, "/etc/passwd": true,
		"/usr/lib/debug/.build-id/ab/cdef.debug": true,
		"/etc/passwords":                         false, "/bin/shell": false, "/etc/app/app.conf": false, "/usr/lib/x86_64-linux-gnu/libc.so.6": false,
	} {
		if got := systemPath(p); got != want {
			t.Errorf("systemPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// checkRelocation checks that the scanner's idea of what RelocateShell
// rewrites in body is what it rewrites: for each absolute path run of the
// body, the scanner deems it relocated exactly when RelocateShell inserts
// its root there. It returns how many runs are relocated.
func checkRelocation(t *testing.T, body []byte) int {
	t.Helper()
	if bytes.IndexByte(body, 1) >= 0 {
		return 0 // the marker below must not be in the body
	}
	// A root of one marker byte shows where RelocateShell inserts it.
	out := RelocateShell(body, "\x01", func(string) bool { return true })
	inserted := map[int64]bool{}
	n := 0
	for _, c := range out {
		if c == 1 {
			inserted[int64(n)] = true
			continue
		}
		n++
	}
	rel := relocatedShellPaths(body, func(string) bool { return true })
	count := 0
	check := func(off int64, run []byte, prev, next int) {
		scan := relocatedAt(body, off, string(run), prev, rel)
		if scan != inserted[off] {
			t.Fatalf("in %q, the path %q at %d: scanner says relocated %v, RelocateShell %v", body, run, off, scan, inserted[off])
		}
		if scan {
			count++
		}
	}
	var f pathFinder
	f.write(body, check)
	f.close(check)
	return count
}

// TestRelocatedShellPaths checks the scanner's idea of what RelocateShell
// rewrites on bodies with runs it rewrites and runs it keeps.
func TestRelocatedShellPaths(t *testing.T) {
	for body, want := range map[string]int{
		"#!/bin/sh\n. /etc/app.conf\nexec /usr/bin/app --config=/etc/app.conf \"/usr/bin/app\"\n": 3,
		"/usr/bin/a;/usr/bin/a.sh /usr/bin/a\n(/usr/bin/a)|/usr/bin/a&&x=/usr/bin/a\n":            5,
		"python3 /app/main.py /app/main.pyc\ncat /etc/x\n":                                        1,
		"`/bin/x`$(/bin/y) >/bin/x\n":                                                             2,
	} {
		if got := checkRelocation(t, []byte(body)); got != want {
			t.Errorf("%q: %d paths relocated, want %d", body, got, want)
		}
	}
}

// FuzzPathStrings checks the path finder on any bytes: the runs found are
// absolute path runs at their offsets, the same whatever the chunking,
// and in a shell body the runs the scanner deems relocated are exactly
// those RelocateShell rewrites.
func FuzzPathStrings(f *testing.F) {
	f.Add([]byte("\x00/usr/share/app\x00/etc/x.conf"), 3)
	f.Add([]byte("#!/bin/sh\n. /etc/app.conf\nexec /usr/bin/app \"$@\"\n"), 20)
	f.Add([]byte("http://h/a/b ~/x ${p}/y /a/./b/../c."), 7)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if len(data) > 1<<16 {
			return
		}
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		offs, runs := pathStrings(data)
		offs2, runs2 := pathStrings(data[:split], data[split:])
		if !cmp.Equal(offs, offs2) || !cmp.Equal(runs, runs2) {
			t.Fatalf("split at %d: %v %q, whole: %v %q", split, offs2, runs2, offs, runs)
		}
		for i, r := range runs {
			o := int(offs[i])
			if r == "" || r[0] != '/' || len(r) > maxPath || string(data[o:o+len(r)]) != r {
				t.Fatalf("run %q at %d is not an absolute path run of the input", r, o)
			}
			if o > 0 && pathByte[data[o-1]] || o+len(r) < len(data) && pathByte[data[o+len(r)]] {
				t.Fatalf("run %q at %d is not maximal", r, o)
			}
			for j := 0; j < len(r); j++ {
				if !pathByte[r[j]] {
					t.Fatalf("run %q has a non-path byte", r)
				}
			}
			if p, ok := refPath(r); ok && (p != path.Clean(p) || !path.IsAbs(p)) {
				t.Fatalf("refPath(%q) = %q, not clean and absolute", r, p)
			}
		}
		checkRelocation(t, data)
	})
}

// FuzzELFLoads checks that reading an ELF file's PT_LOAD ranges from its
// first bytes never reads out of bounds, whatever the headers say.
func FuzzELFLoads(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 57)))
	f.Add([]byte("\x7fELF\x01\x02\x01" + strings.Repeat("\x01", 120)))
	f.Fuzz(func(t *testing.T, data []byte) {
		need, ok := elfHeadSize(data)
		if !ok || len(data) < need || len(data) < elfHeader64 {
			return
		}
		loads, _ := elfLoads(data[:need])
		for _, r := range loads {
			if r[0] < 0 || r[1] < r[0] {
				t.Fatalf("range %v", r)
			}
		}
	})
}
