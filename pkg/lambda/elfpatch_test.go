package lambda

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/image"
	"github.com/google/go-cmp/cmp"
)

// mustHostELF reads a dynamically linked host program and its ELFInfo as
// the image index parses it.
func mustHostELF(t *testing.T, path string) ([]byte, *image.ELFInfo) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no host program to patch: %v", err)
	}
	info, err := image.ParseELF(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("ParseELF(%q): %v", path, err)
	}
	if info.Interp == "" {
		t.Skipf("%s has no PT_INTERP", path)
	}
	return b, info
}

// progInterp reads PT_INTERP with debug/elf.
func progInterp(t *testing.T, b []byte) (string, *elf.Prog) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("elf.NewFile: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			seg := make([]byte, p.Filesz)
			if _, err := p.ReadAt(seg, 0); err != nil {
				t.Fatalf("reading PT_INTERP: %v", err)
			}
			s, _, _ := bytes.Cut(seg, []byte{0})
			return string(s), p
		}
	}
	t.Fatal("no PT_INTERP")
	return "", nil
}

func TestPatchInterp(t *testing.T) {
	orig, info := mustHostELF(t, "/bin/ls")
	oldInterp, prog := progInterp(t, orig)
	if oldInterp != info.Interp || int64(prog.Off) != info.InterpOffset || int64(prog.Filesz) != info.InterpSize {
		t.Fatalf("ParseELF = %q at %d size %d, debug/elf says %q at %d size %d", info.Interp, info.InterpOffset, info.InterpSize, oldInterp, prog.Off, prog.Filesz)
	}
	for _, interp := range []string{"/tmp/x0123456789/ld.so", "/tmp/x0123456789/ld1.so", strings.Repeat("a", int(info.InterpSize)-1)} {
		t.Run(interp, func(t *testing.T) {
			var out bytes.Buffer
			if err := patchInterp(&out, bytes.NewReader(orig), "/bin/ls", info, interp); err != nil {
				t.Fatalf("patchInterp: %v", err)
			}
			got := out.Bytes()
			if len(got) != len(orig) {
				t.Fatalf("patched size = %d, want %d", len(got), len(orig))
			}
			if s, _ := progInterp(t, got); s != interp {
				t.Errorf("PT_INTERP = %q, want %q", s, interp)
			}
			off, end := info.InterpOffset, info.InterpOffset+info.InterpSize
			if !bytes.Equal(got[:off], orig[:off]) || !bytes.Equal(got[end:], orig[end:]) {
				t.Error("bytes outside PT_INTERP changed")
			}
			wantSeg := make([]byte, info.InterpSize)
			copy(wantSeg, interp)
			if diff := cmp.Diff(wantSeg, got[off:end]); diff != "" {
				t.Errorf("PT_INTERP segment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPatchInterpErrors(t *testing.T) {
	orig, info := mustHostELF(t, "/bin/ls")
	tooLong := strings.Repeat("a", int(info.InterpSize))
	var out bytes.Buffer
	err := patchInterp(&out, bytes.NewReader(orig), "/bin/ls", info, tooLong)
	var tl *InterpTooLongError
	if !errors.As(err, &tl) || tl.Max != int(info.InterpSize)-1 || tl.Path != "/bin/ls" {
		t.Errorf("patchInterp(%d bytes) = %v, want *InterpTooLongError with Max %d", len(tooLong), err, info.InterpSize-1)
	}

	wrong := *info
	wrong.Interp = "/lib/ld-musl-x86_64.so.1"
	if err := patchInterp(&out, bytes.NewReader(orig), "/bin/ls", &wrong, "/tmp/x/ld.so"); err == nil {
		t.Error("patchInterp with the wrong old interpreter succeeded, want an error")
	}
	shifted := *info
	shifted.InterpOffset += 3
	if err := patchInterp(&out, bytes.NewReader(orig), "/bin/ls", &shifted, "/tmp/x/ld.so"); err == nil {
		t.Error("patchInterp at a wrong offset succeeded, want an error")
	}
	if err := patchInterp(&out, bytes.NewReader(orig[:info.InterpOffset+2]), "/bin/ls", info, "/tmp/x/ld.so"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("patchInterp of a truncated file = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestRewriteShebang(t *testing.T) {
	const interp = "/tmp/x0123456789/rootfs/bin/sh"
	tests := []struct {
		name, in, want, old string
	}{
		{"plain", "#!/bin/sh\necho hi\n", "#!" + interp + "\necho hi\n", "/bin/sh"},
		{"argument kept", "#!/bin/sh -eu\nset -x\n", "#!" + interp + " -eu\nset -x\n", "/bin/sh"},
		{"space after #!", "#! /bin/sh\n", "#!" + interp + "\n", "/bin/sh"},
		{"tab and arg spacing kept", "#!\t/usr/bin/env  python3 \nprint(1)\n", "#!" + interp + "  python3 \nprint(1)\n", "/usr/bin/env"},
		{"no newline", "#!/bin/sh", "#!" + interp, "/bin/sh"},
		{"carriage return is part of the interpreter, as for the kernel", "#!/bin/sh\r\nx", "#!" + interp + "\nx", "/bin/sh\r"},
		{"binary body", "#!/bin/sh\n\x00\x01\xff", "#!" + interp + "\n\x00\x01\xff", "/bin/sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			old, err := rewriteShebang(&out, strings.NewReader(tt.in), "/script", interp)
			if err != nil {
				t.Fatalf("rewriteShebang(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("rewriteShebang(%q) (-want +got):\n%s", tt.in, diff)
			}
			if old != tt.old {
				t.Errorf("rewriteShebang(%q) old interpreter = %q, want %q", tt.in, old, tt.old)
			}
		})
	}
}

func TestRewriteShebangErrors(t *testing.T) {
	long := "/" + strings.Repeat("d", 250)
	tests := []struct {
		name, in, interp string
		tooLong          bool
	}{
		{"not a script", "\x7fELF", "/tmp/x/rootfs/bin/sh", false},
		{"empty", "", "/tmp/x/rootfs/bin/sh", false},
		{"empty #! line", "#!  \n", "/tmp/x/rootfs/bin/sh", false},
		{"new line over 255 bytes", "#!/bin/sh -e\n", long, true},
		{"exactly 256 bytes", "#!/bin/sh\n", "/" + strings.Repeat("d", 253), true},
		{"interpreter with a space", "#!/bin/sh\n", "/tmp/x y/sh", false},
		{"interpreter with a newline", "#!/bin/sh\n", "/tmp/x\n", false},
		{"empty interpreter", "#!/bin/sh\n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := rewriteShebang(&out, strings.NewReader(tt.in), "/script", tt.interp)
			if err == nil {
				t.Fatalf("rewriteShebang(%q, %q) succeeded, want an error", tt.in, tt.interp)
			}
			var tl *InterpTooLongError
			if got := errors.As(err, &tl); got != tt.tooLong {
				t.Errorf("rewriteShebang(%q) = %v; *InterpTooLongError: %v, want %v", tt.in, err, got, tt.tooLong)
			}
		})
	}
	// The longest line that fits: 255 bytes.
	var out bytes.Buffer
	if _, err := rewriteShebang(&out, strings.NewReader("#!/bin/sh\n"), "/script", "/"+strings.Repeat("d", 252)); err != nil {
		t.Errorf("rewriteShebang to a 255-byte line: %v", err)
	}
}
