package deploy

import (
	"context"
	"fmt"
	"strings"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DestroyResult is what Destroy removed (or, in a dry run, would remove).
type DestroyResult struct {
	FunctionName string `json:"function_name"`
	Bucket       string `json:"bucket"`
	// Changes lists what was removed, in order; empty when there was
	// nothing to remove.
	Changes []string `json:"changes"`
	DryRun  bool     `json:"dry_run"`
	// ImagesKept is the repository of a container-image function whose
	// images stay there (no WithPurgeImages); empty otherwise.
	ImagesKept string `json:"-"`
}

// Destroy removes what a deploy created for function and bucket, and nothing
// else: the rule extract-NAME from the bucket's notification configuration
// (every other rule kept), the function's permission for the bucket, the
// function, its role when extract created it (tag managed-by=extract), with
// WithCodeBucket the code objects under extract/NAME/, and with
// WithPurgeImages the container images deploy pushed (see WithPurgeImages;
// the repository is WithRepository's, else the function's, else the
// default extract-NAME). What is already gone is skipped, so running it
// twice is fine. A function of that name not created by extract is a
// *NotManagedError and nothing is removed.
func Destroy(ctx context.Context, function, bucket string, opts ...DestroyOption) (*DestroyResult, error) {
	o, err := makeDestroyOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	c, err := o.clientsOrDefault(ctx)
	if err != nil {
		return nil, err
	}
	d := &destroyer{o: o, c: c, function: function, bucket: bucket,
		res: &DestroyResult{FunctionName: function, Bucket: bucket, Changes: []string{}, DryRun: o.dryRun}}
	if err := d.run(ctx); err != nil {
		return d.res, err
	}
	return d.res, nil
}

// destroyer holds one Destroy's state.
type destroyer struct {
	o        *destroyOptions
	c        *Clients
	function string
	bucket   string
	res      *DestroyResult
}

// change records one change and logs it at debug level (the caller prints
// the list).
func (d *destroyer) change(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.res.Changes = append(d.res.Changes, msg)
	if d.o.dryRun {
		d.o.log.Debug("would " + msg)
	} else {
		d.o.log.Debug(msg)
	}
}

// run removes, in order, the notification rule, the function's permission
// and the function, the role, the code objects and the images.
func (d *destroyer) run(ctx context.Context) error {
	// The function first: refuse before touching anything if it is not ours.
	fn, err := d.readFunction(ctx)
	if err != nil {
		return err
	}
	// A container image function's repository, for the images.
	var fnRepo string
	if fn != nil && fn.Code != nil && fn.Code.ImageUri != nil {
		fnRepo, _, _ = strings.Cut(*fn.Code.ImageUri, "@")
	}
	if err := d.removeRule(ctx); err != nil {
		return err
	}
	if fn != nil {
		if err := d.deleteFunction(ctx); err != nil {
			return err
		}
	}
	// Only the role deploy names after the function is a candidate: a role
	// given with WithRoleARN may be another function's extract role.
	if err := deleteRole(ctx, d.c.IAM, RoleName(d.function), d.o.dryRun, d.change); err != nil {
		return err
	}
	if d.o.codeBucket != "" {
		if err := deleteCode(ctx, d.c.S3, d.o.codeBucket, "extract/"+d.function+"/", d.o.dryRun, d.change); err != nil {
			return err
		}
	}
	if !d.o.purgeImages {
		if fnRepo != "" {
			d.res.ImagesKept = fnRepo
			d.o.log.Debug("the function's images stay in their repository", "repository", fnRepo)
		}
		return nil
	}
	return purgeImages(ctx, d.c, d.o, d.function, fnRepo, d.change)
}

// readFunction reads the function: nil when it does not exist, a
// *NotManagedError when extract did not create it.
func (d *destroyer) readFunction(ctx context.Context) (*awslambda.GetFunctionOutput, error) {
	fn, err := d.c.Lambda.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function})
	switch {
	case isCode(err, "ResourceNotFoundException"):
		return nil, nil
	case err != nil:
		return nil, wrapAWS(err, "reading function %q", d.function)
	case fn.Tags[ManagedByTag] != ManagedByValue:
		return nil, &NotManagedError{Kind: "function", Name: d.function}
	}
	return fn, nil
}

// removeRule removes the function's rule from the bucket's notification
// configuration, keeping every other rule.
func (d *destroyer) removeRule(ctx context.Context) error {
	id := ruleID(d.function)
	nc, err := readNotification(ctx, d.c.S3, d.bucket)
	switch {
	case isCode(err, "NoSuchBucket"):
		d.o.log.Debug("trigger bucket does not exist", "bucket", d.bucket)
		return nil
	case err != nil:
		return err
	}
	rest, removed := removeNotification(nc, id)
	if !removed {
		return nil
	}
	d.change("remove notification rule %s from bucket %s", id, d.bucket)
	if d.o.dryRun {
		return nil
	}
	return writeNotification(ctx, d.c.S3, d.bucket, rest)
}

// deleteFunction removes the function's permission for the bucket and
// deletes the function with all its versions and aliases.
func (d *destroyer) deleteFunction(ctx context.Context) error {
	sid := statementID(d.bucket)
	found, _, err := readPermission(ctx, d.c.Lambda, d.function, permissionStatement{Sid: sid})
	if err != nil {
		return err
	}
	if found {
		d.change("remove permission %s from function %s", sid, d.function)
		if !d.o.dryRun {
			_, err := d.c.Lambda.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: &d.function, StatementId: &sid})
			if err != nil && !isCode(err, "ResourceNotFoundException") {
				return wrapAWS(err, "removing permission %q of function %q", sid, d.function)
			}
		}
	}
	d.change("delete function %s", d.function)
	if d.o.dryRun {
		return nil
	}
	_, err = d.c.Lambda.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: &d.function})
	if err != nil && !isCode(err, "ResourceNotFoundException") {
		return wrapAWS(err, "deleting function %q", d.function)
	}
	return nil
}

// purgeImages removes function's images from WithRepository's repository,
// else fnRepo (the function's), else the default ECR repository.
func purgeImages(ctx context.Context, c *Clients, o *destroyOptions, function, fnRepo string, change func(string, ...any)) error {
	var (
		repo *repository
		err  error
	)
	switch {
	case o.repository != "":
		repo, err = parseRepository(o.repository)
	case fnRepo != "":
		repo, err = parseRepository(fnRepo)
	default:
		var id identity
		if id, err = callerIdentity(ctx, c); err == nil {
			repo, err = defaultRepository(id, function)
		}
	}
	if err != nil {
		return err
	}
	if !repo.ecr {
		return purgeRegistry(ctx, repo, function, keychain(c, o.log), o.dryRun, change)
	}
	if c.ECR == nil {
		return fmt.Errorf("purging images from %s: the clients have no ECR client", repo)
	}
	if repo.region != c.Region {
		return &PurgeRegionError{Repository: repo.String(), RepositoryRegion: repo.region, Region: c.Region}
	}
	return purgeECR(ctx, c.ECR, repo, function, o.dryRun, change)
}

// deleteCode deletes the objects under prefix in bucket.
func deleteCode(ctx context.Context, c S3API, bucket, prefix string, dryRun bool, change func(string, ...any)) error {
	var token *string
	for {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, ContinuationToken: token})
		if isCode(err, "NoSuchBucket") {
			return nil
		}
		if err != nil {
			return wrapAWS(err, "listing s3://%s/%s", bucket, prefix)
		}
		for _, obj := range out.Contents {
			key := deref(obj.Key)
			change("delete code object s3://%s/%s", bucket, key)
			if dryRun {
				continue
			}
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
				return wrapAWS(err, "deleting s3://%s/%s", bucket, key)
			}
		}
		if out.IsTruncated == nil || !*out.IsTruncated || out.NextContinuationToken == nil {
			return nil
		}
		token = out.NextContinuationToken
	}
}
