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
// Serve runs the Runtime API loop (2018-06-01) and gives each invocation's
// context its request ID. For each record, Handle skips keys outside
// Input.Prefix, not ending in Input.Suffix, or under Output.Prefix of the
// output bucket; otherwise it streams the object (GetObject, pinned to the
// event's ETag, resumed with ranged GETs if its body breaks) into the
// program's stdin (or a file under /tmp for "file" mode), runs the program
// with exec (argv as in the manifest, placeholders replaced, its own
// process group, killed with its children KillMargin before the deadline)
// and logs stderr line by line.
//
// What is uploaded depends on the manifest (outputs.go):
//
//   - by default stdout, streamed as it grows to OutputKey (Output.Prefix +
//     key without Input.Prefix + Output.Suffix) by the package's own
//     multipart uploader (upload.go: 8 MiB parts, buffers allocated once);
//   - with OutputPlaceholder in Args, the file that replaced it, uploaded
//     to OutputKey after the exit;
//   - with Output.Dir, every regular file the run created or changed there,
//     under OutputDirPrefix, then OutputDirManifest (an OutputManifest).
//
// With either of the last two, stdout goes to the log, or to OutputKey +
// StdoutSuffix with Output.StdoutAlso. Every upload completes only once
// the program has exited 0 and the input was read without error: at the
// end of stdout the body reader waits for the exit status and turns a
// failure into a read error, so the uploader aborts its multipart upload
// (or never sends its PutObject), and the files are uploaded only after
// the exit. When one of a run's several objects fails, the others are
// deleted. A retried event therefore writes the same objects or none.
//
// NewLogger writes Lambda's JSON log format when AWS_LAMBDA_LOG_FORMAT is
// JSON, text lines otherwise; WithLogFormat gives the program's lines the
// same format. Handle ends every invocation with one "invocation summary"
// line (bytes in and out, objects written, the program's time and the
// transfers', the exit status, resumed reads); a failed invocation's
// ErrorResponse carries the exit status and the last stderr lines.
// docs/ARCHITECTURE.md ("Output files and logs") has the key layout, the
// manifest's schema and examples of each line.
//
// # Size
//
// The bootstrap must stay under 10 MiB, static. Two choices keep it at
// about 8.8 MiB (9.2 MB, amd64, stripped): the Runtime API loop is this package's own rather
// than aws-lambda-go's lambda.Start, whose net/rpc mode keeps every method
// of the S3 client alive through reflection (15 MB without the
// lambda.norpc build tag), and the S3 client is configured from the
// environment Lambda provides rather than by config.LoadDefaultConfig, which
// links the SSO, STS and IMDS clients (+1.8 MB).
package runtime
