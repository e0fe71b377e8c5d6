package deploy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/comingout/extract/pkg/lambda"
)

// The errors a deploy or Destroy returns when it refuses to act, and the
// others callers may branch on. They say what is wrong in this package's
// terms; a command line adds which of its flags get past them.

// IsRefused reports whether err is a deploy or Destroy refusing to act
// because the request is unsafe or conflicts with what exists (overlapping
// or recursive trigger, a package manifest with invalid input or output
// settings, a function or role extract does not manage, code too large, a
// function of the other package type, an ECR repository in another
// region), as opposed to a failure talking to AWS. A *lambda.RecursionError
// that package returned, before any bucket was known, is an invalid
// setting, not a refusal.
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
	return errors.As(err, &o) || (errors.As(err, &r) && r.Bucket != "") || errors.As(err, &m) || errors.As(err, &n) ||
		errors.As(err, &d) || errors.As(err, &s) || errors.As(err, &p) || errors.As(err, &g)
}

// NotManagedError is returned when a function or role of the name extract
// would use exists but was not created by extract (it lacks the tag
// managed-by=extract): extract never takes over or deletes what it did not
// make. The way past it is another function name or, for the role, an
// existing role given with WithRoleARN.
type NotManagedError struct {
	Kind string // "function" or "role"
	Name string
}

func (e *NotManagedError) Error() string {
	return fmt.Sprintf("%s %q exists but was not created by extract (no tag %s=%s)", e.Kind, e.Name, ManagedByTag, ManagedByValue)
}

// DirectUploadError is returned when the zip is over the direct-upload
// limit and no code bucket was given (WithCodeBucket).
type DirectUploadError struct {
	Size, Limit int64
}

func (e *DirectUploadError) Error() string {
	return fmt.Sprintf("package is %s zipped, over the %s Lambda accepts in a direct upload, and no code bucket was given to upload it through S3",
		lambda.HumanSize(e.Size), lambda.HumanSize(e.Limit))
}

// PackageTypeError is returned when the function exists with the other
// package type: Lambda cannot turn a zip function into a container-image
// function or back. Destroy it first, deploy under another name, or deploy
// it in its current type.
type PackageTypeError struct {
	Function string
	// Current is the function's package type, Want the deploy's ("Zip" or
	// "Image").
	Current, Want string
}

func (e *PackageTypeError) Error() string {
	return fmt.Sprintf("function %q is %s function (PackageType %s) and this deploy is %s: Lambda cannot change the package type of an existing function",
		e.Function, packageTypeName(e.Current), e.Current, packageTypeName(e.Want))
}

// packageTypeName is "a zip" or "a container image".
func packageTypeName(t string) string {
	if t == "Image" {
		return "a container image"
	}
	return "a zip"
}

// RepositoryRegionError is returned when the image would go to an ECR
// repository in another region than the function's: Lambda pulls images
// only from ECR in the function's own region.
type RepositoryRegionError struct {
	Repository       string
	RepositoryRegion string
	Region           string
}

func (e *RepositoryRegionError) Error() string {
	return fmt.Sprintf("repository %s is in region %s, the function in %s: Lambda pulls container images only from ECR in the function's region",
		e.Repository, e.RepositoryRegion, e.Region)
}

// PurgeRegionError is returned when Destroy would purge images from an
// ECR repository in another region than its clients'.
type PurgeRegionError struct {
	Repository       string
	RepositoryRegion string
	// Region is the clients'.
	Region string
}

func (e *PurgeRegionError) Error() string {
	return fmt.Sprintf("purging images from %s: it is in region %s and the AWS clients in %s", e.Repository, e.RepositoryRegion, e.Region)
}

// OverlapError is returned when the trigger would overlap rules already in
// the bucket's notification configuration; S3 rejects such configurations
// and extract never edits rules it does not own. A trigger prefix or
// suffix disjoint from theirs gets past it.
type OverlapError struct {
	Bucket string
	// Trigger is the rule deploy wanted to add and Conflicts the existing
	// rules it overlaps, each described with its target and filter.
	Trigger   string
	Conflicts []string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("trigger %s would overlap %d existing notification rule(s) of bucket %q: %s; S3 rejects overlapping rules for the same event type (one prefix a prefix of the other and one suffix a suffix of the other)",
		e.Trigger, len(e.Conflicts), e.Bucket, strings.Join(e.Conflicts, "; "))
}

// ImagePackageError is returned when Image is asked for a zip
// (lambda.FormatZip) of an image that is already a Lambda image package:
// such an image deploys only as a container image.
type ImagePackageError struct {
	Ref string
}

func (e *ImagePackageError) Error() string {
	return fmt.Sprintf("%s is a Lambda image package: it deploys as a container image, not as a zip", e.Ref)
}

// ErrNoRegion is returned by LoadAWSConfig when neither the argument, the
// environment (AWS_REGION) nor the profile names a region.
var ErrNoRegion = errors.New("no AWS region: none given, and none in AWS_REGION or the profile")
