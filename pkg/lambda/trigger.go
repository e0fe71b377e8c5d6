package lambda

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
