package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// LambdaAPI is the part of the Lambda control plane deploy and destroy use.
// *lambda.Client implements it; tests may pass a fake.
type LambdaAPI interface {
	GetFunction(context.Context, *awslambda.GetFunctionInput, ...func(*awslambda.Options)) (*awslambda.GetFunctionOutput, error)
	CreateFunction(context.Context, *awslambda.CreateFunctionInput, ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error)
	UpdateFunctionCode(context.Context, *awslambda.UpdateFunctionCodeInput, ...func(*awslambda.Options)) (*awslambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(context.Context, *awslambda.UpdateFunctionConfigurationInput, ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error)
	DeleteFunction(context.Context, *awslambda.DeleteFunctionInput, ...func(*awslambda.Options)) (*awslambda.DeleteFunctionOutput, error)
	PublishVersion(context.Context, *awslambda.PublishVersionInput, ...func(*awslambda.Options)) (*awslambda.PublishVersionOutput, error)
	ListVersionsByFunction(context.Context, *awslambda.ListVersionsByFunctionInput, ...func(*awslambda.Options)) (*awslambda.ListVersionsByFunctionOutput, error)
	GetAlias(context.Context, *awslambda.GetAliasInput, ...func(*awslambda.Options)) (*awslambda.GetAliasOutput, error)
	CreateAlias(context.Context, *awslambda.CreateAliasInput, ...func(*awslambda.Options)) (*awslambda.CreateAliasOutput, error)
	UpdateAlias(context.Context, *awslambda.UpdateAliasInput, ...func(*awslambda.Options)) (*awslambda.UpdateAliasOutput, error)
	GetPolicy(context.Context, *awslambda.GetPolicyInput, ...func(*awslambda.Options)) (*awslambda.GetPolicyOutput, error)
	AddPermission(context.Context, *awslambda.AddPermissionInput, ...func(*awslambda.Options)) (*awslambda.AddPermissionOutput, error)
	RemovePermission(context.Context, *awslambda.RemovePermissionInput, ...func(*awslambda.Options)) (*awslambda.RemovePermissionOutput, error)
	GetAccountSettings(context.Context, *awslambda.GetAccountSettingsInput, ...func(*awslambda.Options)) (*awslambda.GetAccountSettingsOutput, error)
}

// IAMAPI is the part of IAM deploy and destroy use for the function's role.
type IAMAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	ListRoleTags(context.Context, *iam.ListRoleTagsInput, ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
}

// S3API is the part of S3 deploy and destroy use: the bucket notification
// and code objects.
type S3API interface {
	GetBucketNotificationConfiguration(context.Context, *s3.GetBucketNotificationConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketNotificationConfigurationOutput, error)
	PutBucketNotificationConfiguration(context.Context, *s3.PutBucketNotificationConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketNotificationConfigurationOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// STSAPI tells who is deploying (account and partition).
type STSAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// ECRAPI is the part of ECR's control plane deploy and destroy use for
// container images: the registry token for pushes, the repository (created
// with scan on push and a pull policy for Lambda) and, for destroy
// WithPurgeImages, its images. *ecr.Client implements it.
type ECRAPI interface {
	GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	GetRepositoryPolicy(context.Context, *ecr.GetRepositoryPolicyInput, ...func(*ecr.Options)) (*ecr.GetRepositoryPolicyOutput, error)
	SetRepositoryPolicy(context.Context, *ecr.SetRepositoryPolicyInput, ...func(*ecr.Options)) (*ecr.SetRepositoryPolicyOutput, error)
	ListImages(context.Context, *ecr.ListImagesInput, ...func(*ecr.Options)) (*ecr.ListImagesOutput, error)
	BatchDeleteImage(context.Context, *ecr.BatchDeleteImageInput, ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error)
	DeleteRepository(context.Context, *ecr.DeleteRepositoryInput, ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error)
}

// Clients are the AWS clients deploy and destroy call, and the region they
// are bound to.
type Clients struct {
	Lambda LambdaAPI
	IAM    IAMAPI
	S3     S3API
	STS    STSAPI
	// ECR is needed only for container images in ECR; deploying one
	// without it fails before anything changes.
	ECR ECRAPI
	// Region is the clients' region, used in the role's log ARNs.
	Region string
}

// defaultMaxAttempts is how many times each AWS call is attempted (with the
// SDK's exponential backoff, throttling included) unless the configuration
// (AWS_MAX_ATTEMPTS, max_attempts in a profile) says otherwise.
const defaultMaxAttempts = 8

// LoadAWSConfig loads the standard AWS configuration chain (environment,
// shared config and credentials files, SSO, web identity, container and
// instance roles). A non-empty region or profile overrides the chain's.
// Endpoint overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, …, endpoint_url
// in a profile) are honored by the SDK itself.
func LoadAWSConfig(ctx context.Context, region, profile string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	if cfg.RetryMaxAttempts == 0 {
		cfg.RetryMaxAttempts = defaultMaxAttempts
	}
	return cfg, nil
}

// NewClients returns the clients for cfg. S3 uses path-style addressing
// when an endpoint override is set (local S3 servers such as moto or MinIO
// do not serve bucket subdomains).
func NewClients(cfg aws.Config) *Clients {
	return &Clients{
		Lambda: awslambda.NewFromConfig(cfg),
		IAM:    iam.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		}),
		STS:    sts.NewFromConfig(cfg),
		ECR:    ecr.NewFromConfig(cfg),
		Region: cfg.Region,
	}
}

// errorCode is the AWS error code of err ("ResourceNotFoundException"), or
// "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func errorMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// isCode reports whether err is an AWS error with one of codes.
func isCode(err error, codes ...string) bool {
	c := errorCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// throttleCodes are the error codes AWS services use for throttling.
var throttleCodes = []string{
	"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
	"RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
	"SlowDown", "ProvisionedThroughputExceededException", "PriorRequestNotComplete",
}

// ThrottledError is returned when AWS kept throttling a call after the
// SDK's retries.
type ThrottledError struct {
	// Op is what extract was doing ("creating function \"momentum\"").
	Op  string
	Err error
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s: AWS throttled the request and kept throttling it through every retry (%v); wait a minute and run the command again, or raise the attempts with AWS_MAX_ATTEMPTS", e.Op, e.Err)
}

func (e *ThrottledError) Unwrap() error { return e.Err }

// wrapAWS wraps err from an AWS call with what was being done, as a
// *ThrottledError when AWS throttled it.
func wrapAWS(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	op := fmt.Sprintf(format, args...)
	if isCode(err, throttleCodes...) {
		return &ThrottledError{Op: op, Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// partitionOf returns the partition of an ARN ("aws", "aws-cn",
// "aws-us-gov"), "aws" when it cannot tell.
func partitionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) >= 2 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}
