package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/comingout/extract/pkg/deploy"
)

var destroyCommand = &cli.Command{
	Name:  "destroy",
	Usage: "remove what deploy created: trigger rule, permission, function, role (and images with --purge-images)",
	Description: `Removes exactly what "extract deploy" created for --function and --bucket, and nothing
else: the rule extract-FUNCTION from the bucket's notification configuration (every
other rule is kept), the permission extract-s3-BUCKET, the function (with its
versions and aliases), the role only when extract created it (tag managed-by=extract;
a role given with --role is never touched), and with --code-bucket the code objects
under extract/FUNCTION/. What is already gone is skipped: with nothing to remove it
says "no changes" and exits 0. A function of that name that extract did not create
is refused (exit 4) and nothing is removed.

A container-image function's images stay in their repository unless
--purge-images: then the tags deploy gave them (extract-FUNCTION-*) are deleted,
each image with its last tag (an image someone else also tagged stays), and the
ECR repository itself only if extract created it (tag managed-by=extract) and
nothing is left in it. The repository is the function's, or --repository (when
the function is gone already), or the default extract-FUNCTION.

Examples:
  extract destroy --function momentum --bucket my-uploads
  extract destroy --function big --bucket my-uploads --code-bucket my-artifacts
  extract destroy --function report --bucket my-uploads --purge-images
  extract destroy --function momentum --bucket my-uploads --dry-run --json`,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "function", Aliases: []string{"f"}, Usage: "Lambda function `NAME` (required)"},
		&cli.StringFlag{Name: "bucket", Aliases: []string{"b"}, Usage: "trigger `BUCKET` the function was deployed on (required)"},
		&cli.StringFlag{Name: "code-bucket", Usage: "also delete the code objects deploy uploaded to `BUCKET`"},
		&cli.BoolFlag{Name: "purge-images", Usage: "also delete the container images deploy pushed for the function, and its ECR repository if extract created it and it is then empty"},
		repositoryFlag("the `REPOSITORY` to purge with --purge-images (default: the function's, else ECR extract-FUNCTION)"),
	}, awsFlags()...),
	Action: runDestroy,
}

func runDestroy(c *cli.Context) error {
	args, err := commandArgs(c, "function", "bucket")
	if err != nil || args == nil {
		return err
	}
	if len(args) != 0 {
		return usageError{"destroy takes no arguments: extract destroy --function NAME --bucket BUCKET"}
	}
	common, err := commonOptions(c)
	if err != nil {
		return err
	}
	opts := []deploy.DestroyOption{deploy.WithPurgeImages(c.Bool("purge-images"))}
	for _, o := range common {
		opts = append(opts, o)
	}
	res, err := deploy.Destroy(c.Context, c.String("function"), c.String("bucket"), opts...)
	if err != nil {
		return err
	}
	verb := "destroyed"
	if res.DryRun {
		verb = "dry run of destroying"
	}
	fmt.Fprintf(stderr(c), "%s %s (trigger bucket %s)\n", verb, res.FunctionName, res.Bucket)
	printChanges(stderr(c), res.Changes, res.DryRun)
	if res.ImagesKept != "" {
		fmt.Fprintf(stderr(c), "the function's images stay in %s: --purge-images removes them\n", res.ImagesKept)
	}
	if c.Bool("json") {
		return deployJSON(stdout(c), res)
	}
	return nil
}
