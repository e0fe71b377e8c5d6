package lambda

import (
	"bytes"
	"context"
	"debug/elf"
	"testing"
)

func TestBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap with the go command")
	}
	tests := []struct {
		goarch  string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			b, err := Bootstrap(context.Background(), tt.goarch)
			if err != nil {
				t.Fatalf("Bootstrap(%q): %v", tt.goarch, err)
			}
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("Bootstrap(%q) is not ELF: %v", tt.goarch, err)
			}
			if f.Machine != tt.machine || f.Type != elf.ET_EXEC {
				t.Errorf("Bootstrap(%q) = %v %v, want %v ET_EXEC", tt.goarch, f.Machine, f.Type, tt.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("Bootstrap(%q) has %v: not static", tt.goarch, p.Type)
				}
			}
			again, err := Bootstrap(context.Background(), tt.goarch)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("second Bootstrap(%q) = %d bytes, %v; want the same %d bytes", tt.goarch, len(again), err, len(b))
			}
		})
	}
}

func TestBootstrapArch(t *testing.T) {
	for _, arch := range []string{"", "386", "x86_64", "riscv64"} {
		if _, err := Bootstrap(context.Background(), arch); err == nil {
			t.Errorf("Bootstrap(%q) succeeded, want an error", arch)
		}
	}
}
