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
// TaskRoot finds the package; LoadManifest reads extract.json there and
// applies the defaults; Setup points Manifest.LinkDir at the task root (the
// bundled programs' PT_INTERP and #! lines lead there) and makes the
// writable copies under the temporary directory: of the WORKDIR when the
// manifest asks for one, when the package has none or when it is
// Output.Dir, and of Output.Dir. BecomeSubreaper makes the bootstrap the
// parent of whatever a program leaves running, so that it can be killed.
// NewHandler computes the program's environment (Environ: its container's,
// the image's ENV over the function's own variables, PATH and library
// directories mapped into the package, none of Lambda's runtime variables,
// AWS credentials only when the manifest says so). An error there is posted
// to the Runtime API's init error path (ReportInitError).
//
// # Per invocation
//
// Serve runs the Runtime API loop (2018-06-01) and gives each invocation's
// context its request ID and deadline. For each record, Handle (handler.go)
// skips keys outside Input.Prefix, not ending in Input.Suffix, or under
// Output.Prefix of the output bucket. Otherwise one run of the program
// (run.go) streams the object (input.go: GetObject pinned to the event's
// ETag and version, resumed with ranged GETs of that same version if its
// body breaks, ErrInputChanged if the object was replaced) into the
// program's stdin, or downloads it first to a file of its own for "file"
// mode. It runs the program with exec: argv as in the manifest,
// placeholders replaced, in a process group of its own. That group is
// killed KillMargin before the deadline. After the exit, what is left of
// the group and what the program started elsewhere (daemons, found as the
// subreaper's children) are killed too, and a daemon that still holds
// stdout open does not hold up the run. Stderr is logged line by line, its
// last lines kept for the error.
//
// The program's stdout is by default a file in the temporary directory,
// read behind the program as it grows (spool_linux.go: some runtimes
// buffer only on regular files); what has been read is punched out of the
// file, and the program is stopped while too much is unread. With
// Output.Stdout "pipe", and off Linux, it is a pipe.
//
// What is uploaded depends on the manifest (outputs.go, outdir.go):
//
//   - by default stdout, streamed as it grows to OutputKey (Output.Prefix +
//     key without Input.Prefix + Output.Suffix) by the package's own
//     multipart uploader (upload.go: 8 MiB parts by default, buffers
//     allocated once and reused);
//   - with OutputPlaceholder in Args, the file that replaced it, uploaded
//     to OutputKey after the exit;
//   - with Output.Dir, every regular file the run created or changed there,
//     under OutputDirPrefix, then OutputDirManifest (an OutputManifest);
//     the directory is then put back as it was before the run.
//
// With either of the last two, stdout goes to the log, or to OutputKey +
// StdoutSuffix with Output.StdoutAlso. Every upload completes only once
// the program has exited 0 and the input was read without error: at the
// end of stdout the body reader waits for the exit status and turns a
// failure into a read error, so the uploader aborts its multipart upload
// (or never sends its PutObject), and the files are uploaded only after
// the exit. When one of a run's several objects fails, the others are
// deleted. A retried event therefore writes the same objects or none. The
// error of a run whose program failed with the temporary directory
// (nearly) full or with stderr lines saying a write found no space, or
// that exited 0 on a full one when its files are the output, wraps
// ErrStorageFull.
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
// about 8.8 MiB (9.2 MB, amd64, stripped): the Runtime API loop is this
// package's own rather than aws-lambda-go's lambda.Start, whose net/rpc
// mode keeps every method of the S3 client alive through reflection (15 MB
// without the lambda.norpc build tag), and the S3 client is configured
// from the environment Lambda provides rather than by
// config.LoadDefaultConfig, which links the SSO, STS and IMDS clients
// (+1.8 MB).
package runtime
