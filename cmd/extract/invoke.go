package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/local"
	"github.com/urfave/cli/v2"
)

var invokeCommand = &cli.Command{
	Name:      "invoke",
	Usage:     "run a packaged function locally, the way Lambda would",
	ArgsUsage: "FUNCTION.zip|IMAGE",
	Description: `Runs a package on this machine, serves the Lambda Runtime API on 127.0.0.1
and sends it one event: the S3 event for a CSV (--csv), an event from a file
(--event, "-" for stdin) or the S3 event for an existing object (--bucket and
--key).

A zip is unpacked to a temporary directory and its own bootstrap started with
a Lambda-like environment. An IMAGE (a container-image package: oci:DIR,
docker-archive:FILE, oci-archive:FILE or a registry reference) runs the way
Lambda runs images, with no Docker: flattened into a temporary root, its
ENTRYPOINT (+CMD) is started chrooted there in a private mount namespace,
the root read-only, /tmp fresh and writable, as a non-root user (--uid,
default 65534), with the image's ENV under Lambda's variables and its
WORKDIR. Images need root. invoke needs Linux, for zips too: a package's
bootstrap and programs are Linux executables.

S3 is the endpoint AWS_ENDPOINT_URL_S3 names (moto, MinIO, ...) when set. With
--csv and no such endpoint, an in-process S3 serves the bucket "local": the CSV
is put there under the package's input prefix (input/NAME.csv by default) and
the output object (output/NAME.csv) is fetched back. Without
either, S3 is AWS itself, with your credentials.

Your AWS credentials never go to a local endpoint: the in-process S3 and an
AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) on 127.0.0.1, ::1 or localhost get
dummy credentials made for the invocation, and so does the bootstrap. Give
--aws-credentials to pass yours there (a local MinIO checks its own keys: put
them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). The Runtime API and the
in-process S3 answer only requests for their own 127.0.0.1:port (Host
header), the S3 only those signed with the invocation's access key.

With --csv, stdout carries the output object's bytes (for a program that writes
an --output-dir and no {output} file, its _manifest.json); otherwise the
function's response. With --csv and -o DIR, every object the run wrote (the
output object, OUTPUT_KEY.stdout, an output directory's files and
_manifest.json) is saved under DIR at its key without the output prefix
(output/day1/plots/a.png → DIR/day1/plots/a.png), and stdout lists the files
written. --json prints the whole result (request ID, durations, response or
error, the objects written) instead. The function's log (the bootstrap's and the program's stderr)
goes to stderr, then a line with the request ID and the durations as Lambda
reports them (the invocation from the event's delivery; the bootstrap's init).
The bootstrap's last line for each invocation is its summary (input bytes,
output bytes and files, program and transfer time, exit status); with
--log-format json its lines are JSON objects, as on a function deployed with
--log-format json.
The exit status is 1 when the invocation failed.

Examples:
  extract invoke momentum.zip --csv data/momentum.csv
  extract invoke momentum.zip --csv data/momentum.csv > momentum.out.csv
  extract invoke files.zip --csv data/sample.csv -o out/   # out/sample/summary.csv, out/sample/_manifest.json, ...
  extract package momentum:v1 -o oci:momentum-image && sudo extract invoke oci:momentum-image --csv data/momentum.csv
  sudo extract invoke docker-archive:momentum.tar --csv data/momentum.csv --uid 993:990
  AWS_ENDPOINT_URL_S3=http://127.0.0.1:5000 extract invoke momentum.zip --bucket in --key data/run1.csv
  extract invoke momentum.zip --event s3-put.json --timeout 2m --json
  extract invoke momentum.zip --csv data/momentum.csv --log-format json 2>&1 >/dev/null | jq .`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "csv", TakesFile: true, Usage: "run on the local CSV `FILE`"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, TakesFile: true,
			Usage: "with --csv: save every object the run wrote under `DIR`, at its key without the output prefix"},
		&cli.StringFlag{Name: "event", TakesFile: true, Usage: "send the JSON event in `FILE` (- for stdin)"},
		&cli.StringFlag{Name: "bucket", Usage: "with --key: send the S3 Put event for this `BUCKET`"},
		&cli.StringFlag{Name: "key", Usage: "with --bucket: the object `KEY`"},
		&cli.DurationFlag{Name: "timeout", Value: local.DefaultTimeout, Usage: "the invocation timeout (up to 15m)"},
		&cli.IntFlag{Name: "memory", Value: 128, Usage: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE in `MB`"},
		&cli.StringFlag{Name: "uid", DefaultText: "65534:65534", Usage: "an IMAGE runs as `UID[:GID]` (non-root; Lambda picks its own)"},
		&cli.StringFlag{Name: "platform", Usage: "`os/arch[/variant]` of an IMAGE that is a multi-platform index (default: the image's own, else linux/amd64)"},
		&cli.StringFlag{Name: "log-format", Value: local.LogFormatText,
			Usage:  "the function's log `FORMAT`, as deploy --log-format sets it on Lambda: text, or json (AWS_LAMBDA_LOG_FORMAT=JSON: one JSON object per line)",
			Action: oneOf("log-format", local.LogFormatText, local.LogFormatJSON)},
		&cli.BoolFlag{Name: "aws-credentials", Usage: "hand your AWS credentials to the function also when S3 is a local endpoint (default there: dummy ones)"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as a JSON document"},
	},
	Action: func(c *cli.Context) error {
		args, err := positionalArgs(c)
		if errors.Is(err, errHelpShown) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return usageError{"invoke: want exactly one FUNCTION.zip or IMAGE argument (see extract invoke --help)"}
		}
		opts, err := invokeOptions(c)
		if err != nil {
			return err
		}
		res, err := local.Invoke(c.Context, args[0], opts...)
		var failed *local.InvokeError
		if err != nil && !errors.As(err, &failed) {
			return err
		}
		if !c.Bool("json") {
			// Durations as Lambda reports them: the invocation from the
			// event's delivery, the bootstrap's start to its first /next.
			attrs := []any{"request_id", res.RequestID,
				"duration", res.Duration.Round(time.Millisecond), "duration_ns", res.Duration.Nanoseconds(),
				"init", res.InitDuration.Round(10 * time.Microsecond), "init_ns", res.InitDuration.Nanoseconds()}
			if res.OutputKey != "" {
				attrs = append(attrs, "output", "s3://"+res.OutputBucket+"/"+res.OutputKey)
			}
			msg := "invocation done"
			if failed != nil {
				msg = "invocation failed"
			}
			logger(c).Info(msg, attrs...)
		}
		switch {
		case c.Bool("json"):
			enc := json.NewEncoder(stdout(c))
			enc.SetIndent("", "  ")
			out := struct {
				*local.InvokeResult
				Output *string `json:"output,omitempty"`
			}{InvokeResult: res}
			if res.Output != nil {
				s := string(res.Output)
				out.Output = &s
			}
			if eerr := enc.Encode(out); eerr != nil {
				return eerr
			}
		case failed != nil:
		case c.IsSet("output"):
			for _, o := range res.Outputs {
				fmt.Fprintln(stdout(c), o.Path)
			}
		case c.IsSet("csv"): // the output went to stdout
		default:
			fmt.Fprintf(stdout(c), "%s\n", res.Response)
		}
		return err
	},
}

// invokeOptions maps the flags to local.Invoke options.
func invokeOptions(c *cli.Context) ([]local.Option, error) {
	n := 0
	for _, set := range []bool{c.IsSet("csv"), c.IsSet("event"), c.IsSet("bucket") || c.IsSet("key")} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usageError{"invoke: give exactly one of --csv, --event, or --bucket with --key"}
	}
	if c.IsSet("output") && !c.IsSet("csv") {
		return nil, usageError{"invoke: -o saves the objects of a --csv run; give --csv"}
	}
	opts := []local.Option{
		local.WithTimeout(c.Duration("timeout")),
		local.WithMemorySize(c.Int("memory")),
		local.WithLogger(logger(c)),
		local.WithLogWriter(stderr(c)),
		local.WithLogFormat(c.String("log-format")),
		local.WithImageOptions(image.WithProgress(stderr(c)), image.WithLogger(logger(c))),
	}
	if c.IsSet("uid") {
		uid, gid, err := parseUID(c.String("uid"))
		if err != nil {
			return nil, err
		}
		opts = append(opts, local.WithUID(uid, gid))
	}
	if c.Bool("aws-credentials") {
		opts = append(opts, local.WithCallerCredentials())
	}
	if c.IsSet("platform") {
		opts = append(opts, local.WithPlatform(c.String("platform")))
	}
	switch {
	case c.IsSet("csv"):
		opts = append(opts, local.WithCSV(c.String("csv")))
		switch {
		case c.IsSet("output"):
			opts = append(opts, local.WithSaveOutputs(c.String("output")))
		case !c.Bool("json"):
			opts = append(opts, local.WithOutputWriter(stdout(c)))
		}
	case c.IsSet("event"):
		var ev []byte
		var err error
		if p := c.String("event"); p == "-" {
			ev, err = io.ReadAll(os.Stdin)
		} else {
			ev, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the event: %w", err)
		}
		opts = append(opts, local.WithEvent(ev))
	default:
		if c.String("bucket") == "" || c.String("key") == "" {
			return nil, usageError{"invoke: --bucket and --key go together"}
		}
		opts = append(opts, local.WithS3Object(c.String("bucket"), c.String("key")))
	}
	return opts, nil
}

// parseUID reads --uid: "UID" (the group ID the same) or "UID:GID".
func parseUID(s string) (uid, gid int, err error) {
	u, g, hasGID := strings.Cut(s, ":")
	uid, err = strconv.Atoi(u)
	if err == nil {
		gid = uid
		if hasGID {
			gid, err = strconv.Atoi(g)
		}
	}
	if err != nil || uid <= 0 || gid <= 0 {
		return 0, 0, usageError{fmt.Sprintf("invoke: --uid %q: want UID[:GID], non-root numbers such as 993:990", s)}
	}
	return uid, gid, nil
}
