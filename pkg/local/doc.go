// Package local runs a Lambda package on this machine the way Lambda would:
// the local emulator behind `extract invoke`.
//
// [Invoke] takes a zip (unpacked safely: nothing lands outside its
// directory; its own bootstrap started with a Lambda-like environment) or a container image (flattened
// into a temporary root and started chrooted in a private mount namespace,
// as a non-root user; Linux and root only), serves it the Lambda Runtime
// API ([RuntimeAPI], on 127.0.0.1), sends one event and returns the
// answer. With [WithCSV] and no S3 endpoint configured, an in-process
// S3-compatible server ([S3]) holds the input and the outputs.
//
// The Runtime API's wire format (paths, headers, the error body) is
// internal/runtimeapi's, shared with the bootstrap's loop in pkg/runtime.
//
// Invoke needs Linux: a package's bootstrap and programs are Linux
// executables, contained with Linux namespaces. Elsewhere the package
// builds, and Invoke returns an [*UnsupportedError].
//
// The library is silent: pass an *slog.Logger ([WithLogger]) to see what
// it does.
package local
