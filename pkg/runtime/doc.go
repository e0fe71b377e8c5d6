// Package runtime is what runs on AWS Lambda: the bootstrap's loop that turns
// an S3 event into a run of the packaged program, streaming the object to the
// program and the program's output back to S3.
//
// It knows nothing of images or of the extract CLI; its only contract with
// the packager is the Manifest. Import it as xruntime where the standard
// library's runtime package is also used.
//
// # At start (once per sandbox)
//
// LoadManifest reads extract.json from the task root and applies the
// defaults; Setup points Manifest.LinkDir at the task root (the bundled
// programs' PT_INTERP and #! lines lead there) and makes the writable copy
// of the WORKDIR when asked; NewHandler computes the program's environment
// (Environ: its container's, the image's ENV over the function's own
// variables, PATH and library directories mapped into the package, none of
// Lambda's runtime variables, AWS credentials only when the manifest says
// so). An error there is posted to the Runtime API's init error path
// (ReportInitError).
//
// # Per invocation
//
// Serve runs the Runtime API loop (2018-06-01). For each record, Handle
// skips keys outside Input.Prefix, not ending in Input.Suffix, or under
// Output.Prefix of the output bucket; otherwise it streams the object
// (GetObject) into the program's stdin (or a file under /tmp for "file"
// mode), runs the program with exec (argv exactly as in the manifest, its
// own process group, killed with its children KillMargin before the
// deadline), streams stdout to Output.Prefix + key without Input.Prefix +
// Output.Suffix with the S3 upload manager (8 MiB parts, bounded memory),
// and logs stderr line by line, prefixed with the key. The upload is
// completed only once the program has exited 0 and the input was read
// without error: at the end of stdout the body reader waits for the exit
// status and turns a failure into a read error, so the upload manager
// aborts its multipart upload (or never sends its PutObject). A retried
// event therefore writes the same object or nothing.
//
// # Size
//
// The bootstrap must stay under 10 MiB, static. Two choices keep it at
// about 8.6 MiB (amd64): the Runtime API loop is this package's own rather
// than aws-lambda-go's lambda.Start, whose net/rpc mode keeps every method
// of the S3 client alive through reflection (15 MB without the
// lambda.norpc build tag), and the S3 client is configured from the
// environment Lambda provides rather than by config.LoadDefaultConfig, which
// links the SSO, STS and IMDS clients (+1.8 MB).
package runtime
