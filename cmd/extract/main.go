// Command extract turns a Linux container image into an AWS Lambda function
// that runs the image's ENTRYPOINT program, unchanged, on every CSV uploaded
// to an S3 bucket.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := advised(newApp().RunContext(ctx, os.Args))
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "extract: %v\n", err)
		os.Exit(exitCode(err))
	}
}
