package runtime

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// NewS3Client returns an S3 client configured from the environment the way
// Lambda provides it: region from AWS_REGION (AWS_DEFAULT_REGION, else
// us-east-1), the role's credentials from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, the endpoint from
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (then with path-style addressing,
// which moto and local endpoints expect), and checksum behaviour from
// AWS_REQUEST_CHECKSUM_CALCULATION and AWS_RESPONSE_CHECKSUM_VALIDATION.
//
// It does not use config.LoadDefaultConfig: the shared config files, SSO,
// STS and IMDS clients it links in would push the bootstrap over its 10 MiB
// budget, and Lambda always provides credentials in the environment.
func NewS3Client(ctx context.Context) (*s3.Client, error) {
	return newS3Client(os.Getenv), nil
}

func newS3Client(getenv func(string) string) *s3.Client {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	cfg := aws.Config{
		Region: region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"))),
	}
	if strings.EqualFold(getenv("AWS_REQUEST_CHECKSUM_CALCULATION"), "when_required") {
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	if strings.EqualFold(getenv("AWS_RESPONSE_CHECKSUM_VALIDATION"), "when_required") {
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	endpoint := getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = getenv("AWS_ENDPOINT_URL")
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = endpoint != ""
		if strings.HasPrefix(endpoint, "http://") {
			// Over plain HTTP the SDK would hash every part with SHA-256
			// to sign it; a local endpoint checks no signature, and the
			// parts still carry their CRC32 checksums. The payload hash
			// is set first thing, so the checksum step does not compute
			// it either.
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware, addUnsignedPayloadHash)
		}
	})
}

// requestChecksum is the checksum algorithm of uploads: CRC32, the SDK's
// default, unless AWS_REQUEST_CHECKSUM_CALCULATION is when_required (for
// S3-compatible servers that refuse checksums).
func requestChecksum(getenv func(string) string) types.ChecksumAlgorithm {
	if strings.EqualFold(getenv("AWS_REQUEST_CHECKSUM_CALCULATION"), "when_required") {
		return ""
	}
	return types.ChecksumAlgorithmCrc32
}

// addUnsignedPayloadHash marks every request's payload as unsigned from the
// start of its middleware stack.
func addUnsignedPayloadHash(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ExtractUnsignedPayloadHash",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
		}), middleware.Before)
}
