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
	"os"
	"path/filepath"
	"regexp"
	"strings"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

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
		return nil, fmt.Errorf("package zip has no %s: it was not packaged by extract", xruntime.ManifestPath)
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
// lambda.Package and lambda.PackageImage, set the trigger filter and output
// location recorded in the manifest) and deploys it: a zip, written to a
// temporary file removed afterwards, as Zip does; a container image as
// Container does. An image lambda.PackageImage made is deployed as it is
// (asked for a zip, it is an *ImagePackageError). Package warnings are
// logged with WithLogger's logger.
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
		// Built by lambda.PackageImage: deployed as it is.
		if o.format == lambda.FormatZip {
			return nil, &ImagePackageError{Ref: img.Ref}
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
		o.warn(w)
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
		o.warn(w)
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
// package would not have written (*lambda.ManifestError), a trigger that
// would overlap another rule (*OverlapError), outputs that would re-trigger
// the function (*lambda.RecursionError), a function or role of the same
// name not created by extract (*NotManagedError), and code over the size
// limits (*lambda.SizeError, *DirectUploadError); it checks all of these
// before changing anything.
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
	if _, err := o.clientsOrDefault(ctx); err != nil {
		return nil, err
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
