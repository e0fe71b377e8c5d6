//go:build !embedbootstrap

package lambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
)

// loadBootstrap builds the bootstrap for goarch with the local Go toolchain,
// or returns the cached build of the same sources. A build is announced on
// log first: it takes a while, once.
func loadBootstrap(ctx context.Context, goarch string, log *slog.Logger) ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("%w; or put the Go toolchain on PATH (no go command found)", ErrNoBootstrap)
	}
	src, version, err := bootstrapSource()
	if err != nil {
		return nil, err
	}
	key, err := bootstrapKey(ctx, gobin, src, version, goarch)
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("finding the cache directory for bootstraps: %w", err)
	}
	dir := filepath.Join(cache, "extract", "bootstrap", key)
	out := filepath.Join(dir, "bootstrap-"+goarch)
	if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the bootstrap cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".bootstrap-"+goarch+"-*")
	if err != nil {
		return nil, fmt.Errorf("creating the bootstrap cache: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	log.Info(fmt.Sprintf("building the Lambda bootstrap for linux/%s with the local Go toolchain (once; cached in %s)", goarch, dir))
	if src != "" {
		err = goBuild(ctx, gobin, src, goarch, tmp.Name(), "./cmd/bootstrap")
	} else {
		err = buildFromVersion(ctx, gobin, version, goarch, tmp.Name())
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("caching the bootstrap: %w", err)
	}
	return os.ReadFile(out)
}

// bootstrapSource finds what to build the bootstrap from: the module's
// source tree, located from this file's compile-time path (absolute unless
// built with -trimpath) and checked by its go.mod; failing that, the module
// version in the binary's build information ("" src). A development build
// moved away from its source has neither.
func bootstrapSource() (src, version string, err error) {
	if _, file, _, ok := goruntime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isModuleRoot(root) {
			return root, "", nil
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == bootstrapModule && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "", bi.Main.Version, nil
	}
	return "", "", fmt.Errorf("%w (the extract source tree is not here to build it from)", ErrNoBootstrap)
}

func isModuleRoot(dir string) bool {
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	if !bytes.HasPrefix(mod, []byte("module "+bootstrapModule+"\n")) {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, "cmd", "bootstrap"))
	return err == nil && st.IsDir()
}

// bootstrapKey hashes what the build depends on: the Go version, the target
// architecture, and either the module version or, for a source tree, the
// contents of every file of the module's packages the bootstrap imports and
// the versions of the other modules it uses.
func bootstrapKey(ctx context.Context, gobin, src, version, goarch string) (string, error) {
	h := sha256.New()
	goVersion, err := goCommand(ctx, gobin, src, goarch, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\n%s\n", bytes.TrimSpace(goVersion), goarch)
	if src == "" {
		fmt.Fprintf(h, "%s@%s\n", bootstrapModule, version)
		return hex.EncodeToString(h.Sum(nil))[:16], nil
	}
	const format = `{{if .Module}}{{if .Module.Main}}main {{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{else}}mod {{.Module.Path}}@{{.Module.Version}}{{end}}{{else}}std {{.ImportPath}}{{end}}`
	list, err := goCommand(ctx, gobin, src, goarch, "list", "-deps", "-f", format, "./cmd/bootstrap")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "main" {
			fmt.Fprintln(h, line)
			continue
		}
		dir := fields[1]
		rel, err := filepath.Rel(src, dir)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, "pkg", filepath.ToSlash(rel))
		for _, name := range fields[2:] {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return "", fmt.Errorf("hashing the bootstrap sources: %w", err)
			}
			fmt.Fprintln(h, "file", name)
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("hashing the bootstrap sources: %w", err)
			}
		}
	}
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		fmt.Fprintln(h, name)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildFromVersion builds the bootstrap of a released extract version in a
// throwaway module that requires it.
func buildFromVersion(ctx context.Context, gobin, version, goarch, out string) error {
	dir, err := os.MkdirTemp("", "extract-bootstrap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module extractbootstrap\n"), 0o644); err != nil {
		return err
	}
	if _, err := goCommand(ctx, gobin, dir, goarch, "get", bootstrapPackage+"@"+version); err != nil {
		return err
	}
	return goBuild(ctx, gobin, dir, goarch, out, bootstrapPackage)
}

func goBuild(ctx context.Context, gobin, dir, goarch, out, pkg string) error {
	_, err := goCommand(ctx, gobin, dir, goarch, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	return err
}

// goCommand runs the go command in dir for a static linux/goarch target and
// returns its stdout; its stderr is part of the error.
func goCommand(ctx context.Context, gobin, dir, goarch string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("building the bootstrap: go %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return b, nil
}
