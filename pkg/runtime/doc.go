// Package runtime is what runs on AWS Lambda: the bootstrap's loop that turns
// an S3 event into a run of the packaged program, streaming the object to the
// program and the program's output back to S3.
//
// It knows nothing of images or of the extract CLI; its only contract with
// the packager is the Manifest. Import it as xruntime where the standard
// library's runtime package is also used.
package runtime
