package image

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wagoodman/dive/dive/filetree"
)

// TestEfficiencyMatchesDive: diveEfficiency (the stack grown layer by layer)
// gives dive's filetree.Efficiency score and waste on layers that remove
// files and whole directories, re-add them, and make opaque directories.
func TestEfficiencyMatchesDive(t *testing.T) {
	img := fromV1(t, mustV1(t,
		[]tf{dir("a/"), file("a/f", "12345"), dir("a/d/"), file("a/d/x", "xxxxxxxx"), file("a/d/y", "yy"), file("b", "bbb"), dir("c/"), file("c/z", "z")},
		[]tf{file("a/.wh.d", ""), file("a/f", "123"), file(".wh.b", ""), file("c/.wh..wh..opq", ""), file("c/n", "nnnn")},
		[]tf{dir("a/d/"), file("a/d/x", "x"), file("b", "bbbbbb"), file("a/.wh.f", ""), file(".wh.c", "")},
		[]tf{file("a/d/.wh.x", ""), file(".wh.gone", ""), file("b", "b")},
	))
	var trees []*filetree.FileTree
	var eff diveEfficiency
	_, err := buildIndex(context.Background(), img, func(_ int, lt layerTree) error {
		trees = append(trees, lt.tree)
		eff.add(lt.tree)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	score, waste := eff.result()
	wantScore, wantWaste := filetree.Efficiency(trees)
	if score != wantScore {
		t.Errorf("score = %v, dive's %v", score, wantScore)
	}
	var want, got []string
	for _, w := range wantWaste {
		want = append(want, fmt.Sprintf("%s %d %d", w.Path, len(w.Nodes), w.CumulativeSize))
	}
	for _, w := range waste {
		got = append(got, fmt.Sprintf("%s %d %d", w.path, w.copies, w.bytes))
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) < 3 {
		t.Fatalf("dive finds only %v wasted: the layers do not test much", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waste (-dive +efficiency):\n%s", diff)
	}
}
