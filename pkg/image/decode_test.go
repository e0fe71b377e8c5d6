package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/internal/imagebuild"
)

// extractAll returns "path content" for each call of Extract over the
// paths, in call order, and the layers Extract opened.
func extractAll(t *testing.T, img *Image, idx *Index, opened *[]int, paths ...string) ([]string, []int) {
	t.Helper()
	var es []*Entry
	for _, p := range paths {
		e, ok := idx.Lookup(p)
		if !ok {
			t.Fatalf("%s not in the index", p)
		}
		es = append(es, e)
	}
	*opened = nil
	var calls []string
	err := Extract(context.Background(), img, idx, es, func(e *Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		calls = append(calls, e.Path+" "+string(b))
		return err
	})
	if err != nil {
		t.Fatalf("Extract(%v): %v", paths, err)
	}
	return calls, append([]int(nil), *opened...)
}

// TestExtractKeptBytes: files the index kept (config, scripts, interpreter
// sources) come from memory, without opening their layer; a layer is read
// for the others, and its files still reach fn in tar order.
func TestExtractKeptBytes(t *testing.T) {
	var opened []int
	base := mustV1(t,
		[]tf{file("etc/app.conf", "x=1"), file("bin/run", "#!/bin/sh\necho hi\n"), file("data.txt", "plain"),
			file("lib/mod.py", "import os\n"), file("over.py", "old"), hardlink("bin/run2", "bin/run")},
		[]tf{file("over.py", "new"), file("big.py", strings.Repeat("b", 100))},
	)
	img := fromV1(t, countingImage{base, &opened})
	idx, err := BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	calls, got := extractAll(t, img, idx, &opened, "/lib/mod.py", "/bin/run2", "/etc/app.conf", "/over.py")
	if diff := cmp.Diff([]string{"/etc/app.conf x=1", "/bin/run2 #!/bin/sh\necho hi\n", "/lib/mod.py import os\n", "/over.py new"}, calls); diff != "" {
		t.Errorf("kept files: Extract calls (-want +got):\n%s", diff)
	}
	if len(got) != 0 {
		t.Errorf("kept files: Extract opened layers %v, want none", got)
	}
	calls, got = extractAll(t, img, idx, &opened, "/lib/mod.py", "/data.txt", "/bin/run")
	if diff := cmp.Diff([]string{"/bin/run #!/bin/sh\necho hi\n", "/data.txt plain", "/lib/mod.py import os\n"}, calls); diff != "" {
		t.Errorf("mixed: Extract calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0}, got); diff != "" {
		t.Errorf("mixed: layers opened (-want +got):\n%s", diff)
	}
	if _, ok := idx.bodies[Source{Layer: 0, Name: "over.py"}]; ok {
		t.Error("the index still keeps the bytes of layer 0's over.py, which layer 1 replaced")
	}

	// A budget of 20 bytes, files of at most 12: app.conf (config, always
	// kept), bin/run (18 bytes) and big.py (100) are over the file limit;
	// then mod.py (10), over.py (3) and new over.py (3) compete for 20.
	img = fromV1(t, countingImage{base, &opened})
	img.opts.kept = &[2]int64{20, 12}
	idx, err = BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for src, b := range idx.bodies {
		n := b.n + int64(len(b.b))
		if src.Name != "etc/app.conf" {
			total += n
		}
		if n > 12 {
			t.Errorf("kept %s, %d bytes, over the 12-byte file limit", src.Name, n)
		}
	}
	if total > 20 {
		t.Errorf("kept %d bytes, over the budget of 20", total)
	}
	calls, _ = extractAll(t, img, idx, &opened, "/big.py", "/bin/run", "/etc/app.conf")
	if diff := cmp.Diff([]string{"/etc/app.conf x=1", "/bin/run #!/bin/sh\necho hi\n", "/big.py " + strings.Repeat("b", 100)}, calls); diff != "" {
		t.Errorf("small budget: Extract calls (-want +got):\n%s", diff)
	}
}

// indexDump describes everything BuildIndex and Extract give for img: each
// entry with its details and kept content, then the sha256 of each regular
// file in Extract's call order.
func indexDump(t *testing.T, img *Image, procs int, kept *[2]int64) string {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	img.opts.kept = kept
	idx, err := BuildIndex(context.Background(), img)
	if err != nil {
		t.Fatalf("BuildIndex (GOMAXPROCS %d): %v", procs, err)
	}
	var b strings.Builder
	var files []*Entry
	err = idx.Walk(func(e *Entry) error {
		j, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b.Write(j)
		if c, ok := idx.Content(e.Path); ok {
			fmt.Fprintf(&b, " content %q", c)
		}
		b.WriteByte('\n')
		if e.Kind == Regular {
			files = append(files, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = Extract(context.Background(), img, idx, files, func(e *Entry, r io.Reader) error {
		h := sha256.New()
		n, err := io.Copy(h, r)
		fmt.Fprintf(&b, "%s %d %x\n", e.Path, n, h.Sum(nil))
		return err
	})
	if err != nil {
		t.Fatalf("Extract (GOMAXPROCS %d): %v", procs, err)
	}
	return b.String()
}

// TestBuildIndexDeterministic: the index and what Extract delivers do not
// depend on how many layers are decoded at once nor on which files the
// index kept (whiteouts, opaque directories, hardlinks across layers,
// ELF files and scripts in several layers); with EXTRACT_FIXTURES, also
// for the fortran-merged fixture.
func TestBuildIndexDeterministic(t *testing.T) {
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{"synthetic": mustV1(t,
		[]tf{dir("usr/"), dir("usr/bin/"), file("usr/bin/ls", string(ls)), file("usr/bin/s", "#!/bin/sh\n"),
			dir("d/"), file("d/a", "a"), file("d/b.py", "b"), file("etc/passwd", "root:x:0:0::/:/bin/sh\n")},
		[]tf{file("usr/bin/ls2", string(ls[:len(ls)/2])), hardlink("x/ls", "usr/bin/ls"), file("d/.wh..wh..opq", ""),
			file("d/c", "c"), file("usr/bin/.wh.s", "")},
		[]tf{hardlink("x/s", "d/c"), file("usr/bin/ls", "#!/bin/true\n"), symlink("bin", "usr/bin"), file("d/a", "A2")},
	)}
	if fx := os.Getenv("EXTRACT_FIXTURES"); fx != "" {
		img, err := imagebuild.Fixture(fx, "fortran-merged")
		if err != nil {
			t.Fatal(err)
		}
		images["fortran-merged"] = img
	} else {
		t.Log("EXTRACT_FIXTURES not set: synthetic image only")
	}
	for name, v := range images {
		t.Run(name, func(t *testing.T) {
			img := fromV1(t, v)
			want := indexDump(t, img, 1, &[2]int64{})
			for _, c := range []struct {
				procs int
				kept  *[2]int64
			}{{4, nil}, {2, &[2]int64{64 << 10, 32 << 10}}, {1, nil}} {
				if got := indexDump(t, img, c.procs, c.kept); got != want {
					t.Errorf("GOMAXPROCS %d, kept %v: index or extracted bytes differ from GOMAXPROCS 1 keeping nothing:\n%s",
						c.procs, c.kept, cmp.Diff(want, got))
				}
			}
		})
	}
}
