// Package demo holds the pieces `make demo` needs to tell the whole extract
// story on one machine, offline: the momentum image built without Docker in
// the layout examples/fortran-momentum/Dockerfile makes (BuildImage), a local
// registry to push it to (StartRegistry, Push), the S3 event S3 would send
// for an upload, built from the bucket's real notification configuration
// (Event), and the few S3 calls the demo makes against moto (NewS3,
// MakeBucket, PutFile, Get).
//
// The demo script, examples/fortran-momentum/demo.sh, drives these through
// the democtl command in internal/demo/cmd/democtl.
package demo
