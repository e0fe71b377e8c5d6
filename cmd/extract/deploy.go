package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/comingout/extract/pkg/deploy"
	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

var deployCommand = &cli.Command{
	Name:      "deploy",
	Usage:     "create or update the Lambda function and wire the S3 trigger",
	ArgsUsage: "IMAGE|FUNCTION.zip",
	Description: `Deploys IMAGE, packaged on the fly with the same flags as "extract package", or a
package FUNCTION.zip (an argument ending in .zip) made by it, as the Lambda
function --function, run for every object created in --bucket that matches the
trigger filter: --prefix and --suffix (input/ and .csv by default), recorded in
the package's extract.json. Outputs go to --output-prefix (output/) + the key
without --prefix; a filter the outputs could match is refused. Only what differs
is changed: a second identical run reports "no changes".

IMAGE is packaged as --format says: auto (the default) makes a zip unless the
program names files at their original paths or is over 250 MB, and then a
container image; zip or image force one. A container image is pushed to
--repository, by default the ECR repository extract-FUNCTION of your account
and region (ACCOUNT.dkr.ecr.REGION.amazonaws.com/extract-FUNCTION), with the tag
extract-FUNCTION-<digest prefix>; the function runs it by digest. Lambda pulls
images only from ECR in the function's region, and its first cold start after a
deploy of a new image is slower (the image is being cached). An image package
that "extract package --format image" wrote (oci:DIR, docker-archive:FILE, a
reference) is deployed as it is, by its own digest.

Deploy creates or updates, in order:
  role          extract-FUNCTION (unless --role), trusted by lambda.amazonaws.com,
                tagged managed-by=extract, with an inline policy allowing only
                s3:GetObject on the trigger objects, s3:PutObject and
                s3:AbortMultipartUpload on the output location (with
                --output-dir also s3:DeleteObject, to remove the files of a
                failed run) and CloudWatch Logs for /aws/lambda/FUNCTION (an
                image function needs nothing more: Lambda pulls with its own
                identity)
  repository    (image) the ECR repository, created if missing with scan on push,
                tag managed-by=extract and a policy letting Lambda pull
  image         (image) pushed unless the repository has it; registries keep the
                layers they have, so only changed layers are uploaded
  function      zip: provided.al2023, handler bootstrap, code updated only when
                its SHA-256 differs; image: PackageType Image, ImageUri
                REPOSITORY@sha256:DIGEST, updated only when that differs; the
                package's architecture; the log format (--log-format)
  version/alias with --publish and --alias
  permission    extract-s3-BUCKET: s3.amazonaws.com may invoke it for BUCKET
  notification  rule extract-FUNCTION in BUCKET's notification configuration,
                every other rule kept; deployed before with another --bucket,
                the function's rule and permission there are removed

It refuses (exit 4), before changing anything, a trigger that overlaps another
rule of the bucket, outputs that would re-trigger the function, a package whose
extract.json has input or output settings package does not write, a function or
role of that name that extract did not create, code over Lambda's limits, a
function that exists as the other package type (Lambda cannot turn a zip
function into an image function or back: destroy it first, or use another
--function), and an ECR --repository in another region.

Credentials and region come from the standard AWS chain (environment, profile,
SSO, web identity, instance role); AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
override endpoints.

Examples:
  extract deploy gcr.io/p/momentum:v1 --function momentum --bucket my-uploads
  extract deploy docker-archive:momentum.tar --platform linux/arm64 --function momentum --bucket my-uploads --prefix data/
  extract package gcr.io/p/momentum:v1 -o momentum.zip
  extract deploy momentum.zip --function momentum --bucket my-uploads
  extract package my-tcl-app:v1 -o oci:./fn-image && extract deploy oci:./fn-image --function tcl --bucket my-uploads
  extract deploy momentum.zip --function momentum --bucket my-uploads --memory 1024 --timeout 2m --env LEVEL=debug
  extract deploy big.zip --function big --bucket my-uploads --code-bucket my-artifacts
  extract deploy momentum.zip --function momentum --bucket my-uploads --dry-run
  extract deploy momentum.zip --function momentum --bucket my-uploads --publish --alias live --json
  extract deploy gcr.io/p/tcl-app:v1 --function report --bucket my-uploads --format image
  extract deploy gcr.io/p/tcl-app:v1 --function report --bucket my-uploads --format image --slim \
      --repository 123456789012.dkr.ecr.us-east-1.amazonaws.com/team/report
  extract deploy files:v1 --function files --bucket my-uploads --output-dir /out --log-format json`,
	Flags:  deployFlags(),
	Action: runDeploy,
}

// defaultTimeout is the function's default invocation timeout.
const defaultTimeout = 60 * time.Second

// awsFlags select the AWS account and region.
func awsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "region", Usage: "AWS region (default: from AWS_REGION or the profile)"},
		&cli.StringFlag{Name: "profile", Usage: "AWS shared config profile (default: AWS_PROFILE or default)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "read the current state and print what would change, changing nothing"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
	}
}

func deployFlags() []cli.Flag {
	return append(append([]cli.Flag{
		&cli.StringFlag{Name: "function", Aliases: []string{"f"}, Usage: "Lambda function `NAME` (required)"},
		&cli.StringFlag{Name: "bucket", Aliases: []string{"b"}, Usage: "trigger `BUCKET`: uploads there run the function (required)"},
		&cli.StringFlag{Name: "role", Usage: "use this existing role `ARN` instead of creating extract-FUNCTION"},
		&cli.IntFlag{Name: "memory", Value: 512, Usage: "memory in `MB` (128 to 10240)"},
		&cli.DurationFlag{Name: "timeout", Value: defaultTimeout, Usage: "invocation timeout (1s to 15m)"},
		&cli.IntFlag{Name: "ephemeral-storage", Value: 512, Usage: "size of /tmp in `MB` (512 to 10240)"},
		&cli.StringSliceFlag{Name: "env", Usage: "function environment variable `K=V` (repeatable)"},
		&cli.BoolFlag{Name: "publish", Usage: "publish a version when the code or configuration changed"},
		&cli.StringFlag{Name: "alias", Usage: "point alias `NAME` at the published version (or $LATEST)"},
		&cli.StringFlag{Name: "log-format", Value: deploy.LogFormatText,
			Usage:  "the function's log `FORMAT`: text (lines as written) or json (one JSON object per line, with the request ID; CloudWatch can filter on its fields)",
			Action: oneOf("log-format", deploy.LogFormatText, deploy.LogFormatJSON)},
		&cli.StringFlag{Name: "code-bucket", Usage: "upload code over the direct-upload limit (50 MB) through `BUCKET`"},
		repositoryFlag("push container images to `REPOSITORY` (REGISTRY/NAME; default: ECR ACCOUNT.dkr.ecr.REGION.amazonaws.com/extract-FUNCTION, created if missing)"),
	}, awsFlags()...), append(formatFlags(lambda.FormatAuto, ""), imageFlags()...)...)
}

// repositoryFlag is --repository, with deploy's or destroy's usage.
func repositoryFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "repository", Usage: usage}
}

func runDeploy(c *cli.Context) error {
	args, err := commandArgs(c, "function", "bucket")
	if err != nil || args == nil {
		return err
	}
	if len(args) != 1 {
		return usageError{"deploy takes one argument, the IMAGE or package: extract deploy IMAGE|FUNCTION.zip --function NAME --bucket BUCKET"}
	}
	opts, err := deployOptions(c)
	if err != nil {
		return err
	}
	fn, bucket := c.String("function"), c.String("bucket")
	var res *deploy.Result
	if arg := args[0]; strings.HasSuffix(arg, ".zip") {
		var set []string
		for _, f := range imageFlags() {
			if c.IsSet(f.Names()[0]) {
				set = append(set, "--"+f.Names()[0])
			}
		}
		if len(set) > 0 {
			return usageError{fmt.Sprintf("%s: these flags apply when deploying an IMAGE; %s carries its settings in %s, so package it again to change them",
				strings.Join(set, ", "), arg, "extract.json")}
		}
		for _, f := range []string{"repository", "slim"} {
			if c.IsSet(f) {
				set = append(set, "--"+f)
			}
		}
		if c.String("format") == lambda.FormatImage {
			set = append(set, "--format image")
		}
		if len(set) > 0 {
			return usageError{fmt.Sprintf("%s: %s is a zip package and deploys as one; these apply when deploying an IMAGE as a container image",
				strings.Join(set, ", "), arg)}
		}
		res, err = deploy.ZipFile(c.Context, arg, fn, bucket, opts...)
	} else {
		fmt.Fprintf(stderr(c), "I'm coming out… packaging %s\n", arg)
		img, err := image.Open(c.Context, arg, openOptions(c)...)
		if err != nil {
			return packageExit(err)
		}
		defer img.Close()
		res, err = deploy.Image(c.Context, img, fn, bucket, packageOptions(c), opts...)
		if err != nil {
			return packageExit(err)
		}
	}
	if err != nil {
		return err
	}
	return printDeploy(c, res)
}

// commandArgs returns the positional arguments, with flags allowed after
// them (see positionalArgs), and checks the required flags: urfave/cli's
// Required cannot be used when they may follow the arguments. It returns
// nil, nil when --help was shown.
func commandArgs(c *cli.Context, required ...string) ([]string, error) {
	args, err := positionalArgs(c)
	if errors.Is(err, errHelpShown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, name := range required {
		if !c.IsSet(name) {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return nil, usageError{"required flag(s) not set: " + strings.Join(missing, ", ")}
	}
	if args == nil {
		args = []string{}
	}
	return args, nil
}

// commonOptions are the options deploy and destroy share: the AWS clients
// (--region, --profile), the logger, --dry-run, --code-bucket and
// --repository.
func commonOptions(c *cli.Context) ([]deploy.CommonOption, error) {
	cfg, err := deploy.LoadAWSConfig(c.Context, c.String("region"), c.String("profile"))
	if err != nil {
		return nil, err
	}
	opts := []deploy.CommonOption{
		deploy.WithClients(deploy.NewClients(cfg)),
		deploy.WithLogger(logger(c)),
		deploy.WithDryRun(c.Bool("dry-run")),
	}
	if b := c.String("code-bucket"); b != "" {
		opts = append(opts, deploy.WithCodeBucket(b))
	}
	if r := c.String("repository"); r != "" {
		opts = append(opts, deploy.WithRepository(r))
	}
	return opts, nil
}

func deployOptions(c *cli.Context) ([]deploy.Option, error) {
	env := map[string]string{}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--env %q is not K=V", kv)}
		}
		env[k] = v
	}
	opts := []deploy.Option{
		deploy.WithFunctionMemory(c.Int("memory")),
		deploy.WithFunctionTimeout(c.Duration("timeout")),
		deploy.WithEphemeralStorage(c.Int("ephemeral-storage")),
		deploy.WithFunctionEnv(env),
		deploy.WithPublish(c.Bool("publish")),
		deploy.WithFormat(c.String("format")),
		deploy.WithWarnings(func(w lambda.Warning) { logger(c).Warn(adviceWarning(w)) }),
		deploy.WithLogFormat(c.String("log-format")),
	}
	if r := c.String("role"); r != "" {
		opts = append(opts, deploy.WithRoleARN(r))
	}
	if a := c.String("alias"); a != "" {
		opts = append(opts, deploy.WithAlias(a))
	}
	common, err := commonOptions(c)
	if err != nil {
		return nil, err
	}
	for _, o := range common {
		opts = append(opts, o)
	}
	return opts, nil
}

// printDeploy writes the result: JSON (--json) or the function ARN on
// stdout, a summary on stderr.
func printDeploy(c *cli.Context, res *deploy.Result) error {
	w := stderr(c)
	verb := "deployed"
	if res.DryRun {
		verb = "dry run of"
	}
	fmt.Fprintf(w, "%s %s (%s)\n", verb, res.FunctionName, res.FunctionARN)
	fmt.Fprintf(w, "  role     %s\n", res.RoleARN)
	if res.ImageURI != "" {
		fmt.Fprintf(w, "  image    %s, %s\n", res.ImageURI, res.Architecture)
	} else {
		fmt.Fprintf(w, "  code     %s, %s, %s\n", res.CodeSha256, res.Architecture, res.CodeLocation)
	}
	if res.FormatReason != "" {
		fmt.Fprintf(w, "  format   %s: %s\n", strings.ToLower(res.PackageType), res.FormatReason)
	}
	version := res.Version
	if res.Alias != "" {
		version += " (alias " + res.Alias + ")"
	}
	fmt.Fprintf(w, "  version  %s\n", version)
	t := res.Trigger
	fmt.Fprintf(w, "  trigger  s3://%s/%s*%s (%s) → %s\n", t.Bucket, t.Prefix, t.Suffix, strings.Join(t.Events, ","), res.FunctionName)
	printChanges(w, res.Changes, res.DryRun)
	if c.Bool("json") {
		return deployJSON(stdout(c), res)
	}
	_, err := fmt.Fprintln(stdout(c), res.FunctionARN)
	return err
}

func printChanges(w io.Writer, changes []string, dryRun bool) {
	switch {
	case len(changes) == 0:
		fmt.Fprintln(w, "no changes")
	case dryRun:
		fmt.Fprintf(w, "would make %d change(s) (dry run, nothing changed):\n", len(changes))
	default:
		fmt.Fprintf(w, "%d change(s):\n", len(changes))
	}
	for _, ch := range changes {
		fmt.Fprintf(w, "  - %s\n", ch)
	}
}

func deployJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
