// Package deploy makes an AWS Lambda function run a package of
// [github.com/comingout/extract/pkg/lambda] for every object created in an
// S3 bucket, and removes it again.
//
// [Zip] (and [ZipFile], for a path) deploys a package zip, [Container] a
// Lambda container image, and [Image] packages an opened image as either
// and deploys it. Each reads the current state first, refuses (see
// [IsRefused]) what is unsafe or conflicts with what exists before
// changing anything, and then changes only what differs from the wanted
// state: the role extract-NAME and its least-privilege policy, for an image
// the ECR repository and the pushed image, the function, an optional
// version and alias, the permission for S3 to invoke it, and the bucket's
// notification rule. [Destroy] removes exactly what a deploy created.
//
// What each wants is computed by pure functions (plan.go, policy.go) apart from the
// AWS calls, which go through narrow interfaces ([LambdaAPI], [IAMAPI],
// [S3API], [STSAPI], [ECRAPI]) so that tests can use fakes as well as moto.
//
// The library is silent: pass an *slog.Logger with [WithLogger] to see
// each change and, at debug level, each read.
package deploy
