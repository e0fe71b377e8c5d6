package image_test

import (
	"fmt"

	"github.com/comingout/extract/pkg/image"
)

// The decision `--format auto` makes from a closure's path references: a
// program whose files name none runs from a zip; git naming its exec-path
// needs its files at their original paths, in a Lambda container image.
func ExampleAutoFormat() {
	format, _ := image.AutoFormat(nil, nil)
	fmt.Println(format)

	refs := []image.PathRef{{File: "/usr/bin/git", Path: "/usr/lib/git-core", Kind: "dir", Bundled: false}}
	format, why := image.AutoFormat(nil, refs)
	fmt.Println(image.NeedsOriginalPaths(refs), format, "-", why)
	// Output:
	// zip
	// true image - 1 closure file names 1 image path a zip would move
}
