package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/comingout/extract/internal/testkit"
)

// forbidden are the packages (and their subpackages) the bootstrap must
// never link: it runs on Lambda and must stay small and static.
var forbidden = []string{
	"github.com/google/go-containerregistry",
	"github.com/wagoodman/dive",
	"github.com/urfave/cli",
	"github.com/aws/aws-sdk-go-v2/service/lambda",
	"github.com/comingout/extract/pkg/image",
	"github.com/comingout/extract/pkg/lambda",
	"github.com/comingout/extract/cmd/extract",
	"net/rpc", // aws-lambda-go's RPC mode; its reflection bloats the binary
}

func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("bootstrap depends on %s (forbidden: %s)", d, f)
			}
		}
	}
}

// maxSize is the budget for the stripped bootstrap of each architecture.
const maxSize = 10 << 20

func TestSize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap twice; skipped with -short")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			// Built as `make bootstraps` does: static, -trimpath, stripped.
			bin := testkit.GoBuildFile(t, testkit.Bootstrap, arch)
			fi, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("bootstrap linux/%s: %d bytes (%.2f MiB)", arch, fi.Size(), float64(fi.Size())/(1<<20))
			if fi.Size() > maxSize {
				t.Errorf("bootstrap linux/%s is %d bytes, over the %d-byte budget", arch, fi.Size(), maxSize)
			}
			if err := checkStatic(bin); err != nil {
				t.Error(err)
			}
		})
	}
}
