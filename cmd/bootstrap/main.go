// Command bootstrap is the AWS Lambda custom runtime of an extract package:
// it points the package's link directory at the task root, then runs the
// packaged program on the object of each S3 event it receives.
//
// It logs to stderr, the function's log: one JSON object per line when
// AWS_LAMBDA_LOG_FORMAT is JSON (the function's LogFormat), text lines
// otherwise (see xruntime.NewLogger).
//
// Its dependencies are fenced (see depcheck_test.go): it must stay small,
// static and free of the CLI, image and control-plane code.
package main

import (
	"context"
	"log/slog"
	"os"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

func main() {
	ctx := context.Background()
	format := os.Getenv("AWS_LAMBDA_LOG_FORMAT")
	log := xruntime.NewLogger(os.Stderr, format)
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		log.Error("bootstrap: AWS_LAMBDA_RUNTIME_API is not set: this runs on AWS Lambda or under `extract invoke`")
		os.Exit(2)
	}
	h, err := start(ctx, log, format)
	if err != nil {
		log.Error("bootstrap: " + err.Error())
		if rerr := xruntime.ReportInitError(ctx, api, err); rerr != nil {
			log.Error("bootstrap: " + rerr.Error())
		}
		os.Exit(1)
	}
	err = xruntime.Serve(ctx, api, h)
	log.Error("bootstrap: " + err.Error())
	os.Exit(1)
}

func start(ctx context.Context, log *slog.Logger, format string) (*xruntime.Handler, error) {
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
	// What a program leaves running when it exits becomes the
	// bootstrap's to kill, not init's.
	if err := xruntime.BecomeSubreaper(); err != nil {
		log.Warn("not a child subreaper: daemons a program starts outlive its run", "err", err)
	}
	return xruntime.NewHandler(ctx, m, root, xruntime.WithLogger(log), xruntime.WithProgramLog(os.Stderr), xruntime.WithLogFormat(format))
}
