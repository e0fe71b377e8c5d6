// Package image reads Linux container images for extract: it opens an image
// from a registry, the Docker daemon, a docker-archive or an OCI layout
// (Open), flattens its layers into an index of the final filesystem in one
// streaming pass (BuildIndex), parses ELF program headers and "#!" lines
// (ParseELF, ParseScript), resolves the command the image runs and the
// closure of files it needs, and streams chosen files out of the layers in
// a second pass (Extract, WriteDir, WriteTar).
//
// Nothing in this package touches the host filesystem with image paths:
// every tar name and symlink target is resolved inside the image root held
// in memory. Files are written to the host only by WriteDir, below the
// directory it is given.
package image
