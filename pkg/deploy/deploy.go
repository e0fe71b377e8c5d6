package deploy

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// Option configures Deploy, Container and Destroy. Options
// that do not apply to Destroy (everything but WithClients,
// WithLogger, WithDryRun, WithCodeBucket, WithRepository and
// WithPurgeImages) are ignored by it, and WithPurgeImages by the deploys.
type Option func(*deployOptions) error

type deployOptions struct {
	clients    *Clients
	log        *slog.Logger
	role       string
	memory     int32
	timeout    int32
	ephemeral  int32
	env        map[string]string
	publish    bool
	alias      string
	codeBucket string
	limits     *CodeLimits
	dryRun     bool
	// repository is WithRepository's reference; purgeImages is
	// WithPurgeImages.
	repository  string
	purgeImages bool
	// format is how Image packages (WithFormat).
	format string
	// logFormat is WithLogFormat's.
	logFormat lambdatypes.LogFormat

	// Retry and wait settings; tests shorten them.
	roleRetryDelays []time.Duration
	conflictRetries int
	waitTimeout     time.Duration
	waitMinDelay    time.Duration
	sleep           func(context.Context, time.Duration) error
}

func makeDeployOptions(opts []Option) (*deployOptions, error) {
	o := &deployOptions{
		format:    lambda.FormatZip,
		logFormat: lambdatypes.LogFormatText,
		log:       slog.New(slog.DiscardHandler),
		memory:    512,
		timeout:   60,
		ephemeral: 512,
		// About 45 seconds in all: new IAM roles usually become assumable
		// by Lambda within ten.
		roleRetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		conflictRetries: 5,
		waitTimeout:     5 * time.Minute,
		sleep:           sleepCtx,
	}
	var errs []error
	for _, opt := range opts {
		if err := opt(o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithClients sets the AWS clients. The default loads the standard AWS
// configuration chain (LoadAWSConfig with no region or profile override).
func WithClients(c *Clients) Option {
	return func(o *deployOptions) error {
		if c == nil || c.Lambda == nil || c.IAM == nil || c.S3 == nil || c.STS == nil {
			return errors.New("WithClients: every client (Lambda, IAM, S3, STS) is required")
		}
		o.clients = c
		return nil
	}
}

// WithLogger sets the logger that reports each change and, at debug
// level, each read. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *deployOptions) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithRoleARN makes the function use an existing role instead of the role
// extract-NAME that deploy creates and maintains by default.
func WithRoleARN(arn string) Option {
	return func(o *deployOptions) error {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":role/") {
			return fmt.Errorf("role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", arn)
		}
		o.role = arn
		return nil
	}
}

// WithFunctionMemory sets the function's memory in MB, 128 to 10240 (default
// 512).
func WithFunctionMemory(mb int) Option {
	return func(o *deployOptions) error {
		if mb < 128 || mb > 10240 {
			return fmt.Errorf("memory %d MB is outside Lambda's 128 to 10240 MB", mb)
		}
		o.memory = int32(mb)
		return nil
	}
}

// WithFunctionTimeout sets how long one invocation may run, whole seconds
// from 1s to 900s (default 60s).
func WithFunctionTimeout(d time.Duration) Option {
	return func(o *deployOptions) error {
		if d < time.Second || d > 900*time.Second || d%time.Second != 0 {
			return fmt.Errorf("timeout %s is not a whole number of seconds from 1s to 900s", d)
		}
		o.timeout = int32(d / time.Second)
		return nil
	}
}

// WithEphemeralStorage sets the size of /tmp in MB, 512 to 10240 (default
// 512).
func WithEphemeralStorage(mb int) Option {
	return func(o *deployOptions) error {
		if mb < 512 || mb > 10240 {
			return fmt.Errorf("ephemeral storage %d MB is outside Lambda's 512 to 10240 MB", mb)
		}
		o.ephemeral = int32(mb)
		return nil
	}
}

var envKeyRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// reservedEnv are variables Lambda sets itself and refuses in a function's
// configuration.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// WithFunctionEnv sets the function's environment variables (default none;
// the image's ENV travels in the package's manifest). Keys must be valid
// Lambda variable names and not reserved by Lambda.
func WithFunctionEnv(env map[string]string) Option {
	return func(o *deployOptions) error {
		var errs []error
		for k := range env {
			switch {
			case !envKeyRE.MatchString(k):
				errs = append(errs, fmt.Errorf("environment variable name %q is not a letter followed by letters, digits and underscores", k))
			case reservedEnv[k]:
				errs = append(errs, fmt.Errorf("environment variable %q is reserved by Lambda", k))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.env = maps.Clone(env)
		return nil
	}
}

// WithPublish publishes a version when the code or configuration changed
// (or no version matches them yet). Default false: only $LATEST is updated.
func WithPublish(publish bool) Option {
	return func(o *deployOptions) error {
		o.publish = publish
		return nil
	}
}

var aliasRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// WithAlias points the alias name at the published version (with
// WithPublish) or at $LATEST, creating it when missing.
func WithAlias(name string) Option {
	return func(o *deployOptions) error {
		if !aliasRE.MatchString(name) || strings.Trim(name, "0123456789") == "" {
			return fmt.Errorf("alias %q must be 1 to 128 letters, digits, - or _, and not only digits", name)
		}
		o.alias = name
		return nil
	}
}

// WithCodeBucket uploads code too large for a direct upload to this bucket
// (in the function's region) as extract/NAME/<sha256 hex>.zip. Destroy
// deletes the objects under extract/NAME/ in it.
func WithCodeBucket(bucket string) Option {
	return func(o *deployOptions) error {
		if bucket == "" {
			return errors.New("WithCodeBucket: empty bucket name")
		}
		o.codeBucket = bucket
		return nil
	}
}

// CodeLimits are Lambda's code size limits in bytes.
type CodeLimits struct {
	// DirectUpload is the largest zip sent in the API request itself;
	// larger zips need a code bucket.
	DirectUpload int64
	// Unzipped is the largest the code may be once unpacked.
	Unzipped int64
}

// DefaultCodeLimits are Lambda's documented limits, used when
// GetAccountSettings is not allowed: 50 MB zipped, 250 MB unzipped.
var DefaultCodeLimits = CodeLimits{DirectUpload: lambda.MaxDirectUploadSize, Unzipped: lambda.MaxUnzippedSize}

// WithLimits sets the code size limits instead of asking GetAccountSettings
// (and falling back to DefaultCodeLimits).
func WithLimits(l CodeLimits) Option {
	return func(o *deployOptions) error {
		if l.DirectUpload <= 0 || l.Unzipped <= 0 {
			return fmt.Errorf("WithLimits: limits must be positive, got %+v", l)
		}
		o.limits = &l
		return nil
	}
}

// WithDryRun makes the deploys and Destroy read the current state and report the
// changes they would make, calling no API that changes anything.
func WithDryRun(dryRun bool) Option {
	return func(o *deployOptions) error {
		o.dryRun = dryRun
		return nil
	}
}

// WithFormat sets how Image packages the image: lambda.FormatZip (the
// default), lambda.FormatImage (a container image, deployed as Container
// does), or lambda.FormatAuto, the format lambda.Prepare picks for it (a zip unless the
// program needs files at their original paths or is too big for one; the
// CLI's default).
func WithFormat(format string) Option {
	return func(o *deployOptions) error {
		switch format {
		case lambda.FormatZip, lambda.FormatImage, lambda.FormatAuto:
			o.format = format
			return nil
		}
		return fmt.Errorf("format %q is not %s, %s or %s", format, lambda.FormatZip, lambda.FormatImage, lambda.FormatAuto)
	}
}

// Log formats of WithLogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// WithLogFormat sets the function's log format (its LoggingConfig):
// LogFormatText (the default), the lines as the bootstrap and the program
// write them, or LogFormatJSON, Lambda's JSON format, in which the
// bootstrap writes one JSON object per line (AWS_LAMBDA_LOG_FORMAT=JSON).
// A deploy sets it on every run, so a function deployed with JSON goes back
// to text when deployed without it.
func WithLogFormat(format string) Option {
	return func(o *deployOptions) error {
		switch format {
		case LogFormatText:
			o.logFormat = lambdatypes.LogFormatText
		case LogFormatJSON:
			o.logFormat = lambdatypes.LogFormatJson
		default:
			return fmt.Errorf("log format %q is not %s or %s", format, LogFormatText, LogFormatJSON)
		}
		return nil
	}
}

// Result is what a deploy did (or, in a dry run, would do).
type Result struct {
	FunctionName string `json:"function_name"`
	FunctionARN  string `json:"function_arn"`
	// Version is the published version, or "$LATEST".
	Version string `json:"version"`
	Alias   string `json:"alias,omitempty"`
	// CodeSha256 is the code's SHA-256 as Lambda reports it: the zip's in
	// base64, or a container image's manifest digest in hex.
	CodeSha256   string `json:"code_sha256"`
	RoleARN      string `json:"role_arn"`
	Architecture string `json:"architecture"`
	// PackageType is the function's: "Zip" or "Image".
	PackageType string `json:"package_type"`
	// ImageURI is a container image's REPOSITORY@sha256:DIGEST, the
	// function's ImageUri; empty for a zip.
	ImageURI string `json:"image_uri,omitempty"`
	// CodeLocation is "direct", the s3:// URL of the uploaded zip, or the
	// image URI.
	CodeLocation string `json:"code_location"`
	// FormatReason says why Image with lambda.FormatAuto chose the package
	// type; empty otherwise.
	FormatReason string  `json:"format_reason,omitempty"`
	Trigger      Trigger `json:"trigger"`
	// Changes lists what was changed, in order; empty when the deployment
	// was already up to date.
	Changes []string `json:"changes"`
	DryRun  bool     `json:"dry_run"`
}

// NotManagedError is returned when a function or role of the name extract
// would use exists but was not created by extract (it lacks the tag
// managed-by=extract): extract never takes over or deletes what it did not
// make.
type NotManagedError struct {
	Kind string // "function" or "role"
	Name string
}

func (e *NotManagedError) Error() string {
	if e.Kind == "role" {
		return fmt.Sprintf("role %q exists but was not created by extract (no tag %s=%s): pass --role with its ARN to use it as it is, or choose another --function name",
			e.Name, ManagedByTag, ManagedByValue)
	}
	return fmt.Sprintf("%s %q exists but was not created by extract (no tag %s=%s): choose another --function name, or tag it %s=%s to let extract manage it",
		e.Kind, e.Name, ManagedByTag, ManagedByValue, ManagedByTag, ManagedByValue)
}

// DirectUploadError is returned when the zip is over the direct-upload
// limit and no code bucket was given.
type DirectUploadError struct {
	Size, Limit int64
}

func (e *DirectUploadError) Error() string {
	return fmt.Sprintf("package is %s zipped, over the %s Lambda accepts in a direct upload: pass --code-bucket BUCKET (a bucket in the function's region) to upload it through S3",
		lambda.HumanSize(e.Size), lambda.HumanSize(e.Limit))
}

// IsRefused reports whether err is deploy or destroy refusing to act
// because the request is unsafe or conflicts with what exists (overlapping
// or recursive trigger, a package manifest with invalid input or output
// settings, a function or role extract does not manage, code too large, a
// function of the other package type, an ECR repository in another
// region), as opposed to a failure talking to AWS.
func IsRefused(err error) bool {
	var (
		o *OverlapError
		r *lambda.RecursionError
		m *lambda.ManifestError
		n *NotManagedError
		d *DirectUploadError
		s *lambda.SizeError
		p *PackageTypeError
		g *RepositoryRegionError
	)
	return errors.As(err, &o) || errors.As(err, &r) || errors.As(err, &m) || errors.As(err, &n) || errors.As(err, &d) || errors.As(err, &s) ||
		errors.As(err, &p) || errors.As(err, &g)
}

// pkgInfo is what deploy needs to know about a zip or, with image set, a
// container image.
type pkgInfo struct {
	r         io.ReaderAt
	size      int64
	unzipped  int64
	files     []lambda.FileSize
	sha256    []byte
	manifest  *xruntime.Manifest
	arch      lambdatypes.Architecture
	codeSha64 string // base64, as Lambda's CodeSha256

	image *imageInfo
}

// packageType is the Lambda package type of the code.
func (p *pkgInfo) packageType() lambdatypes.PackageType {
	if p.image != nil {
		return lambdatypes.PackageTypeImage
	}
	return lambdatypes.PackageTypeZip
}

// codeSha256 is the code's CodeSha256 as Lambda reports it.
func (p *pkgInfo) codeSha256() string {
	if p.image != nil {
		return p.image.digest.Hex
	}
	return p.codeSha64
}

func (p *pkgInfo) shaHex() string { return hex.EncodeToString(p.sha256) }

// readPackage reads the manifest, sizes and hash of a deployment zip.
func readPackage(r io.ReaderAt, size int64) (*pkgInfo, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("reading package zip: %w", err)
	}
	p := &pkgInfo{r: r, size: size}
	var manifest *zip.File
	hasBootstrap := false
	for _, f := range zr.File {
		p.unzipped += int64(f.UncompressedSize64)
		if !f.FileInfo().IsDir() {
			p.files = append(p.files, lambda.FileSize{Path: strings.TrimPrefix(f.Name, xruntime.RootDir), Size: int64(f.UncompressedSize64)})
		}
		switch f.Name {
		case xruntime.ManifestPath:
			manifest = f
		case "bootstrap":
			hasBootstrap = true
		}
	}
	if manifest == nil {
		return nil, fmt.Errorf("package zip has no %s: it was not made by extract package", xruntime.ManifestPath)
	}
	if !hasBootstrap {
		return nil, errors.New("package zip has no bootstrap at its root: Lambda's provided.al2023 runtime needs one")
	}
	rc, err := manifest.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", xruntime.ManifestPath, err)
	}
	defer rc.Close()
	var m xruntime.Manifest
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", xruntime.ManifestPath, err)
	}
	p.manifest = &m
	if p.arch, err = architecture(m.Platform); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, fmt.Errorf("hashing package zip: %w", err)
	}
	p.sha256 = h.Sum(nil)
	p.codeSha64 = base64.StdEncoding.EncodeToString(p.sha256)
	return p, nil
}

var functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// triggerBucketRE is what S3 has accepted as a bucket name: today's rules
// (validBucketName), and the looser ones older us-east-1 buckets were
// created under (upper case, "_", up to 255 characters). It keeps "*",
// "?" and "/" out of the role's resource ARNs.
var triggerBucketRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{3,255}$`)

func checkNames(function, bucket string) error {
	var errs []error
	if !functionNameRE.MatchString(function) {
		errs = append(errs, fmt.Errorf("function name %q must be 1 to 64 letters, digits, - or _", function))
	}
	switch {
	case bucket == "":
		errs = append(errs, errors.New("no trigger bucket"))
	case !triggerBucketRE.MatchString(bucket):
		errs = append(errs, fmt.Errorf("trigger bucket %q is not an S3 bucket name (at least 3 letters, digits, \".\", \"-\" or \"_\")", bucket))
	}
	return errors.Join(errs...)
}

// ZipFile deploys the package zip at path; see Zip.
func ZipFile(ctx context.Context, path, function, bucket string, opts ...Option) (*Result, error) {
	// Bad options and names are reported before the file is looked at.
	if _, err := makeDeployOptions(opts); err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening package: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening package: %w", err)
	}
	return Zip(ctx, f, st.Size(), function, bucket, opts...)
}

// Image packages img in WithFormat's format (pkgOpts, those of
// Package and lambda.PackageImage, set the trigger filter and output location
// recorded in the manifest) and deploys it: a zip, written to a temporary
// file removed afterwards, as Zip does; a container image as
// Container does. Package warnings are logged with WithLogger's
// logger.
func Image(ctx context.Context, img *image.Image, function, bucket string, pkgOpts []lambda.PackageOption, opts ...Option) (*Result, error) {
	o, err := makeDeployOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	if m, ok, err := lambda.PackagedImage(img); err != nil {
		return nil, err
	} else if ok {
		// Built by `package --format image`: deployed as it is.
		if o.format == lambda.FormatZip {
			return nil, fmt.Errorf("%s is a Lambda image package: it deploys as an image, not with --format zip", img.Ref)
		}
		arch, err := architecture(img.Platform.OS + "/" + img.Platform.Architecture)
		if err != nil {
			return nil, err
		}
		res, err := Container(ctx, ContainerImage{Image: img.V1(), Arch: string(arch), Manifest: *m}, function, bucket, opts...)
		if res != nil {
			res.FormatReason = "an image package already"
		}
		return res, err
	}
	format, reason := o.format, ""
	var pp *lambda.Prepared
	if format == lambda.FormatAuto {
		if pp, err = lambda.Prepare(ctx, img, pkgOpts...); err != nil {
			return nil, err
		}
		format, reason = pp.Format, pp.Reason // lambda.Prepare logs them
	}
	var res *Result
	if format == lambda.FormatImage {
		res, err = deployImagePackage(ctx, img, pp, function, bucket, pkgOpts, o, opts)
	} else {
		res, err = deployZipPackage(ctx, img, pp, function, bucket, pkgOpts, o, opts)
	}
	if res != nil {
		res.FormatReason = reason
	}
	return res, err
}

// deployZipPackage packages img (or the prepared pp) as a zip in a
// temporary directory and deploys it.
func deployZipPackage(ctx context.Context, img *image.Image, pp *lambda.Prepared, function, bucket string, pkgOpts []lambda.PackageOption, o *deployOptions, opts []Option) (*Result, error) {
	dir, err := os.MkdirTemp("", "extract-deploy-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory for the package: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, function+".zip")
	var pres *lambda.PackageResult
	if pp != nil {
		pres, err = pp.ZipFile(ctx, path)
	} else {
		pres, err = lambda.PackageFile(ctx, img, path, pkgOpts...)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range pres.Warnings {
		o.log.Warn(w.String())
	}
	o.log.Info("packaged", "image", img.Ref, "files", pres.Files, "zipped", lambda.HumanSize(pres.ZippedSize), "unzipped", lambda.HumanSize(pres.UnzippedSize), "arch", pres.Arch)
	return ZipFile(ctx, path, function, bucket, opts...)
}

// deployImagePackage builds img's container image (or the prepared pp's)
// and deploys it.
func deployImagePackage(ctx context.Context, img *image.Image, pp *lambda.Prepared, function, bucket string, pkgOpts []lambda.PackageOption, o *deployOptions, opts []Option) (*Result, error) {
	var (
		ires *lambda.ImageResult
		err  error
	)
	if pp != nil {
		ires, err = pp.Image(ctx)
	} else {
		ires, err = lambda.PackageImage(ctx, img, pkgOpts...)
	}
	if err != nil {
		return nil, err
	}
	defer ires.Close()
	for _, w := range ires.Warnings {
		o.log.Warn(w.String())
	}
	o.log.Info("packaged", "image", img.Ref, "shape", ires.Shape, "layers", ires.Layers, "compressed", lambda.HumanSize(ires.CompressedSize), "size", lambda.HumanSize(ires.Size), "arch", ires.Arch, "digest", ires.Digest)
	return Container(ctx, ContainerImage{Image: ires.Image, Arch: ires.Arch, Manifest: ires.Manifest}, function, bucket, opts...)
}

// Zip makes the Lambda function named function run the package zip (size
// bytes read from r) for every object created in bucket that matches the
// package's input filter (manifest Input.Prefix and Input.Suffix), and
// changes nothing that is already as wanted:
//
//   - the role extract-NAME (unless WithRoleARN) with a least-privilege
//     inline policy, tagged managed-by=extract;
//   - the function (provided.al2023, handler bootstrap, the package's
//     architecture), its code updated only when the zip's SHA-256 differs
//     from the function's CodeSha256 and its configuration only when it
//     differs; waits until it is Active and its last update Successful;
//   - optionally a published version and an alias;
//   - the permission for s3.amazonaws.com to invoke it from bucket;
//   - the rule extract-NAME in the bucket's notification configuration,
//     every other rule kept;
//   - when the function was deployed with another bucket before (its
//     policy has a statement extract-s3-OLD), that bucket's rule
//     extract-NAME for the function and the statement are removed: a
//     function has one trigger bucket.
//
// Zip refuses (see IsRefused) a manifest whose input or output settings
// extract package would not have written (*lambda.ManifestError), a trigger that
// would overlap another rule, outputs that would re-trigger the function, a
// function or role of the same name not created by extract, and code over
// the size limits; it checks all of these before changing anything.
func Zip(ctx context.Context, r io.ReaderAt, size int64, function, bucket string, opts ...Option) (*Result, error) {
	o, err := makeDeployOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	pkg, err := readPackage(r, size)
	if err != nil {
		return nil, err
	}
	return deployPackage(ctx, o, function, bucket, pkg)
}

// deployPackage deploys a read package (a zip or a container image) once
// its manifest's settings are checked again, as package checked them
// (whoever could edit the zip or image could edit them), and its trigger
// is known not to re-trigger the function. Both checks come before any
// AWS call.
func deployPackage(ctx context.Context, o *deployOptions, function, bucket string, pkg *pkgInfo) (*Result, error) {
	if err := lambda.CheckManifest(pkg.manifest); err != nil {
		return nil, err
	}
	if err := lambda.CheckRecursion(bucket, pkg.manifest); err != nil {
		return nil, err
	}
	if o.clients == nil {
		cfg, err := LoadAWSConfig(ctx, "", "")
		if err != nil {
			return nil, err
		}
		o.clients = NewClients(cfg)
	}
	d := newDeployer(o, function, bucket, pkg)
	if err := d.run(ctx); err != nil {
		return d.res, err
	}
	return d.res, nil
}

func newDeployer(o *deployOptions, function, bucket string, pkg *pkgInfo) *deployer {
	d := &deployer{o: o, c: o.clients, log: o.log, function: function, bucket: bucket, pkg: pkg}
	d.res = &Result{
		FunctionName: function,
		Version:      "$LATEST",
		Alias:        o.alias,
		CodeSha256:   pkg.codeSha256(),
		Architecture: string(pkg.arch),
		PackageType:  string(pkg.packageType()),
		CodeLocation: "direct",
		Trigger:      newTrigger(function, bucket, pkg.manifest.Input),
		Changes:      []string{},
		DryRun:       o.dryRun,
	}
	return d
}

// deployer holds one deployment's state.
type deployer struct {
	o        *deployOptions
	c        *Clients
	log      *slog.Logger
	function string
	bucket   string
	pkg      *pkgInfo
	id       identity
	res      *Result

	cur         *awslambda.GetFunctionOutput // nil when the function does not exist
	roleCreated bool
	codeChanged bool // code or configuration changed in this run
	// stale are the triggers a deploy with another bucket left, removed
	// once this deploy's trigger is set.
	stale []staleTrigger

	// A container image's repository (repoCreated when this run creates
	// it) and the function's ImageUri.
	repo        *repository
	repoCreated bool
	imageURI    string
}

// change records one change and logs it at debug level (the caller prints
// the list).
func (d *deployer) change(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.res.Changes = append(d.res.Changes, msg)
	if d.o.dryRun {
		d.log.Debug("would " + msg)
	} else {
		d.log.Debug(msg)
	}
}

func (d *deployer) run(ctx context.Context) error {
	var err error
	if d.id, err = callerIdentity(ctx, d.c); err != nil {
		return err
	}
	d.res.FunctionARN = fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", d.id.Partition, d.id.Region, d.id.Account, d.function)

	// Everything that can refuse is checked before anything changes.
	useS3 := false
	if d.pkg.image == nil {
		limits, err := d.limits(ctx)
		if err != nil {
			return err
		}
		if err := lambda.CheckUnzipped(d.pkg.unzipped, limits.Unzipped, d.pkg.files); err != nil {
			return err
		}
		useS3 = d.pkg.size > limits.DirectUpload
		if useS3 && d.o.codeBucket == "" {
			return &DirectUploadError{Size: d.pkg.size, Limit: limits.DirectUpload}
		}
	} else if err := d.resolveRepository(); err != nil {
		return err
	}
	if err := d.readFunction(ctx); err != nil {
		return err
	}
	if _, _, err := d.notification(ctx); err != nil {
		return err
	}
	if err := d.readStale(ctx); err != nil {
		return err
	}

	if err := d.ensureRole(ctx); err != nil {
		return err
	}
	if d.pkg.image != nil {
		if err := d.ensureRepository(ctx); err != nil {
			return err
		}
		if err := d.pushImage(ctx); err != nil {
			return err
		}
	}
	if err := d.ensureFunction(ctx, useS3); err != nil {
		return err
	}
	if err := d.ensureVersionAndAlias(ctx); err != nil {
		return err
	}
	if err := d.ensurePermission(ctx); err != nil {
		return err
	}
	if err := d.ensureNotification(ctx); err != nil {
		return err
	}
	return d.removeStale(ctx)
}

func callerIdentity(ctx context.Context, c *Clients) (identity, error) {
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return identity{}, wrapAWS(err, "finding the AWS account (sts:GetCallerIdentity)")
	}
	return identity{Account: deref(out.Account), Partition: partitionOf(deref(out.Arn)), Region: c.Region}, nil
}

// limits returns the code size limits: WithLimits, else the account's,
// else the documented defaults.
func (d *deployer) limits(ctx context.Context) (CodeLimits, error) {
	if d.o.limits != nil {
		return *d.o.limits, nil
	}
	out, err := d.c.Lambda.GetAccountSettings(ctx, &awslambda.GetAccountSettingsInput{})
	if err != nil {
		if ctx.Err() != nil {
			return CodeLimits{}, ctx.Err()
		}
		d.log.Debug("lambda:GetAccountSettings failed; using the documented code size limits", "err", err)
		return DefaultCodeLimits, nil
	}
	l := DefaultCodeLimits
	if out.AccountLimit != nil {
		if out.AccountLimit.CodeSizeZipped > 0 {
			l.DirectUpload = out.AccountLimit.CodeSizeZipped
		}
		if out.AccountLimit.CodeSizeUnzipped > 0 {
			l.Unzipped = out.AccountLimit.CodeSizeUnzipped
		}
	}
	return l, nil
}

// readFunction reads the current function, refusing one extract does not
// manage.
func (d *deployer) readFunction(ctx context.Context) error {
	out, err := d.c.Lambda.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function})
	if isCode(err, "ResourceNotFoundException") {
		d.log.Debug("function does not exist", "function", d.function)
		return nil
	}
	if err != nil {
		return wrapAWS(err, "reading function %q", d.function)
	}
	if out.Tags[ManagedByTag] != ManagedByValue {
		return &NotManagedError{Kind: "function", Name: d.function}
	}
	if out.Configuration == nil {
		return fmt.Errorf("reading function %q: no configuration in the response", d.function)
	}
	if cur, want := out.Configuration.PackageType, d.pkg.packageType(); cur != "" && cur != want {
		return &PackageTypeError{Function: d.function, Current: string(cur), Want: string(want)}
	}
	d.cur = out
	d.res.FunctionARN = deref(out.Configuration.FunctionArn)
	return nil
}

func (d *deployer) spec() functionSpec {
	return functionSpec{
		Name:             d.function,
		Role:             d.res.RoleARN,
		Architecture:     d.pkg.arch,
		MemorySize:       d.o.memory,
		Timeout:          d.o.timeout,
		EphemeralStorage: d.o.ephemeral,
		Env:              d.o.env,
		LogFormat:        d.o.logFormat,
		Image:            d.pkg.image != nil,
	}
}

// code returns the FunctionCode for the package, uploading it to the code
// bucket first when useS3 (unless the object is already there); for a
// container image, its URI (pushed already).
func (d *deployer) code(ctx context.Context, useS3 bool) (*lambdatypes.FunctionCode, error) {
	if d.pkg.image != nil {
		return &lambdatypes.FunctionCode{ImageUri: aws.String(d.imageURI)}, nil
	}
	if !useS3 {
		b := make([]byte, d.pkg.size)
		if n, err := d.pkg.r.ReadAt(b, 0); int64(n) != d.pkg.size {
			return nil, fmt.Errorf("reading package zip: read %d of %d bytes: %w", n, d.pkg.size, err)
		}
		return &lambdatypes.FunctionCode{ZipFile: b}, nil
	}
	key := fmt.Sprintf("extract/%s/%s.zip", d.function, d.pkg.shaHex())
	d.res.CodeLocation = "s3://" + d.o.codeBucket + "/" + key
	code := &lambdatypes.FunctionCode{S3Bucket: &d.o.codeBucket, S3Key: &key}
	head, err := d.c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.o.codeBucket, Key: &key})
	if err == nil && deref(head.ContentLength) == d.pkg.size {
		d.log.Debug("code already in the code bucket", "url", d.res.CodeLocation)
		return code, nil
	}
	if err != nil && !isCode(err, "NotFound", "NoSuchKey") {
		return nil, wrapAWS(err, "checking %s", d.res.CodeLocation)
	}
	d.change("upload code to %s", d.res.CodeLocation)
	if d.o.dryRun {
		return code, nil
	}
	d.log.Info("uploading code", "url", d.res.CodeLocation, "size", lambda.HumanSize(d.pkg.size))
	_, err = d.c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &d.o.codeBucket,
		Key:           &key,
		Body:          io.NewSectionReader(d.pkg.r, 0, d.pkg.size),
		ContentLength: aws.Int64(d.pkg.size),
		ContentType:   aws.String("application/zip"),
	})
	if err != nil {
		return nil, wrapAWS(err, "uploading code to %s", d.res.CodeLocation)
	}
	return code, nil
}

func (d *deployer) ensureFunction(ctx context.Context, useS3 bool) error {
	spec := d.spec()
	if d.cur == nil {
		code, err := d.code(ctx, useS3)
		if err != nil {
			return err
		}
		logs := ""
		if spec.LogFormat != lambdatypes.LogFormatText {
			logs = ", log format " + string(spec.LogFormat)
		}
		if spec.Image {
			d.change("create function %s (image %s, %s, %d MB, %ds%s)", d.function, d.imageURI, spec.Architecture, spec.MemorySize, spec.Timeout, logs)
		} else {
			d.change("create function %s (%s, %d MB, %ds%s)", d.function, spec.Architecture, spec.MemorySize, spec.Timeout, logs)
		}
		d.codeChanged = true
		if d.o.dryRun {
			return nil
		}
		in := &awslambda.CreateFunctionInput{
			FunctionName:     &d.function,
			Role:             &spec.Role,
			Architectures:    []lambdatypes.Architecture{spec.Architecture},
			Code:             code,
			MemorySize:       &spec.MemorySize,
			Timeout:          &spec.Timeout,
			EphemeralStorage: &lambdatypes.EphemeralStorage{Size: &spec.EphemeralStorage},
			PackageType:      d.pkg.packageType(),
			LoggingConfig:    &lambdatypes.LoggingConfig{LogFormat: spec.LogFormat},
			Description:      aws.String(description(d.pkg.manifest)),
			Tags:             map[string]string{ManagedByTag: ManagedByValue},
		}
		if !spec.Image { // an image's ENTRYPOINT is the bootstrap
			in.Runtime, in.Handler = lambdatypes.RuntimeProvidedal2023, aws.String("bootstrap")
		}
		if len(spec.Env) > 0 {
			in.Environment = &lambdatypes.Environment{Variables: spec.Env}
		}
		var out *awslambda.CreateFunctionOutput
		err = d.retryRole(ctx, func() error {
			var err error
			out, err = d.c.Lambda.CreateFunction(ctx, in)
			return err
		})
		if err != nil {
			return wrapAWS(err, "creating function %q", d.function)
		}
		d.res.FunctionARN = deref(out.FunctionArn)
		if err := d.waitActive(ctx); err != nil {
			return err
		}
		return nil
	}

	cur := d.cur.Configuration
	curArch := lambdatypes.ArchitectureX8664
	if len(cur.Architectures) > 0 {
		curArch = cur.Architectures[0]
	}
	codeDiffers := deref(cur.CodeSha256) != d.pkg.codeSha64
	what := fmt.Sprintf("CodeSha256 %s → %s", orNone(deref(cur.CodeSha256)), d.pkg.codeSha64)
	if spec.Image {
		// The ImageUri deploy set pins the digest: compare that. (Lambda's
		// CodeSha256 of an image is its digest, but emulators differ.)
		var curURI string
		if d.cur.Code != nil {
			curURI = deref(d.cur.Code.ImageUri)
		}
		codeDiffers = curURI != d.imageURI
		what = fmt.Sprintf("image %s → %s", orNone(curURI), d.imageURI)
	}
	if codeDiffers || curArch != spec.Architecture {
		code, err := d.code(ctx, useS3)
		if err != nil {
			return err
		}
		if curArch != spec.Architecture {
			what += fmt.Sprintf(", architecture %s → %s", curArch, spec.Architecture)
		}
		d.change("update function code (%s)", what)
		d.codeChanged = true
		if !d.o.dryRun {
			in := &awslambda.UpdateFunctionCodeInput{
				FunctionName:  &d.function,
				ZipFile:       code.ZipFile,
				S3Bucket:      code.S3Bucket,
				S3Key:         code.S3Key,
				ImageUri:      code.ImageUri,
				Architectures: []lambdatypes.Architecture{spec.Architecture},
			}
			err := d.retryConflict(ctx, func() error {
				_, err := d.c.Lambda.UpdateFunctionCode(ctx, in)
				return err
			})
			if err != nil {
				return wrapAWS(err, "updating the code of function %q", d.function)
			}
			if err := d.waitUpdated(ctx); err != nil {
				return err
			}
		}
	}
	if diffs := configChanges(cur, spec); len(diffs) > 0 {
		d.change("update function configuration: %s", strings.Join(diffs, ", "))
		d.codeChanged = true
		if !d.o.dryRun {
			env := spec.Env
			if env == nil {
				env = map[string]string{}
			}
			in := &awslambda.UpdateFunctionConfigurationInput{
				FunctionName:     &d.function,
				Role:             &spec.Role,
				MemorySize:       &spec.MemorySize,
				Timeout:          &spec.Timeout,
				EphemeralStorage: &lambdatypes.EphemeralStorage{Size: &spec.EphemeralStorage},
				Environment:      &lambdatypes.Environment{Variables: env},
				LoggingConfig:    &lambdatypes.LoggingConfig{LogFormat: spec.LogFormat},
			}
			if !spec.Image {
				in.Runtime, in.Handler = lambdatypes.RuntimeProvidedal2023, aws.String("bootstrap")
			}
			err := d.retryConflict(ctx, func() error {
				return d.retryRole(ctx, func() error {
					_, err := d.c.Lambda.UpdateFunctionConfiguration(ctx, in)
					return err
				})
			})
			if err != nil {
				return wrapAWS(err, "updating the configuration of function %q", d.function)
			}
			if err := d.waitUpdated(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// description is the function's description: where it came from.
func description(m *xruntime.Manifest) string {
	s := "extract: " + m.Image
	if m.Digest != "" {
		s += "@" + m.Digest
	}
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// isRoleNotAssumable reports whether err is Lambda saying a (fresh) role
// cannot be assumed yet: IAM is eventually consistent.
func isRoleNotAssumable(err error) bool {
	return isCode(err, "InvalidParameterValueException") &&
		strings.Contains(strings.ToLower(errorMessage(err)), "cannot be assumed")
}

// retryRole runs call, retrying with bounded backoff only while it fails
// because the role cannot be assumed yet.
func (d *deployer) retryRole(ctx context.Context, call func() error) error {
	err := call()
	for _, delay := range d.o.roleRetryDelays {
		if !isRoleNotAssumable(err) {
			return err
		}
		d.log.Info("role not assumable by Lambda yet (IAM is eventually consistent); retrying", "in", delay)
		if err := d.o.sleep(ctx, delay); err != nil {
			return err
		}
		err = call()
	}
	if isRoleNotAssumable(err) {
		return fmt.Errorf("role %q still cannot be assumed by Lambda after %d retries; check its trust policy allows lambda.amazonaws.com: %w",
			d.res.RoleARN, len(d.o.roleRetryDelays), err)
	}
	return err
}

// isUpdateInProgress reports whether err is Lambda refusing a change while
// another update of the function is in progress.
func isUpdateInProgress(err error) bool {
	return isCode(err, "ResourceConflictException") &&
		!strings.Contains(strings.ToLower(errorMessage(err)), "already exists")
}

// retryConflict runs call; while it fails because an update is in progress,
// it waits for the function's update to finish and tries again, at most
// conflictRetries times.
func (d *deployer) retryConflict(ctx context.Context, call func() error) error {
	err := call()
	for i := 0; i < d.o.conflictRetries && isUpdateInProgress(err); i++ {
		d.log.Info("another update of the function is in progress; waiting for it", "function", d.function)
		if werr := d.waitUpdated(ctx); werr != nil {
			return werr
		}
		err = call()
	}
	return err
}

func (d *deployer) waitActive(ctx context.Context) error {
	w := awslambda.NewFunctionActiveV2Waiter(d.c.Lambda, func(wo *awslambda.FunctionActiveV2WaiterOptions) {
		if d.o.waitMinDelay > 0 {
			wo.MinDelay = d.o.waitMinDelay
		}
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function}, d.o.waitTimeout); err != nil {
		return wrapAWS(err, "waiting for function %q to become Active", d.function)
	}
	return nil
}

func (d *deployer) waitUpdated(ctx context.Context) error {
	w := awslambda.NewFunctionUpdatedV2Waiter(d.c.Lambda, func(wo *awslambda.FunctionUpdatedV2WaiterOptions) {
		if d.o.waitMinDelay > 0 {
			wo.MinDelay = d.o.waitMinDelay
		}
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function}, d.o.waitTimeout); err != nil {
		return wrapAWS(err, "waiting for the update of function %q to succeed", d.function)
	}
	return nil
}

// ensureVersionAndAlias publishes a version (WithPublish) when no published
// version has the current code and configuration, and points the alias
// (WithAlias) at it.
func (d *deployer) ensureVersionAndAlias(ctx context.Context) error {
	if d.o.publish {
		if err := d.ensureVersion(ctx); err != nil {
			return err
		}
	}
	if d.o.alias == "" {
		return nil
	}
	target := d.res.Version
	if d.o.dryRun && d.cur == nil {
		d.change("create alias %s → %s", d.o.alias, target)
		return nil
	}
	cur, err := d.c.Lambda.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: &d.function, Name: &d.o.alias})
	switch {
	case isCode(err, "ResourceNotFoundException"):
		d.change("create alias %s → %s", d.o.alias, target)
		if d.o.dryRun {
			return nil
		}
		_, err = d.c.Lambda.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: &d.function, Name: &d.o.alias, FunctionVersion: &target})
		return wrapAWS(err, "creating alias %q", d.o.alias)
	case err != nil:
		return wrapAWS(err, "reading alias %q", d.o.alias)
	case deref(cur.FunctionVersion) != target:
		d.change("update alias %s: %s → %s", d.o.alias, deref(cur.FunctionVersion), target)
		if d.o.dryRun {
			return nil
		}
		_, err = d.c.Lambda.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: &d.function, Name: &d.o.alias, FunctionVersion: &target})
		return wrapAWS(err, "updating alias %q", d.o.alias)
	}
	return nil
}

func (d *deployer) ensureVersion(ctx context.Context) error {
	if d.o.dryRun && d.codeChanged {
		d.change("publish a new version")
		d.res.Version = "(new version)"
		return nil
	}
	latest, err := d.c.Lambda.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function})
	if err != nil {
		return wrapAWS(err, "reading function %q", d.function)
	}
	// The newest published version that matches $LATEST, if any.
	var newest *lambdatypes.FunctionConfiguration
	var newestN int64 = -1
	var marker *string
	for {
		out, err := d.c.Lambda.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: &d.function, Marker: marker})
		if err != nil {
			return wrapAWS(err, "listing the versions of function %q", d.function)
		}
		for i := range out.Versions {
			v := &out.Versions[i]
			var n int64
			if _, err := fmt.Sscanf(deref(v.Version), "%d", &n); err != nil {
				continue // $LATEST
			}
			if n > newestN {
				newest, newestN = v, n
			}
		}
		if out.NextMarker == nil || *out.NextMarker == "" {
			break
		}
		marker = out.NextMarker
	}
	if newest != nil && !d.codeChanged && deref(newest.CodeSha256) == deref(latest.Configuration.CodeSha256) &&
		len(configChanges(newest, d.spec())) == 0 {
		d.res.Version = deref(newest.Version)
		return nil
	}
	d.change("publish a new version")
	if d.o.dryRun {
		d.res.Version = "(new version)"
		return nil
	}
	var out *awslambda.PublishVersionOutput
	err = d.retryConflict(ctx, func() error {
		var err error
		out, err = d.c.Lambda.PublishVersion(ctx, &awslambda.PublishVersionInput{
			FunctionName: &d.function,
			CodeSha256:   latest.Configuration.CodeSha256,
		})
		return err
	})
	if err != nil {
		return wrapAWS(err, "publishing a version of function %q", d.function)
	}
	d.res.Version = deref(out.Version)
	d.res.Changes[len(d.res.Changes)-1] = "publish version " + d.res.Version
	return nil
}
