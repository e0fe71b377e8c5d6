// Command bootstrap is the AWS Lambda custom runtime of an extract package:
// it points the package's link directory at the task root, then runs the
// packaged program on the object of each S3 event it receives.
//
// Its dependencies are fenced (see depcheck_test.go): it must stay small,
// static and free of the CLI, image and control-plane code.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

func main() {
	ctx := context.Background()
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		fmt.Fprintln(os.Stderr, "bootstrap: AWS_LAMBDA_RUNTIME_API is not set: this runs on AWS Lambda or under `extract invoke`")
		os.Exit(2)
	}
	h, err := start(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bootstrap: %v\n", err)
		if rerr := xruntime.ReportInitError(ctx, api, err); rerr != nil {
			fmt.Fprintf(os.Stderr, "bootstrap: %v\n", rerr)
		}
		os.Exit(1)
	}
	err = xruntime.Serve(ctx, api, h)
	fmt.Fprintf(os.Stderr, "bootstrap: %v\n", err)
	os.Exit(1)
}

func start(ctx context.Context) (*xruntime.Handler, error) {
	root, err := xruntime.TaskRoot()
	if err != nil {
		return nil, err
	}
	m, err := xruntime.LoadManifest(root)
	if err != nil {
		return nil, err
	}
	if err := xruntime.Setup(m, root); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// What a program leaves running when it exits becomes the
	// bootstrap's to kill, not init's.
	if err := xruntime.BecomeSubreaper(); err != nil {
		log.Warn("not a child subreaper: daemons a program starts outlive its run", "err", err)
	}
	return xruntime.NewHandler(ctx, m, root, xruntime.WithLogger(log), xruntime.WithProgramLog(os.Stderr))
}
