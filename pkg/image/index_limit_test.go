package image

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/comingout/extract/internal/testkit"
)

// deepName is a tar name of about 3 KB below dir, the way a deep tree
// spells it.
func deepName(dir string, n int) string {
	return dir + "/" + strings.Repeat(strings.Repeat("d", 199)+"/", 15) + fmt.Sprint(n)
}

// heldBytes recomputes what idx holds from its nodes and duplicate names,
// to check BuildIndex's running count.
func heldBytes(idx *Index) int64 {
	var sum func(n *node) int64
	sum = func(n *node) int64 {
		s := n.cost
		for _, k := range n.kids {
			s += sum(k)
		}
		return s
	}
	total := sum(idx.root)
	for src := range idx.dups {
		total += int64(len(src.Name))
	}
	return total
}

func TestBuildIndexByteLimit(t *testing.T) {
	const limit = 200_000
	var deep, deepAgain, links, churn, confs []tf
	for n := range 80 {
		deep = append(deep, file(deepName("a", n), "x"))
	}
	for n := range 25 {
		deepAgain = append(deepAgain, file(deepName("b", n), "x"))
	}
	for n := range 80 {
		links = append(links, symlink(fmt.Sprintf("l%d", n), "/"+deepName("target", n)))
	}
	// One layer whose index stays small while the names it has gone
	// through pile up: each round's files go when "c" becomes a file.
	for round := range 10 {
		for n := range 8 {
			churn = append(churn, file(deepName("c", round*8+n), "x"))
		}
		churn = append(churn, file("c", "now a file"))
	}
	for n := range 4 {
		confs = append(confs, file(fmt.Sprintf("etc/ld.so.conf.d/%d.conf", n), strings.Repeat("#", 60_000)))
	}
	var firstHalf []tf
	firstHalf = append(firstHalf, deep[:25]...)
	tests := []struct {
		name   string
		layers [][]tf
		entry  string // the entry the error names; "" for success
	}{
		{name: "long paths", layers: [][]tf{deep}, entry: deepName("a", 0)[:40]},
		{name: "long symlink targets", layers: [][]tf{links}, entry: `"l`},
		{name: "names gone through in one layer", layers: [][]tf{churn}, entry: deepName("c", 0)[:40]},
		{name: "kept config files", layers: [][]tf{confs}, entry: "etc/ld.so.conf.d/"},
		// Removed paths give their bytes back: 2×25 long paths in all, at
		// most 25 at a time.
		{name: "whiteout frees", layers: [][]tf{firstHalf, {file(".wh.a", "")}, deepAgain}},
		{name: "replaced directory frees", layers: [][]tf{firstHalf, {file("a", "file")}, deepAgain}},
		{name: "opaque directory frees", layers: [][]tf{firstHalf, {dir("a"), file("a/.wh..wh..opq", "")}, deepAgain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := fromV1(t, mustV1(t, tt.layers...))
			img.maxIndexBytes = limit
			idx, err := BuildIndex(context.Background(), img)
			if tt.entry == "" {
				if err != nil {
					t.Fatalf("BuildIndex with a %d-byte limit: %v", limit, err)
				}
				if got, want := idx.bytes, heldBytes(idx); got != want {
					t.Errorf("index counts %d bytes, its nodes hold %d", got, want)
				}
				return
			}
			want := fmt.Sprintf("more than %d bytes of paths, link targets and file details", limit)
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.entry) {
				t.Errorf("BuildIndex with a %d-byte limit: error = %v, want ErrLimit, %q and the entry %s…", limit, err, want, tt.entry)
			}
			// The default limit takes the same image.
			img.maxIndexBytes = 0
			if _, err := BuildIndex(context.Background(), img); err != nil {
				t.Errorf("BuildIndex with MaxIndexBytes: %v", err)
			}
		})
	}
}

// TestIndexBytesOfFixtures shows how far real root filesystems stay below
// MaxIndexBytes: bytes held per path, against what a MaxEntries-path image
// could hold at that rate.
func TestIndexBytesOfFixtures(t *testing.T) {
	for _, name := range []string{"python", "perl", "tcl"} {
		v1img, _ := testkit.FixtureImage(t, name)
		idx, err := BuildIndex(context.Background(), fromV1(t, v1img))
		if err != nil {
			t.Fatalf("BuildIndex(%s): %v", name, err)
		}
		perPath := idx.bytes / int64(idx.Len())
		t.Logf("%s: %d paths, %d bytes held (%d per path)", name, idx.Len(), idx.bytes, perPath)
		if got, want := idx.bytes, heldBytes(idx); got != want {
			t.Errorf("%s: index counts %d bytes, its nodes hold %d", name, got, want)
		}
		// At this rate even MaxEntries paths (an image far bigger than any
		// real one) would fit.
		if perPath*MaxEntries > MaxIndexBytes {
			t.Errorf("%s: %d bytes per path; %d paths would exceed MaxIndexBytes", name, perPath, MaxEntries)
		}
	}
}
