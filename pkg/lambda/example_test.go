package lambda_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

// tinyELF is the smallest static x86-64 program: it exits 0. It stands in
// for a shell here.
func tinyELF() string {
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // exit(0)
	const base, hdr = 0x400000, 64 + 56
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     base + hdr,
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     1,
		Shentsize: 64,
	})
	binary.Write(&b, binary.LittleEndian, elf.Prog64{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: base, Paddr: base, Filesz: hdr + uint64(len(code)), Memsz: hdr + uint64(len(code)), Align: 0x1000,
	})
	b.Write(code)
	return b.String()
}

// exampleLayout writes an OCI layout holding an image whose ENTRYPOINT is a
// shell script, and returns its directory.
func exampleLayout() (string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name, body string
		mode       int64
	}{
		{"bin/sh", tinyELF(), 0o755},
		{"app/run.sh", "#!/bin/sh -e\ncat\n", 0o755},
		{"app/README", "not needed at run time", 0o644},
	} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, f.body)
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Entrypoint: []string{"/app/run.sh"}}})
	if err != nil {
		return "", err
	}
	return testkit.TempLayout(img)
}

func ExamplePackage() {
	ctx := context.Background()
	dir, err := exampleLayout()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	img, err := image.Open(ctx, "oci:"+dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()

	out := filepath.Join(dir, "function.zip")
	res, err := lambda.PackageFile(ctx, img, out,
		// A stand-in for the real bootstrap, which is built for the
		// image's architecture ("amd64" here).
		lambda.WithBootstrap(func(arch string) ([]byte, error) { return []byte("bootstrap " + arch), nil }))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("arch:", res.Arch, "program:", res.Manifest.Program)

	zr, err := zip.OpenReader(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer zr.Close()
	for _, f := range zr.File {
		fmt.Println(f.Mode(), f.Name)
		if f.Name == "rootfs/app/run.sh" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			first, _, _ := strings.Cut(string(b), "\n")
			fmt.Println("   ", strings.Replace(first, res.Manifest.LinkDir, "$LINKDIR", 1))
		}
	}
	// Output:
	// arch: x86_64 program: /app/run.sh
	// -rwxr-xr-x bootstrap
	// -rw-r--r-- extract.json
	// drwxr-xr-x rootfs/
	// drwxr-xr-x rootfs/app/
	// -rwxr-xr-x rootfs/app/run.sh
	//     #!$LINKDIR/rootfs/bin/sh -e
	// drwxr-xr-x rootfs/bin/
	// -rwxr-xr-x rootfs/bin/sh
}
