package main

import (
	"errors"
	"fmt"

	"github.com/comingout/extract/pkg/deploy"
	"github.com/comingout/extract/pkg/lambda"
)

// adviceDeploy advises on the typed errors of pkg/deploy (see advice.go),
// and on the manifest checks of pkg/lambda that deploy makes again, or "".
func adviceDeploy(err error) string {
	var (
		notManaged   *deploy.NotManagedError
		directUpload *deploy.DirectUploadError
		packageType  *deploy.PackageTypeError
		repoRegion   *deploy.RepositoryRegionError
		purgeRegion  *deploy.PurgeRegionError
		overlap      *deploy.OverlapError
		imagePackage *deploy.ImagePackageError
		recursion    *lambda.RecursionError
	)
	switch {
	case errors.As(err, &notManaged):
		if notManaged.Kind == "role" {
			return "pass --role with its ARN to use it as it is, or choose another --function name"
		}
		return fmt.Sprintf("choose another --function name, or tag it %s=%s to let extract manage it", deploy.ManagedByTag, deploy.ManagedByValue)
	case errors.As(err, &directUpload):
		return "pass --code-bucket BUCKET (a bucket in the function's region) to upload it through S3"
	case errors.As(err, &packageType):
		keep := "deploy the IMAGE with --format image to keep it a container image"
		if packageType.Current == "Zip" {
			keep = "deploy with --format zip (or a .zip package) to keep it a zip"
		}
		return fmt.Sprintf("run extract destroy --function %s first, deploy under another --function name, or %s", packageType.Function, keep)
	case errors.As(err, &repoRegion):
		return fmt.Sprintf("give a --repository in %s, or leave --repository out for extract's own", repoRegion.Region)
	case errors.As(err, &purgeRegion):
		return fmt.Sprintf("pass --region %s", purgeRegion.RepositoryRegion)
	case errors.As(err, &overlap):
		return "deploy with a --prefix or --suffix disjoint from them, or remove the other rules"
	case errors.As(err, &imagePackage):
		return "deploy it with --format image (or auto), not --format zip"
	case errors.Is(err, deploy.ErrNoRegion):
		return "pass --region REGION, or set AWS_REGION"
	case errors.As(err, &recursion):
		return recursionAdvice(recursion.What)
	}
	return ""
}

// recursionAdvice names the flags that keep outputs of the kind what (a
// lambda.RecursionError's What) away from the trigger.
func recursionAdvice(what string) string {
	const prefixes = "(the defaults --prefix input/ and --output-prefix output/ are)"
	switch what {
	case lambda.RecursiveDirKeys:
		return "package with a trigger prefix and an output prefix neither of which starts with the other " + prefixes +
			", or an --output-bucket other than the trigger bucket"
	case lambda.RecursiveStdoutKeys:
		return "package with a trigger prefix disjoint from the output prefix " + prefixes +
			", an --output-bucket other than the trigger bucket, or a trigger --suffix other than .stdout"
	}
	return "package with a trigger prefix disjoint from the output prefix " + prefixes +
		", an --output-bucket other than the trigger bucket, or an --output-suffix that does not end in the trigger suffix"
}
