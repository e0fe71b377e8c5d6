package lambda

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/image"
)

// FuzzRewriteShebang checks that rewriting a script's "#!" line never
// panics, and that a rewrite changes only the interpreter: the result
// starts with "#!"+interp, keeps the rest of the line and the rest of the
// file byte for byte, and fits the kernel's limit.
func FuzzRewriteShebang(f *testing.F) {
	for _, s := range []string{"#!/bin/sh\necho hi\n", "#! /usr/bin/env python3\n", "#!/bin/bash -e", "#!\n", "#!" + strings.Repeat("x", 600), "\x7fELF"} {
		f.Add([]byte(s), "/tmp/x0123456789/rootfs/bin/sh")
	}
	f.Fuzz(func(t *testing.T, script []byte, interp string) {
		var out bytes.Buffer
		old, err := rewriteShebang(&out, bytes.NewReader(script), "/script", interp)
		if err != nil {
			return
		}
		got := out.Bytes()
		line, rest, hasNL := bytes.Cut(got, []byte{'\n'})
		if !bytes.HasPrefix(line, []byte("#!"+interp)) {
			t.Fatalf("rewriteShebang(%q, %q) = %q, want it to start with #!%s", script, interp, got, interp)
		}
		if len(line) > maxShebang {
			t.Fatalf("rewriteShebang(%q, %q): line of %d bytes", script, interp, len(line))
		}
		_, origRest, origNL := bytes.Cut(script, []byte{'\n'})
		if hasNL != origNL {
			t.Fatalf("rewriteShebang(%q, %q) = %q: newline changed", script, interp, got)
		}
		if !bytes.Equal(rest, origRest) {
			t.Fatalf("rewriteShebang(%q, %q) = %q: body changed", script, interp, got)
		}
		if old == "" || !bytes.Contains(script, []byte(old)) {
			t.Fatalf("rewriteShebang(%q) old interpreter %q not in the script", script, old)
		}
	})
}

// FuzzPatchInterp checks that patching never panics, never changes the
// size of the file, and touches only the PT_INTERP segment.
func FuzzPatchInterp(f *testing.F) {
	f.Add([]byte("0123/lib64/ld-linux-x86-64.so.2\x00\x00rest"), int64(4), int64(29), "/lib64/ld-linux-x86-64.so.2", "/tmp/x0123456789/ld.so")
	f.Add([]byte("xx/a\x00yy"), int64(2), int64(3), "/a", "/b")
	f.Fuzz(func(t *testing.T, file []byte, off, size int64, old, interp string) {
		if off < 0 || size < 0 || off > 1<<20 || size > 1<<20 {
			return
		}
		info := &image.ELFInfo{Interp: old, InterpOffset: off, InterpSize: size}
		var out bytes.Buffer
		err := patchInterp(&out, bytes.NewReader(file), "/f", info, interp)
		if err != nil {
			var tl *InterpTooLongError
			if errors.As(err, &tl) && int64(len(interp))+1 <= size {
				t.Fatalf("patchInterp(%q into %d bytes) = %v", interp, size, err)
			}
			return
		}
		got := out.Bytes()
		if len(got) != len(file) {
			t.Fatalf("patched size %d, want %d", len(got), len(file))
		}
		end := off + size
		if !bytes.Equal(got[:off], file[:off]) || !bytes.Equal(got[end:], file[end:]) {
			t.Fatal("bytes outside the segment changed")
		}
		seg := got[off:end]
		if !bytes.HasPrefix(seg, []byte(interp)) || len(bytes.Trim(seg[len(interp):], "\x00")) != 0 || len(seg) == len(interp) {
			t.Fatalf("segment = %q, want %q padded with NULs", seg, interp)
		}
	})
}
