package image_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
)

// exampleLayout writes an OCI layout holding a small merged-/usr image: a
// program needing libm and libc, the loader, and the libraries (synthetic
// ELF files with the right headers and dynamic sections).
func exampleLayout() (string, error) {
	root, err := os.MkdirTemp("", "extract-example-root")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	files := map[string][]byte{
		"usr/bin/momentum": mkELF(elfSpec{exec: true, interp: "/lib64/ld-linux-x86-64.so.2", needed: []string{"libm.so.6", "libc.so.6"}}),
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": mkELF(elfSpec{soname: "ld-linux-x86-64.so.2"}),
		"usr/lib/x86_64-linux-gnu/libc.so.6":            mkELF(elfSpec{soname: "libc.so.6", needed: []string{"ld-linux-x86-64.so.2"}}),
		"usr/lib/x86_64-linux-gnu/libm.so.6":            mkELF(elfSpec{soname: "libm.so.6", needed: []string{"libc.so.6"}}),
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, p), b, 0o755); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/lib64"), 0o755); err != nil {
		return "", err
	}
	for link, target := range map[string]string{"lib": "usr/lib", "lib64": "usr/lib64", "bin": "usr/bin",
		"usr/lib64/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			return "", err
		}
	}
	img, err := imagebuild.FromDir(root, v1.Config{Entrypoint: []string{"momentum"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		return "", err
	}
	return testkit.TempLayout(img)
}

// Closure lists every file the image's program needs, each with the first
// reason found: the entrypoint, its loader (reached through the /lib64
// and /usr/lib64/ld-linux-x86-64.so.2 symlinks) and its libraries (through
// /lib).
func ExampleClosure() {
	dir, err := exampleLayout()
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	img, err := image.Open(ctx, "oci:"+dir)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	idx, err := image.BuildIndex(ctx, img)
	if err != nil {
		log.Fatal(err)
	}
	cmd, err := image.ResolveCommand(img, idx, image.Override{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := image.Closure(ctx, idx, cmd)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range res.Files {
		fmt.Printf("%-48s %s %s\n", f.Path, f.Why[0].Kind, f.Why[0].Detail)
	}
	fmt.Println("library path:", res.LibraryPath)
	fmt.Println("loader:", res.Interpreters, "arch:", res.Arch)
	// Output:
	// /lib                                             symlink /lib64/ld-linux-x86-64.so.2
	// /lib64                                           symlink /lib64/ld-linux-x86-64.so.2
	// /usr/bin/momentum                                entrypoint momentum
	// /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2   loader /lib64/ld-linux-x86-64.so.2
	// /usr/lib/x86_64-linux-gnu/libc.so.6              needed libc.so.6
	// /usr/lib/x86_64-linux-gnu/libm.so.6              needed libm.so.6
	// /usr/lib64/ld-linux-x86-64.so.2                  symlink /lib64/ld-linux-x86-64.so.2
	// library path: [/lib/x86_64-linux-gnu]
	// loader: [/lib64/ld-linux-x86-64.so.2] arch: x86_64
}
