package image

import (
	"context"
	"errors"
	"fmt"
	"sort"

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
// tar entries (as dive's image readers do, without the content hashes
// dive's efficiency does not use), then filetree.Efficiency over them.
// dive's filetree panics on some inputs; a panic is turned into an error.
func BuildIndexReport(ctx context.Context, img *Image) (*Index, *Report, error) {
	if img == nil || img.V1() == nil {
		return nil, nil, errors.New("layer report: no image")
	}
	idx, stats, err := buildIndex(ctx, img, true)
	if err != nil {
		return nil, nil, err
	}
	rep, err := layerReport(img, stats)
	if err != nil {
		return nil, nil, err
	}
	return idx, rep, nil
}

// layerReport builds the report from each layer's tar entries.
func layerReport(img *Image, stats [][]filetree.FileInfo) (rep *Report, err error) {
	defer func() {
		if r := recover(); r != nil {
			rep, err = nil, fmt.Errorf("layer report: dive filetree failed: %v", r)
		}
	}()
	layers, err := img.V1().Layers()
	if err != nil {
		return nil, fmt.Errorf("layer report: listing layers: %w", err)
	}
	rep = &Report{}
	trees := make([]*filetree.FileTree, 0, len(layers))
	for i, l := range layers {
		st := LayerStat{Index: i}
		if i < len(img.Layers) {
			st.Digest, st.Size, st.CreatedBy = img.Layers[i].Digest, img.Layers[i].Size, img.Layers[i].CreatedBy
		} else if d, err := l.Digest(); err == nil {
			st.Digest = d.String()
		}
		tree := filetree.NewFileTree()
		tree.Name = st.Digest
		for _, info := range stats[i] {
			tree.FileSize += uint64(info.Size)
			if _, _, err := tree.AddPath(info.Path, info); err != nil {
				return nil, fmt.Errorf("layer report: layer %d (%s): adding %q: %w", i, st.Digest, info.Path, err)
			}
		}
		st.ContentBytes = int64(tree.FileSize)
		st.Files = len(stats[i])
		stats[i] = nil // the tree has it now
		if i > 0 {
			rep.UserBytes += st.ContentBytes
		}
		rep.Layers = append(rep.Layers, st)
		trees = append(trees, tree)
	}
	score, waste := efficiency(trees)
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
	return rep, nil
}

// pathWaste is what efficiency finds for one path.
type pathWaste struct {
	path    string
	copies  int
	bytes   int64
	minSize int64
}

// efficiency is dive's filetree.Efficiency, with the same visits and sums
// (so the same score and waste), except that dive stacks the layers below
// a whiteout afresh for every whiteout (a copy of the whole tree each
// time, minutes for layers that delete thousands of files); here the
// stack grows by one layer as the layers are visited and serves every
// whiteout of the next layer. The visitor never changes the stack, so the
// sizes read from it are the ones dive reads. It returns the paths found
// in more than one layer.
func efficiency(trees []*filetree.FileTree) (float64, []*pathWaste) {
	paths := map[string]*pathWaste{}
	var wasted []*pathWaste
	var stack *filetree.FileTree
	stacked := 0 // trees[:stacked] are in stack (after trees[0]'s copy)
	var stackErr error
	below := func(cur int) (*filetree.FileTree, error) {
		if stack == nil {
			stack = trees[0].Copy()
		}
		for ; stacked < cur && stackErr == nil; stacked++ {
			_, stackErr = stack.Stack(trees[stacked])
		}
		return stack, stackErr
	}
	for cur, tree := range trees {
		visit := func(node *filetree.FileNode) error {
			p := node.Path()
			w := paths[p]
			if w == nil {
				w = &pathWaste{path: p, minSize: -1}
				paths[p] = w
			}
			var size int64
			if node.IsWhiteout() {
				st, err := below(cur)
				if err != nil {
					return fmt.Errorf("unable to stack tree range: %w", err)
				}
				prev, err := st.GetNode(p)
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
				wasted = append(wasted, w)
			}
			return nil
		}
		// As dive: an error ends the visit of this layer only.
		_ = tree.VisitDepthChildFirst(visit, func(n *filetree.FileNode) bool { return n.IsLeaf() })
	}
	var minimum, discovered int64
	for _, w := range paths {
		minimum += w.minSize
		discovered += w.bytes
	}
	if discovered == 0 {
		return 1, wasted
	}
	return float64(minimum) / float64(discovered), wasted
}
