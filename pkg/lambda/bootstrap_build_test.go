//go:build !embedbootstrap

package lambda

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapWithoutGo: without embedded bootstraps (a plain go install)
// and without a go command on PATH, Bootstrap says how to get a binary
// that needs none.
func TestBootstrapWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Bootstrap(context.Background(), "arm64")
	if !errors.Is(err, ErrNoBootstrap) {
		t.Fatalf("Bootstrap without go on PATH: error = %v, want ErrNoBootstrap", err)
	}
	for _, want := range []string{"install a release binary", "`make build`", "no go command found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// fakeGo puts a go command on PATH that answers what loadBootstrap asks
// (env GOVERSION, list, build -o OUT) and counts its builds in dir/builds.
func fakeGo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
case "$1" in
env) echo go1.99-fake ;;
list) echo "std fmt" ;;
build)
	echo build >>"` + dir + `/builds"
	while [ "$1" != -o ]; do shift; done
	printf 'fake bootstrap %s' "$GOARCH" >"$2" ;;
*) echo "unexpected go $*" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// TestBootstrapBuildProgress: the fallback build is announced through the
// logger, with where it is cached, and happens once: the next call reads
// the cache, silently.
func TestBootstrapBuildProgress(t *testing.T) {
	dir := fakeGo(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		b, err := Bootstrap(context.Background(), "arm64", WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "fake bootstrap arm64" {
			t.Errorf("Bootstrap = %q, want the fake go's build", b)
		}
	}
	want := "building the Lambda bootstrap for linux/arm64 with the local Go toolchain (once; cached in " + filepath.Join(cache, "extract", "bootstrap") + "/"
	if got := logs.String(); strings.Count(got, "building the Lambda bootstrap") != 1 || !strings.Contains(got, want) {
		t.Errorf("logs = %q, want one line with %q", got, want)
	}
	if builds, _ := os.ReadFile(filepath.Join(dir, "builds")); string(builds) != "build\n" {
		t.Errorf("go build ran %d times, want once", strings.Count(string(builds), "build"))
	}
}
