package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/comingout/extract/pkg/lambda"
)

var deployCommand = &cli.Command{
	Name:      "deploy",
	Usage:     "create or update the Lambda function and wire the S3 trigger",
	ArgsUsage: "FUNCTION.zip",
	Description: `Deploys a package made by "extract package" as the Lambda function --function, run for
every object created in --bucket that matches the package's trigger filter (its
manifest's input prefix and suffix, input/*.csv by default). Only what differs
is changed: a second identical run reports "no changes".

Deploy creates or updates, in order:
  role          extract-FUNCTION (unless --role), trusted by lambda.amazonaws.com,
                tagged managed-by=extract, with an inline policy allowing only
                s3:GetObject on the trigger objects, s3:PutObject on the output
                location and CloudWatch Logs for /aws/lambda/FUNCTION
  function      provided.al2023, handler bootstrap, the package's architecture;
                code updated only when its SHA-256 differs
  version/alias with --publish and --alias
  permission    extract-s3-BUCKET: s3.amazonaws.com may invoke it for BUCKET
  notification  rule extract-FUNCTION in BUCKET's notification configuration,
                every other rule kept

It refuses (exit 4), before changing anything, a trigger that overlaps another
rule of the bucket, outputs that would re-trigger the function, a function or
role of that name that extract did not create, and code over Lambda's limits.

Credentials and region come from the standard AWS chain (environment, profile,
SSO, web identity, instance role); AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
override endpoints.

Examples:
  extract package gcr.io/p/momentum:v1 -o momentum.zip
  extract deploy momentum.zip --function momentum --bucket my-uploads
  extract deploy momentum.zip --function momentum --bucket my-uploads --memory 1024 --timeout 2m --env LEVEL=debug
  extract deploy big.zip --function big --bucket my-uploads --code-bucket my-artifacts
  extract deploy momentum.zip --function momentum --bucket my-uploads --dry-run
  extract deploy momentum.zip --function momentum --bucket my-uploads --publish --alias live --json`,
	Flags:           deployFlags(),
	SkipFlagParsing: true, // flags may follow FUNCTION.zip; see interspersed
	Action:          interspersed(runDeploy, "function", "bucket"),
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
	return append([]cli.Flag{
		&cli.StringFlag{Name: "function", Aliases: []string{"f"}, Usage: "Lambda function `NAME` (required)"},
		&cli.StringFlag{Name: "bucket", Aliases: []string{"b"}, Usage: "trigger `BUCKET`: uploads there run the function (required)"},
		&cli.StringFlag{Name: "role", Usage: "use this existing role `ARN` instead of creating extract-FUNCTION"},
		&cli.IntFlag{Name: "memory", Value: 512, Usage: "memory in `MB` (128 to 10240)"},
		&cli.DurationFlag{Name: "timeout", Value: defaultTimeout, Usage: "invocation timeout (1s to 15m)"},
		&cli.IntFlag{Name: "ephemeral-storage", Value: 512, Usage: "size of /tmp in `MB` (512 to 10240)"},
		&cli.StringSliceFlag{Name: "env", Usage: "function environment variable `K=V` (repeatable)"},
		&cli.BoolFlag{Name: "publish", Usage: "publish a version when the code or configuration changed"},
		&cli.StringFlag{Name: "alias", Usage: "point alias `NAME` at the published version (or $LATEST)"},
		&cli.StringFlag{Name: "code-bucket", Usage: "upload code over the direct-upload limit (50 MB) through `BUCKET`"},
	}, awsFlags()...)
}

func runDeploy(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{"deploy takes one argument, the package: extract deploy FUNCTION.zip --function NAME --bucket BUCKET"}
	}
	arg := c.Args().First()
	if !strings.HasSuffix(arg, ".zip") {
		return usageError{fmt.Sprintf("%q is not a .zip package: make one with `extract package IMAGE -o function.zip`", arg)}
	}
	opts, err := deployOptions(c)
	if err != nil {
		return err
	}
	res, err := lambda.DeployFile(c.Context, arg, c.String("function"), c.String("bucket"), opts...)
	if err != nil {
		return err
	}
	return printDeploy(c, res)
}

// awsOptions are the options shared by deploy and destroy.
func awsOptions(c *cli.Context) ([]lambda.DeployOption, error) {
	cfg, err := lambda.LoadAWSConfig(c.Context, c.String("region"), c.String("profile"))
	if err != nil {
		return nil, err
	}
	opts := []lambda.DeployOption{
		lambda.WithClients(lambda.NewClients(cfg)),
		lambda.WithDeployLogger(logger(c)),
		lambda.WithDryRun(c.Bool("dry-run")),
	}
	if b := c.String("code-bucket"); b != "" {
		opts = append(opts, lambda.WithCodeBucket(b))
	}
	return opts, nil
}

func deployOptions(c *cli.Context) ([]lambda.DeployOption, error) {
	env := map[string]string{}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--env %q is not K=V", kv)}
		}
		env[k] = v
	}
	opts := []lambda.DeployOption{
		lambda.WithFunctionMemory(c.Int("memory")),
		lambda.WithFunctionTimeout(c.Duration("timeout")),
		lambda.WithEphemeralStorage(c.Int("ephemeral-storage")),
		lambda.WithFunctionEnv(env),
		lambda.WithPublish(c.Bool("publish")),
	}
	if r := c.String("role"); r != "" {
		opts = append(opts, lambda.WithRoleARN(r))
	}
	if a := c.String("alias"); a != "" {
		opts = append(opts, lambda.WithAlias(a))
	}
	aws, err := awsOptions(c)
	if err != nil {
		return nil, err
	}
	return append(opts, aws...), nil
}

// printDeploy writes the result: JSON (--json) or the function ARN on
// stdout, a summary on stderr.
func printDeploy(c *cli.Context, res *lambda.DeployResult) error {
	w := stderr(c)
	verb := "deployed"
	if res.DryRun {
		verb = "dry run of"
	}
	fmt.Fprintf(w, "%s %s (%s)\n", verb, res.FunctionName, res.FunctionARN)
	fmt.Fprintf(w, "  role     %s\n", res.RoleARN)
	fmt.Fprintf(w, "  code     %s, %s, %s\n", res.CodeSha256, res.Architecture, res.CodeLocation)
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

// interspersed lets a command take flags after its arguments, as in the
// documented `extract deploy function.zip --function NAME --bucket BUCKET`:
// urfave/cli v2 stops parsing flags at the first argument, so the command
// sets SkipFlagParsing and action gets a context parsed here, with flags
// anywhere, "--" ending them, --help showing the command's help, and the
// required flags checked (urfave's Required cannot be used with
// SkipFlagParsing).
func interspersed(action cli.ActionFunc, required ...string) cli.ActionFunc {
	return func(c *cli.Context) error {
		set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
		set.SetOutput(io.Discard)
		for _, f := range c.Command.Flags {
			if err := f.Apply(set); err != nil {
				return err
			}
		}
		args, tail := c.Args().Slice(), []string(nil)
		for i, a := range args {
			if a == "--" {
				args, tail = args[:i], args[i+1:]
				break
			}
		}
		var pos []string
		for {
			if err := set.Parse(args); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
				}
				return usageError{err.Error()}
			}
			rest := set.Args()
			if len(rest) == 0 {
				break
			}
			pos = append(pos, rest[0])
			args = rest[1:]
		}
		pos = append(pos, tail...)
		if h := set.Lookup("help"); h != nil && h.Value.String() == "true" {
			return cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
		}
		visited := map[string]bool{}
		set.Visit(func(f *flag.Flag) { visited[f.Name] = true })
		var missing []string
		for _, name := range required {
			found := visited[name]
			for _, f := range c.Command.Flags {
				if f.Names()[0] == name {
					for _, n := range f.Names() {
						found = found || visited[n]
					}
				}
			}
			if !found {
				missing = append(missing, "--"+name)
			}
		}
		if len(missing) > 0 {
			return usageError{"required flag(s) not set: " + strings.Join(missing, ", ")}
		}
		// The arguments become the new flag set's Args.
		if err := set.Parse(append([]string{"--"}, pos...)); err != nil {
			return usageError{err.Error()}
		}
		nc := cli.NewContext(c.App, set, c.Lineage()[1])
		nc.Command = c.Command
		return action(nc)
	}
}
