package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/testkit"
)

// want computes the expected ELFInfo of a real file with debug/elf (which
// reads section headers, a different path than ParseELF takes).
func wantELF(t *testing.T, path string) *ELFInfo {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer f.Close()
	w := &ELFInfo{Class: 64, Type: "dyn"}
	if f.Class == elf.ELFCLASS32 {
		w.Class = 32
	}
	if f.Type == elf.ET_EXEC {
		w.Type = "exec"
	}
	switch f.Machine {
	case elf.EM_X86_64:
		w.Machine = "x86_64"
	case elf.EM_AARCH64:
		w.Machine = "aarch64"
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			w.Interp = strings.TrimRight(string(b), "\x00")
			w.InterpOffset, w.InterpSize = int64(p.Off), int64(p.Filesz)
		}
	}
	w.Needed, _ = f.ImportedLibraries()
	split := func(ss []string) []string {
		var out []string
		for _, s := range ss {
			out = append(out, splitPath(s)...)
		}
		return out
	}
	rp, _ := f.DynString(elf.DT_RPATH)
	w.RPath = split(rp)
	rn, _ := f.DynString(elf.DT_RUNPATH)
	w.RunPath = split(rn)
	if so, _ := f.DynString(elf.DT_SONAME); len(so) > 0 {
		w.SOName = so[0]
	}
	return w
}

func parseFile(t *testing.T, path string) (*ELFInfo, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return ParseELF(f, st.Size())
}

func TestParseELFSystemFiles(t *testing.T) {
	paths := []string{"/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	// More real files: every ELF in /usr/bin and some libraries.
	for _, glob := range []string{"/usr/bin/*", "/usr/lib/x86_64-linux-gnu/*.so*"} {
		m, _ := filepath.Glob(glob)
		paths = append(paths, m...)
	}
	checked := 0
	for _, p := range paths {
		if checked >= 400 {
			break
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if head, err := readHead(p); err != nil || !bytes.HasPrefix(head, []byte("\x7fELF")) {
			continue
		}
		got, err := parseFile(t, p)
		if err != nil {
			t.Errorf("ParseELF(%s): %v", p, err)
			continue
		}
		if diff := cmp.Diff(wantELF(t, p), got); diff != "" {
			t.Errorf("ParseELF(%s) (-debug/elf +got):\n%s", p, diff)
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d ELF files checked", checked)
	}
	t.Logf("%d ELF files agree with debug/elf", checked)
	libc, err := parseFile(t, "/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Fatal(err)
	}
	if libc.SOName != "libc.so.6" || libc.Type != "dyn" || libc.Machine != "x86_64" {
		t.Errorf("libc.so.6 = %+v", libc)
	}
	ls, _ := parseFile(t, "/bin/ls")
	if ls.Interp != "/lib64/ld-linux-x86-64.so.2" || ls.InterpSize != 28 {
		t.Errorf("/bin/ls interp = %q (%d bytes), want /lib64/ld-linux-x86-64.so.2 (28)", ls.Interp, ls.InterpSize)
	}
}

func readHead(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 4)
	_, err = f.Read(b)
	return b, err
}

func TestParseELFStaticGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go binary")
	}
	bin := testkit.GoProgram(t, "package main\n\nfunc main() { println(\"hi\") }\n", "amd64")
	got, err := parseFile(t, bin)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantELF(t, bin), got); diff != "" {
		t.Errorf("ParseELF(static) (-debug/elf +got):\n%s", diff)
	}
	if !got.Static() || got.Type != "exec" {
		t.Errorf("static Go binary: Static() = %v, Type = %q; want true, exec", got.Static(), got.Type)
	}
}

// synthELF builds a minimal ELF file without section headers: header,
// program headers (PT_LOAD covering the file, PT_INTERP, PT_DYNAMIC), the
// interpreter string, the string table and the dynamic segment. The string
// table is mapped at vaddr 0x10000+offset, so a parser must translate it.
type synthELF struct {
	class   int
	bo      binary.ByteOrder
	machine uint16
	typ     uint16
	interp  string
	needed  []string
	rpath   string
	runpath string
	soname  string
}

func (s synthELF) build() []byte {
	is64 := s.class == 64
	ehsize, phsize := 52, 32
	if is64 {
		ehsize, phsize = 64, 56
	}
	const base = 0x10000
	nph := 3
	phoff := ehsize
	interpOff := phoff + nph*phsize
	strOff := interpOff + len(s.interp) + 1
	var strtab bytes.Buffer
	strtab.WriteByte(0)
	add := func(v string) uint64 {
		o := uint64(strtab.Len())
		strtab.WriteString(v)
		strtab.WriteByte(0)
		return o
	}
	type dyn struct{ tag, val uint64 }
	var dyns []dyn
	for _, n := range s.needed {
		dyns = append(dyns, dyn{dtNeeded, add(n)})
	}
	if s.rpath != "" {
		dyns = append(dyns, dyn{dtRpath, add(s.rpath)})
	}
	if s.runpath != "" {
		dyns = append(dyns, dyn{dtRunpath, add(s.runpath)})
	}
	if s.soname != "" {
		dyns = append(dyns, dyn{dtSoname, add(s.soname)})
	}
	dyns = append(dyns, dyn{dtStrtab, uint64(base + strOff)}, dyn{dtStrsz, uint64(strtab.Len())}, dyn{dtNull, 0})
	dynOff := strOff + strtab.Len()
	entsz := 8
	if is64 {
		entsz = 16
	}
	total := dynOff + len(dyns)*entsz
	b := make([]byte, total)
	copy(b, "\x7fELF")
	b[4] = 1
	if is64 {
		b[4] = 2
	}
	b[5] = 1
	if s.bo == binary.BigEndian {
		b[5] = 2
	}
	b[6] = 1
	bo := s.bo
	bo.PutUint16(b[16:], s.typ)
	bo.PutUint16(b[18:], s.machine)
	if is64 {
		bo.PutUint64(b[32:], uint64(phoff))
		bo.PutUint16(b[54:], uint16(phsize))
		bo.PutUint16(b[56:], uint16(nph))
	} else {
		bo.PutUint32(b[28:], uint32(phoff))
		bo.PutUint16(b[42:], uint16(phsize))
		bo.PutUint16(b[44:], uint16(nph))
	}
	ph := func(i int, typ uint32, off, vaddr, size uint64) {
		p := b[phoff+i*phsize:]
		if is64 {
			bo.PutUint32(p[0:], typ)
			bo.PutUint64(p[8:], off)
			bo.PutUint64(p[16:], vaddr)
			bo.PutUint64(p[32:], size)
			bo.PutUint64(p[40:], size)
		} else {
			bo.PutUint32(p[0:], typ)
			bo.PutUint32(p[4:], uint32(off))
			bo.PutUint32(p[8:], uint32(vaddr))
			bo.PutUint32(p[16:], uint32(size))
			bo.PutUint32(p[20:], uint32(size))
		}
	}
	ph(0, ptLoad, 0, base, uint64(total))
	interpType := uint32(ptInterp)
	if s.interp == "" {
		interpType = 0 // PT_NULL: ignored
	}
	ph(1, interpType, uint64(interpOff), base+uint64(interpOff), uint64(len(s.interp)+1))
	ph(2, ptDynamic, uint64(dynOff), base+uint64(dynOff), uint64(len(dyns)*entsz))
	copy(b[interpOff:], s.interp)
	copy(b[strOff:], strtab.Bytes())
	for i, d := range dyns {
		p := b[dynOff+i*entsz:]
		if is64 {
			bo.PutUint64(p, d.tag)
			bo.PutUint64(p[8:], d.val)
		} else {
			bo.PutUint32(p, uint32(d.tag))
			bo.PutUint32(p[4:], uint32(d.val))
		}
	}
	return b
}

func TestParseELFSynthetic(t *testing.T) {
	tests := []struct {
		name string
		in   synthELF
		want *ELFInfo
	}{{
		name: "32-bit big-endian ARM exec",
		in: synthELF{class: 32, bo: binary.BigEndian, machine: emARM, typ: etExec,
			interp: "/lib/ld-linux.so.3", needed: []string{"libm.so.6", "libc.so.6"}, rpath: "$ORIGIN/../lib::/opt/lib"},
		want: &ELFInfo{Class: 32, Machine: "arm", Type: "exec", Interp: "/lib/ld-linux.so.3",
			Needed: []string{"libm.so.6", "libc.so.6"}, RPath: []string{"$ORIGIN/../lib", "/opt/lib"}},
	}, {
		name: "64-bit big-endian s390x library",
		in: synthELF{class: 64, bo: binary.BigEndian, machine: 22, typ: etDyn,
			needed: []string{"libc.so.6"}, runpath: "/usr/local/lib", soname: "libfoo.so.1"},
		want: &ELFInfo{Class: 64, Machine: "em-22", Type: "dyn", Needed: []string{"libc.so.6"},
			RunPath: []string{"/usr/local/lib"}, SOName: "libfoo.so.1"},
	}, {
		name: "32-bit little-endian i386",
		in: synthELF{class: 32, bo: binary.LittleEndian, machine: emI386, typ: etDyn,
			interp: "/lib/ld-linux.so.2", needed: []string{"libc.so.6"}},
		want: &ELFInfo{Class: 32, Machine: "i386", Type: "dyn", Interp: "/lib/ld-linux.so.2", Needed: []string{"libc.so.6"}},
	}, {
		name: "64-bit little-endian aarch64",
		in: synthELF{class: 64, bo: binary.LittleEndian, machine: emAArch64, typ: etDyn,
			interp: "/lib/ld-linux-aarch64.so.1", needed: []string{"libgfortran.so.5", "libc.so.6"}},
		want: &ELFInfo{Class: 64, Machine: "aarch64", Type: "dyn", Interp: "/lib/ld-linux-aarch64.so.1",
			Needed: []string{"libgfortran.so.5", "libc.so.6"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.in.build()
			got, err := ParseELF(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("ParseELF: %v", err)
			}
			if tt.want.Interp != "" {
				tt.want.InterpSize = int64(len(tt.want.Interp) + 1)
				tt.want.InterpOffset = got.InterpOffset
				if string(b[got.InterpOffset:got.InterpOffset+got.InterpSize-1]) != tt.want.Interp {
					t.Errorf("InterpOffset %d does not point at the interpreter", got.InterpOffset)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseELF (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseELFErrors(t *testing.T) {
	good := synthELF{class: 64, bo: binary.LittleEndian, machine: emX86_64, typ: etDyn,
		interp: "/lib64/ld-linux-x86-64.so.2", needed: []string{"libc.so.6"}}.build()
	corrupt := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		notELF bool
	}{
		{name: "empty", in: nil, notELF: true},
		{name: "text", in: []byte("#!/bin/sh\necho hello, this is long enough to fill a header......."), notELF: true},
		{name: "relocatable object", in: corrupt(func(b []byte) { b[16] = 1 }), notELF: true},
		{name: "bad class", in: corrupt(func(b []byte) { b[4] = 9 }), notELF: true},
		{name: "truncated", in: good[:100]},
		{name: "phoff beyond file", in: corrupt(func(b []byte) { binary.LittleEndian.PutUint64(b[32:], 1<<62) })},
		{name: "huge phnum", in: corrupt(func(b []byte) { binary.LittleEndian.PutUint16(b[56:], 0xffff) })},
		{name: "small phentsize", in: corrupt(func(b []byte) { binary.LittleEndian.PutUint16(b[54:], 8) })},
		{name: "interp size huge", in: corrupt(func(b []byte) { binary.LittleEndian.PutUint64(b[64+56+32:], 1<<40) })},
		{name: "strtab unmapped", in: corrupt(func(b []byte) { binary.LittleEndian.PutUint64(b[64+16:], 1<<50) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseELF(bytes.NewReader(tt.in), int64(len(tt.in)))
			if err == nil {
				t.Fatalf("ParseELF = %+v, want an error", info)
			}
			if got := errors.Is(err, ErrNotELF); got != tt.notELF {
				t.Errorf("errors.Is(%v, ErrNotELF) = %v, want %v", err, got, tt.notELF)
			}
		})
	}
}

func FuzzParseELF(f *testing.F) {
	for _, s := range []synthELF{
		{class: 64, bo: binary.LittleEndian, machine: emX86_64, typ: etDyn, interp: "/lib64/ld-linux-x86-64.so.2", needed: []string{"libc.so.6"}, runpath: "$ORIGIN"},
		{class: 32, bo: binary.BigEndian, machine: emARM, typ: etExec, interp: "/lib/ld.so", needed: []string{"a", "b"}, rpath: "/x:/y", soname: "s"},
		{class: 64, bo: binary.BigEndian, machine: 22, typ: etDyn, soname: "libz.so.1"},
	} {
		f.Add(s.build())
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseELF(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if info.Class != 32 && info.Class != 64 {
			t.Errorf("Class = %d", info.Class)
		}
		if info.Type != "exec" && info.Type != "dyn" {
			t.Errorf("Type = %q", info.Type)
		}
		if info.InterpSize > 0 && (info.InterpOffset < 0 || info.InterpOffset+info.InterpSize > int64(len(b))) {
			t.Errorf("PT_INTERP %d+%d outside the %d-byte file", info.InterpOffset, info.InterpSize, len(b))
		}
		if len(info.Needed) > maxNeeded {
			t.Errorf("%d DT_NEEDED", len(info.Needed))
		}
		for _, s := range append(append(append([]string{info.SOName, info.Interp}, info.Needed...), info.RPath...), info.RunPath...) {
			if len(s) > maxInterp || strings.IndexByte(s, 0) >= 0 {
				t.Errorf("string of %d bytes or with NUL: %q", len(s), s)
			}
		}
	})
}
