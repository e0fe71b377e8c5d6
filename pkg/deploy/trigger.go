package deploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// readNotification returns the bucket's whole notification configuration.
func readNotification(ctx context.Context, c S3API, bucket string) (*s3types.NotificationConfiguration, error) {
	out, err := c.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: &bucket})
	if err != nil {
		return nil, wrapAWS(err, "reading the notification configuration of bucket %q", bucket)
	}
	return &s3types.NotificationConfiguration{
		TopicConfigurations:          out.TopicConfigurations,
		QueueConfigurations:          out.QueueConfigurations,
		LambdaFunctionConfigurations: out.LambdaFunctionConfigurations,
		EventBridgeConfiguration:     out.EventBridgeConfiguration,
	}, nil
}

// writeNotification replaces the bucket's notification configuration.
func writeNotification(ctx context.Context, c S3API, bucket string, nc *s3types.NotificationConfiguration) error {
	_, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket:                    &bucket,
		NotificationConfiguration: nc,
	})
	return wrapAWS(err, "writing the notification configuration of bucket %q", bucket)
}

// notification reads the bucket's notification configuration and merges
// the trigger into it; an overlap is an *OverlapError.
func (d *deployer) notification(ctx context.Context) (*s3types.NotificationConfiguration, bool, error) {
	nc, err := readNotification(ctx, d.c.S3, d.bucket)
	if err != nil {
		return nil, false, err
	}
	return mergeNotification(nc, d.res.Trigger, d.res.FunctionARN)
}

// ensureNotification writes the merged notification configuration when it
// differs from the bucket's.
func (d *deployer) ensureNotification(ctx context.Context) error {
	merged, changed, err := d.notification(ctx)
	if err != nil || !changed {
		return err
	}
	t := d.res.Trigger
	d.change("set notification rule %s on bucket %s (%s, prefix %q, suffix %q → %s)", t.ID, t.Bucket, triggerEvent, t.Prefix, t.Suffix, d.function)
	if d.o.dryRun {
		return nil
	}
	return writeNotification(ctx, d.c.S3, d.bucket, merged)
}

// wantPermission is the statement that lets S3 invoke the function for the
// trigger bucket.
func (d *deployer) wantPermission() permissionStatement {
	return permissionStatement{
		Sid:       d.res.Trigger.StatementID,
		SourceARN: fmt.Sprintf("arn:%s:s3:::%s", d.id.Partition, d.bucket),
		Account:   d.id.Account,
	}
}

// readPermission looks for want's statement in the function's policy. A
// missing function or policy has no statement.
func readPermission(ctx context.Context, c LambdaAPI, function string, want permissionStatement) (found, matches bool, err error) {
	out, err := c.GetPolicy(ctx, &awslambda.GetPolicyInput{FunctionName: &function})
	if isCode(err, "ResourceNotFoundException") {
		return false, false, nil
	}
	if err != nil {
		return false, false, wrapAWS(err, "reading the policy of function %q", function)
	}
	return findStatement(deref(out.Policy), want)
}

// ensurePermission adds the permission for s3.amazonaws.com to invoke the
// function from the trigger bucket; a statement with our id that grants
// something else is replaced. "Already exists" from AddPermission is
// accepted only when the statement then read back is the one wanted.
func (d *deployer) ensurePermission(ctx context.Context) error {
	want := d.wantPermission()
	found, matches, err := readPermission(ctx, d.c.Lambda, d.function, want)
	if err != nil {
		return err
	}
	if matches {
		return nil
	}
	if found {
		d.change("replace permission %s (s3.amazonaws.com may invoke %s for %s in account %s)", want.Sid, d.function, want.SourceARN, want.Account)
		if d.o.dryRun {
			return nil
		}
		_, err := d.c.Lambda.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: &d.function, StatementId: &want.Sid})
		if err != nil && !isCode(err, "ResourceNotFoundException") {
			return wrapAWS(err, "removing the outdated permission %q of function %q", want.Sid, d.function)
		}
	} else {
		d.change("add permission %s (s3.amazonaws.com may invoke %s for %s in account %s)", want.Sid, d.function, want.SourceARN, want.Account)
		if d.o.dryRun {
			return nil
		}
	}
	err = d.retryConflict(ctx, func() error {
		_, err := d.c.Lambda.AddPermission(ctx, &awslambda.AddPermissionInput{
			FunctionName:  &d.function,
			StatementId:   &want.Sid,
			Action:        aws.String("lambda:InvokeFunction"),
			Principal:     aws.String("s3.amazonaws.com"),
			SourceArn:     &want.SourceARN,
			SourceAccount: &want.Account,
		})
		return err
	})
	if isCode(err, "ResourceConflictException") {
		// Added by someone else since we read the policy: fine if it is
		// exactly ours.
		_, ok, rerr := readPermission(ctx, d.c.Lambda, d.function, want)
		if rerr != nil {
			return rerr
		}
		if ok {
			return nil
		}
		return fmt.Errorf("adding permission %q to function %q: a different statement with that id appeared meanwhile; run deploy again: %w", want.Sid, d.function, err)
	}
	return wrapAWS(err, "adding permission %q to function %q", want.Sid, d.function)
}

// readStale finds, when the function exists, the triggers a deploy with
// another bucket left behind: the permission statements extract-s3-OLD
// for buckets other than this deploy's. It reads each old bucket's
// notification configuration too, before anything changes, so that a
// bucket deploy may not read stops it there (a bucket that no longer
// exists has no rule to remove).
func (d *deployer) readStale(ctx context.Context) error {
	if d.cur == nil {
		return nil
	}
	out, err := d.c.Lambda.GetPolicy(ctx, &awslambda.GetPolicyInput{FunctionName: &d.function})
	if isCode(err, "ResourceNotFoundException") {
		return nil
	}
	if err != nil {
		return wrapAWS(err, "reading the policy of function %q", d.function)
	}
	stale, err := staleTriggers(deref(out.Policy), d.res.Trigger.StatementID)
	if err != nil {
		return err
	}
	for _, st := range stale {
		if st.Bucket == "" || st.Bucket == d.bucket {
			continue
		}
		if _, err := readNotification(ctx, d.c.S3, st.Bucket); err != nil && !isCode(err, "NoSuchBucket") {
			return fmt.Errorf("function %q is still triggered by bucket %q from an earlier deploy; deploy moves the trigger to %q and needs to remove the old one: %w",
				d.function, st.Bucket, d.bucket, err)
		}
	}
	d.stale = stale
	return nil
}

// removeStale removes each stale trigger readStale found, once the trigger
// on this deploy's bucket is in place: our rule from the old bucket's
// notification configuration (every other rule kept), then the permission
// statement. The statement goes last, so that a deploy that fails in
// between finds the old bucket again the next time.
func (d *deployer) removeStale(ctx context.Context) error {
	id := d.res.Trigger.ID
	for _, st := range d.stale {
		if st.Bucket != "" && st.Bucket != d.bucket {
			nc, err := readNotification(ctx, d.c.S3, st.Bucket)
			switch {
			case isCode(err, "NoSuchBucket"):
				d.log.Debug("the old trigger bucket does not exist", "bucket", st.Bucket)
			case err != nil:
				return err
			default:
				if rest, removed := removeOurRule(nc, id, d.res.FunctionARN); removed {
					d.change("remove notification rule %s from bucket %s (the trigger moved to bucket %s)", id, st.Bucket, d.bucket)
					if !d.o.dryRun {
						if err := writeNotification(ctx, d.c.S3, st.Bucket, rest); err != nil {
							return err
						}
					}
				}
			}
		}
		d.change("remove permission %s from function %s (the trigger moved to bucket %s)", st.Sid, d.function, d.bucket)
		if d.o.dryRun {
			continue
		}
		err := d.retryConflict(ctx, func() error {
			_, err := d.c.Lambda.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: &d.function, StatementId: &st.Sid})
			return err
		})
		if err != nil && !isCode(err, "ResourceNotFoundException") {
			return wrapAWS(err, "removing permission %q of function %q", st.Sid, d.function)
		}
	}
	return nil
}
