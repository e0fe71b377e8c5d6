package image_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/comingout/extract/pkg/image"
)

// ExampleTrace traces an image's program on a sample CSV and prints what
// the trace found that the static rules missed. (Not run: it needs an
// image, root or user namespaces, and the host's architecture.)
func ExampleTrace() {
	ctx := context.Background()
	img, err := image.Open(ctx, "oci:./layout:v1")
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
	static, err := image.Closure(ctx, idx, cmd)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := image.Trace(ctx, img, idx, cmd, "sample.csv", image.WithTraceTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	traced, err := image.Closure(ctx, idx, cmd, image.WithTraced(tr.Paths))
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range image.TraceAdded(static, traced) {
		fmt.Println(f.Path, "seen at run time")
	}
}
