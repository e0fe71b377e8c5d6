package runtime

// ManifestPath is where the manifest lives inside a package, relative to the
// task root (LAMBDA_TASK_ROOT, /var/task on Lambda).
const ManifestPath = "extract.json"

// RootDir is the directory, relative to the task root, that holds the image's
// files at their image paths: /usr/bin/momentum in the image is
// rootfs/usr/bin/momentum in the package.
const RootDir = "rootfs"

// Package formats (Manifest.Format).
const (
	// FormatZip is a Lambda zip: the image's files under RootDir of the task
	// root, with loaders, "#!" lines and paths pointed into the bundle.
	FormatZip = "zip"
	// FormatImage is a Lambda container image: the image's files at their
	// original paths, the bootstrap and manifest in ImageDir.
	FormatImage = "image"
)

// ImageDir is where a container-image package keeps the bootstrap and the
// manifest: the image's ENTRYPOINT is ImageDir+"/bootstrap".
const ImageDir = "/opt/extract"

// Manifest is the contract between `extract package` (which writes it) and
// the bootstrap (which reads it at start). Paths in it are image paths
// (absolute, as inside the image) unless a field says otherwise.
type Manifest struct {
	// Version of the manifest format; the bootstrap refuses newer majors.
	Version int `json:"version"`
	// Format is FormatZip (or empty, as written before images existed) or
	// FormatImage: where the image's files are, RootDir under the task root
	// or their original paths.
	Format string `json:"format,omitempty"`
	// Tool is the version of extract that wrote the package.
	Tool string `json:"tool"`

	// Image is the reference the package was made from, Digest its manifest
	// digest and Platform "os/arch[/variant]".
	Image    string `json:"image"`
	Digest   string `json:"digest"`
	Platform string `json:"platform"`

	// Program is the image path of the file the kernel executes (an ELF
	// program or a script) and Args its full argv, Args[0] included, exactly
	// as the image's ENTRYPOINT+CMD gave it. "{input}" in Args is replaced by
	// the input file's path when Input.Mode is "file".
	Program string   `json:"program"`
	Args    []string `json:"args"`
	// Env is the image's ENV (K=V), with, in a zip, the closure's path
	// variables the packager adds (TZ, TZDIR, LOCPATH, SSL_CERT_FILE,
	// PERL5LIB, PYTHONPATH) and the values naming bundled files pointed
	// into the bundle. It is applied over the function's own variables;
	// the program sees none of those Lambda sets for the runtime (see
	// Environ). In a zip, PATH entries are mapped into the bundle by the
	// bootstrap; in an image, the program sees them as written.
	Env []string `json:"env,omitempty"`
	// PassAWSCredentials passes the function's AWS credentials, region and
	// endpoints to the program (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL
	// and AWS_ENDPOINT_URL_*), for a program that calls AWS itself. Without
	// it the program sees no AWS_* variable.
	PassAWSCredentials bool `json:"pass_aws_credentials,omitempty"`
	// WorkDir is the image's WORKDIR; WritableWorkDir asks for a writable copy
	// of it under /tmp (Lambda's task root is read-only).
	WorkDir         string `json:"workdir,omitempty"`
	WritableWorkDir bool   `json:"writable_workdir,omitempty"`
	// User is the image's USER, recorded for reference (Lambda chooses the uid).
	User string `json:"user,omitempty"`

	// LibraryPath lists the image directories holding the closure's shared
	// libraries, in search order; the bootstrap sets LD_LIBRARY_PATH to them,
	// mapped into the bundle, so the bundled loader never consults the
	// host's /etc/ld.so.cache.
	LibraryPath []string `json:"library_path,omitempty"`
	// LinkDir is the absolute path of the symlink the bootstrap creates at
	// start, pointing at the task root. Bundled ELF programs have their
	// PT_INTERP rewritten to LinkDir+"/"+a loader alias, and bundled scripts
	// their #! line rewritten under LinkDir, so the kernel starts the bundled
	// loader and interpreters, never the host's. Empty for packages with no
	// dynamic program or script.
	LinkDir string `json:"link_dir,omitempty"`

	Input  Input  `json:"input"`
	Output Output `json:"output"`
}

// Input says how an S3 object reaches the program.
type Input struct {
	// Mode is "stdin" (default: the object is streamed to the program's
	// stdin) or "file" (downloaded under /tmp; its path replaces "{input}").
	Mode string `json:"mode"`
	// Prefix is the trigger's key prefix; keys not under it are skipped,
	// and it is removed from the key to form the output key: input/day1.csv
	// → output/day1.csv. Empty means no prefix; `extract package` writes its
	// default "input/" explicitly.
	Prefix string `json:"prefix,omitempty"`
	// Suffix filters keys: keys not ending in it are skipped. Empty means
	// every key, as in the trigger's filter; it is always written, since
	// LoadManifest gives an absent suffix the default ".csv".
	Suffix string `json:"suffix"`
}

// Output says where the program's output goes: its stdout, the file that
// replaced OutputPlaceholder in Args, or the files of Dir.
type Output struct {
	// Bucket defaults to the input object's bucket.
	Bucket string `json:"bucket,omitempty"`
	// Prefix defaults to "output/"; keys under it are never processed. The
	// output key is Prefix + (input key without Input.Prefix) + Suffix.
	Prefix string `json:"prefix"`
	// Suffix is appended to the output key (default none).
	Suffix string `json:"suffix,omitempty"`
	// Stdout is what the program writes its output to: "file" (default),
	// a file under /tmp uploaded as it grows — runtimes such as
	// libgfortran buffer only on regular files — or "pipe", for a program
	// that must see a pipe.
	Stdout string `json:"stdout,omitempty"`
	// StdoutAlso keeps the program's stdout as <output key>.stdout
	// (StdoutSuffix) when Args hold OutputPlaceholder (whose file is then
	// the output) or Dir is set; without it that stdout goes to the log,
	// line by line. It is refused with neither.
	StdoutAlso bool `json:"stdout_also,omitempty"`
	// Dir is an absolute image path the program writes its output files
	// into, made writable under /tmp like a writable WORKDIR (it may be
	// the WORKDIR, or in a writable one); arguments naming it or a path under it are pointed
	// there. After a successful exit every regular file the run created or
	// changed in it is uploaded to Prefix + (input key without
	// Input.Prefix and Input.Suffix) + "/" + its path relative to Dir
	// (OutputDirPrefix), then OutputDirManifest beside them; symlinks are
	// not. stdout then goes to the log, as with OutputPlaceholder, and
	// nothing is written at the output key unless Args hold
	// OutputPlaceholder too. After each run the directory is put back as
	// the package has it.
	Dir string `json:"dir,omitempty"`
}

// OutputDirManifest is the object written last beside the files of an
// Output.Dir run: a consumer waits for it, never for a half-written set.
const OutputDirManifest = "_manifest.json"
