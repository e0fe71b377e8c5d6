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
func Destroy(ctx context.Context, function, bucket string, opts ...Option) (*DestroyResult, error) {
	o, err := makeDeployOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	if o.clients == nil {
		cfg, err := LoadAWSConfig(ctx, "", "")
		if err != nil {
			return nil, err
		}
		o.clients = NewClients(cfg)
	}
	c := o.clients
	res := &DestroyResult{FunctionName: function, Bucket: bucket, Changes: []string{}, DryRun: o.dryRun}
	change := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Changes = append(res.Changes, msg)
		if o.dryRun {
			o.log.Debug("would " + msg)
		} else {
			o.log.Debug(msg)
		}
	}

	// The function first: refuse before touching anything if it is not ours.
	fn, err := c.Lambda.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: &function})
	switch {
	case isCode(err, "ResourceNotFoundException"):
		fn = nil
	case err != nil:
		return res, wrapAWS(err, "reading function %q", function)
	case fn.Tags[ManagedByTag] != ManagedByValue:
		return res, &NotManagedError{Kind: "function", Name: function}
	}
	// A container image function's repository, for the images.
	var fnRepo string
	if fn != nil && fn.Code != nil && fn.Code.ImageUri != nil {
		fnRepo, _, _ = strings.Cut(*fn.Code.ImageUri, "@")
	}
	// Only the role deploy names after the function is a candidate: a role
	// given with --role may be another function's extract role.
	roleName := RoleName(function)

	// The notification rule.
	id := ruleID(function)
	nc, err := readNotification(ctx, c.S3, bucket)
	switch {
	case isCode(err, "NoSuchBucket"):
		o.log.Debug("trigger bucket does not exist", "bucket", bucket)
	case err != nil:
		return res, err
	default:
		if rest, removed := removeNotification(nc, id); removed {
			change("remove notification rule %s from bucket %s", id, bucket)
			if !o.dryRun {
				if err := writeNotification(ctx, c.S3, bucket, rest); err != nil {
					return res, err
				}
			}
		}
	}

	if fn != nil {
		// The permission.
		sid := statementID(bucket)
		found, _, err := readPermission(ctx, c.Lambda, function, permissionStatement{Sid: sid})
		if err != nil {
			return res, err
		}
		if found {
			change("remove permission %s from function %s", sid, function)
			if !o.dryRun {
				_, err := c.Lambda.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: &function, StatementId: &sid})
				if err != nil && !isCode(err, "ResourceNotFoundException") {
					return res, wrapAWS(err, "removing permission %q of function %q", sid, function)
				}
			}
		}
		// The function, all its versions and aliases.
		change("delete function %s", function)
		if !o.dryRun {
			_, err := c.Lambda.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: &function})
			if err != nil && !isCode(err, "ResourceNotFoundException") {
				return res, wrapAWS(err, "deleting function %q", function)
			}
		}
	}

	// The role, only when extract made it.
	if err := deleteRole(ctx, c.IAM, roleName, o.dryRun, change); err != nil {
		return res, err
	}

	// The code objects.
	if o.codeBucket != "" {
		if err := deleteCode(ctx, c.S3, o.codeBucket, "extract/"+function+"/", o.dryRun, change); err != nil {
			return res, err
		}
	}

	// The images.
	if !o.purgeImages {
		if fnRepo != "" {
			o.log.Info("the function's images stay in their repository: --purge-images removes them", "repository", fnRepo)
		}
		return res, nil
	}
	return res, purgeImages(ctx, c, o, function, fnRepo, change)
}

// purgeImages removes function's images from WithRepository's repository,
// else fnRepo (the function's), else the default ECR repository.
func purgeImages(ctx context.Context, c *Clients, o *deployOptions, function, fnRepo string, change func(string, ...any)) error {
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
		return purgeRegistry(ctx, repo, function, keychain(c, o), o.dryRun, change)
	}
	if c.ECR == nil {
		return fmt.Errorf("purging images from %s: the clients have no ECR client", repo)
	}
	if repo.region != c.Region {
		return fmt.Errorf("purging images from %s: it is in region %s and the clients in %s; pass --region %s", repo, repo.region, c.Region, repo.region)
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
