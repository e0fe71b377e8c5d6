// Package lambda turns a container image into an AWS Lambda function.
//
// [Package] writes the self-contained deployment zip: a static Go bootstrap
// for the image's architecture, the manifest the bootstrap reads
// (extract.json, a [runtime.Manifest]) and the closure of the image's
// ENTRYPOINT program under rootfs/, with every bundled ELF program and script
// rewritten to start the bundled loader and interpreters, never the host's.
// The zip is deterministic: the same image and options give the same bytes,
// so its CodeSha256 tells whether a deployed function needs an update.
//
// Package [github.com/comingout/extract/pkg/deploy] deploys and removes
// the functions; package [github.com/comingout/extract/pkg/local] runs a
// package on this machine the way Lambda would.
//
// The library is silent: pass an *slog.Logger to options that take one to see
// what it does.
package lambda
