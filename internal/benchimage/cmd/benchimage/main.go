// Command benchimage writes the benchmark image of scripts/bench-package.sh
// (see package benchimage) and publishes it:
//
//	benchimage --fixtures DIR --dir CACHE [--push REF] [--docker-archive FILE] [--oci-archive FILE]
//	           [--docker-save FILE]
//
// It builds the image into CACHE/layout once (reused later), then pushes it
// to REF, writes it as a docker-archive with gzip layers (as
// go-containerregistry's tarball.Write, `crane pull`, `extract package -o
// docker-archive:`), as a docker-archive with uncompressed layers (as
// `docker save`; kept in CACHE and reused) and as an oci-archive (a tar of
// the layout), and prints one line:
// "layers=N compressed=BYTES uncompressed=BYTES".
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/comingout/extract/internal/benchimage"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchimage", flag.ContinueOnError)
	fixtures := fs.String("fixtures", "", "the fixtures directory (testdata/fixtures)")
	dir := fs.String("dir", "", "where the generated image is kept")
	push := fs.String("push", "", "push the image to this tag reference")
	docker := fs.String("docker-archive", "", "write the image as a docker-archive here")
	oci := fs.String("oci-archive", "", "write the image as an oci-archive here")
	save := fs.String("docker-save", "", "link the image as `docker save` writes it (uncompressed layers) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fixtures == "" || *dir == "" {
		return fmt.Errorf("--fixtures and --dir are required")
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "benchimage: "+f+"\n", a...) }
	img, err := benchimage.Layout(*dir, *fixtures, logf)
	if err != nil {
		return err
	}
	if *push != "" {
		tag, err := name.NewTag(*push)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, img); err != nil {
			return fmt.Errorf("pushing %s: %w", tag, err)
		}
	}
	if *docker != "" {
		tag, _ := name.NewTag("bench.local/extract-bench:" + benchimage.Version)
		if err := tarball.WriteToFile(*docker, tag, img); err != nil {
			return fmt.Errorf("writing %s: %w", *docker, err)
		}
	}
	if *oci != "" {
		if err := benchimage.WriteOCIArchive(filepath.Join(*dir, "layout"), *oci); err != nil {
			return fmt.Errorf("writing %s: %w", *oci, err)
		}
	}
	if *save != "" {
		if err := dockerSave(*dir, img, *save); err != nil {
			return err
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	var compressed int64
	for _, l := range m.Layers {
		compressed += l.Size
	}
	uncompressed, err := uncompressedSize(*dir, img)
	if err != nil {
		return err
	}
	fmt.Printf("layers=%d compressed=%d uncompressed=%d\n", len(m.Layers), compressed, uncompressed)
	return nil
}

// dockerSave writes the uncompressed docker-archive once into dir and
// links it (or copies it, across file systems) to out.
func dockerSave(dir string, img v1.Image, out string) error {
	kept := filepath.Join(dir, "docker-save-"+benchimage.Version+".tar")
	if _, err := os.Stat(kept); err != nil {
		tmp := kept + ".tmp"
		if err := benchimage.WriteDockerSave(img, "bench.local/extract-bench:"+benchimage.Version, tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", kept, err)
		}
		if err := os.Rename(tmp, kept); err != nil {
			return err
		}
	}
	os.Remove(out)
	if err := os.Link(kept, out); err == nil {
		return nil
	}
	return os.Symlink(kept, out)
}

// uncompressedSize is the sum of the layers' tar sizes, computed once and
// kept in dir.
func uncompressedSize(dir string, img v1.Image) (int64, error) {
	p := filepath.Join(dir, "uncompressed-"+benchimage.Version)
	if b, err := os.ReadFile(p); err == nil {
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	ls, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, os.WriteFile(p, []byte(strconv.FormatInt(total, 10)), 0o644)
}
