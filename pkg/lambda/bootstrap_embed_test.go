//go:build embedbootstrap

package lambda

import (
	"bytes"
	"context"
	"debug/elf"
	"testing"
)

// TestEmbeddedBootstrapNeedsNoGo: a binary built with the embedbootstrap
// tag (`make build`, the release config) packages with no Go toolchain: the
// bootstraps come from the binary with PATH empty. Run with
// `make bootstraps && go test -tags embedbootstrap -run TestEmbeddedBootstrapNeedsNoGo ./pkg/lambda`.
func TestEmbeddedBootstrapNeedsNoGo(t *testing.T) {
	t.Setenv("PATH", "")
	for goarch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		b, err := Bootstrap(context.Background(), goarch)
		if err != nil {
			t.Fatalf("Bootstrap(%q) with PATH empty: %v", goarch, err)
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil || f.Machine != machine {
			t.Errorf("Bootstrap(%q): not a %v ELF program (%v)", goarch, machine, err)
		}
	}
}
