package image

import (
	"context"
	"errors"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/wagoodman/dive/dive/filetree"
)

// Report is dive's view of an image: how much each layer adds and how
// many bytes are wasted on files that later layers overwrite or delete.
// It is informational only (shown by `extract inspect`); the closure never
// depends on it.
type Report struct {
	Layers []LayerStat `json:"layers"`
	// Efficiency is dive's score, 0 to 1: the bytes of the smallest copy of
	// every path over the bytes of all copies (1 means nothing is wasted).
	Efficiency float64 `json:"efficiency"`
	// WastedBytes adds up every copy of each path found in more than one
	// layer (dive counts all copies, the kept one included, as dive's UI
	// does).
	WastedBytes int64 `json:"wasted_bytes"`
	// UserBytes is the content of every layer above the first; WastedPercent
	// is WastedBytes over UserBytes, as dive reports it.
	UserBytes     int64   `json:"user_bytes"`
	WastedPercent float64 `json:"wasted_percent"`
	// Wasted lists the paths wasting the most bytes, largest first (at most
	// MaxReportedWaste).
	Wasted []Waste `json:"wasted,omitempty"`
}

// LayerStat describes one layer for the report.
type LayerStat struct {
	Index  int    `json:"index"`
	Digest string `json:"digest"`
	// Size is the compressed size, ContentBytes the sum of the sizes of the
	// files in the layer's tar, Files the number of tar entries.
	Size         int64  `json:"size"`
	ContentBytes int64  `json:"content_bytes"`
	Files        int    `json:"files"`
	CreatedBy    string `json:"created_by,omitempty"`
}

// Waste is one path present in several layers.
type Waste struct {
	Path   string `json:"path"`
	Copies int    `json:"copies"`
	Bytes  int64  `json:"bytes"`
}

// MaxReportedWaste bounds Report.Wasted.
const MaxReportedWaste = 10

// LayerReport builds the dive report of img: BuildIndexReport without
// the index.
func LayerReport(ctx context.Context, img *Image) (*Report, error) {
	_, rep, err := BuildIndexReport(ctx, img)
	return rep, err
}

// BuildIndexReport is BuildIndex that also builds the dive report from
// the same pass over the layers: one filetree.FileTree per layer from its
// tar entries, made while the layer is decoded (as dive's image readers
// do, without the content hashes dive's efficiency does not use), then
// dive's efficiency over them (see efficiency). dive's filetree panics on
// some inputs; a panic is turned into an error.
func BuildIndexReport(ctx context.Context, img *Image) (*Index, *Report, error) {
	if img == nil || img.V1() == nil {
		return nil, nil, errors.New("layer report: no image")
	}
	layers, err := img.V1().Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("layer report: listing layers: %w", err)
	}
	rep := &Report{}
	var eff diveEfficiency
	idx, err := buildIndex(ctx, img, func(n int, lt layerTree) error {
		return rep.addLayer(img, layers[n], n, lt, &eff)
	})
	if err != nil {
		return nil, nil, err
	}
	rep.finish(&eff)
	return idx, rep, nil
}

// addLayer adds layer n's line to the report and its tree to eff.
func (rep *Report) addLayer(img *Image, l v1.Layer, n int, lt layerTree, eff *diveEfficiency) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("layer report: dive filetree failed: %v", r)
		}
	}()
	st := LayerStat{Index: n, ContentBytes: int64(lt.tree.FileSize), Files: lt.files}
	if n < len(img.Layers) {
		st.Digest, st.Size, st.CreatedBy = img.Layers[n].Digest, img.Layers[n].Size, img.Layers[n].CreatedBy
	} else if d, err := l.Digest(); err == nil {
		st.Digest = d.String()
	}
	lt.tree.Name = st.Digest
	if n > 0 {
		rep.UserBytes += st.ContentBytes
	}
	rep.Layers = append(rep.Layers, st)
	eff.add(lt.tree)
	return nil
}

// finish adds the efficiency and the waste.
func (rep *Report) finish(eff *diveEfficiency) {
	score, waste := eff.result()
	rep.Efficiency = score
	for _, w := range waste {
		rep.WastedBytes += w.bytes
		rep.Wasted = append(rep.Wasted, Waste{Path: w.path, Copies: w.copies, Bytes: w.bytes})
	}
	sort.SliceStable(rep.Wasted, func(i, j int) bool {
		if rep.Wasted[i].Bytes != rep.Wasted[j].Bytes {
			return rep.Wasted[i].Bytes > rep.Wasted[j].Bytes
		}
		return rep.Wasted[i].Path < rep.Wasted[j].Path
	})
	if len(rep.Wasted) > MaxReportedWaste {
		rep.Wasted = rep.Wasted[:MaxReportedWaste]
	}
	if rep.UserBytes > 0 {
		rep.WastedPercent = 100 * float64(rep.WastedBytes) / float64(rep.UserBytes)
	}
}

// pathWaste is what diveEfficiency finds for one path.
type pathWaste struct {
	path    string
	copies  int
	bytes   int64
	minSize int64
}

// diveEfficiency is dive's filetree.Efficiency, fed one layer's tree at a
// time in layer order, with the same visits and sums (so the same score
// and waste), except for the stack of the layers below a whiteout: dive
// copies and restacks the whole tree for every whiteout (minutes for
// layers that delete thousands of files); here the stack grows by one
// layer after each layer is visited, and a layer's tree can be dropped
// once added. The visitor never changes the stack, so the sizes read from
// it are the ones dive reads.
type diveEfficiency struct {
	paths  map[string]*pathWaste
	wasted []*pathWaste
	// stack is the first tree's copy with the added trees stacked on it,
	// as dive's StackTreeRange(trees, 0, current-1) makes it; err is
	// what stacking failed with (dive fails every later whiteout).
	stack *filetree.FileTree
	err   error
}

// add visits tree, the next layer's, as dive's Efficiency does.
func (d *diveEfficiency) add(tree *filetree.FileTree) {
	if d.paths == nil {
		d.paths = map[string]*pathWaste{}
		d.stack = tree.Copy()
	}
	visit := func(node *filetree.FileNode) error {
		p := node.Path()
		w := d.paths[p]
		if w == nil {
			w = &pathWaste{path: p, minSize: -1}
			d.paths[p] = w
		}
		var size int64
		if node.IsWhiteout() {
			if d.err != nil {
				return fmt.Errorf("unable to stack tree range: %w", d.err)
			}
			prev, err := d.stack.GetNode(p)
			if err != nil {
				return err
			}
			if prev.Data.FileInfo.IsDir {
				err := prev.VisitDepthChildFirst(func(n *filetree.FileNode) error {
					size += n.Data.FileInfo.Size
					return nil
				}, nil, nil)
				if err != nil {
					return err
				}
			}
		} else {
			size = node.Data.FileInfo.Size
		}
		w.bytes += size
		if w.minSize < 0 || size < w.minSize {
			w.minSize = size
		}
		w.copies++
		if w.copies == 2 {
			d.wasted = append(d.wasted, w)
		}
		return nil
	}
	// As dive: an error ends the visit of this layer only.
	_ = tree.VisitDepthChildFirst(visit, func(n *filetree.FileNode) bool { return n.IsLeaf() })
	if d.err == nil {
		_, d.err = d.stack.Stack(tree)
	}
}

// result returns dive's score and the paths found in more than one layer.
func (d *diveEfficiency) result() (float64, []*pathWaste) {
	var minimum, discovered int64
	for _, w := range d.paths {
		minimum += w.minSize
		discovered += w.bytes
	}
	if discovered == 0 {
		return 1, d.wasted
	}
	return float64(minimum) / float64(discovered), d.wasted
}
