package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	"github.com/urfave/cli/v2"
)

// Categories of the flags in --help.
const (
	categoryImage   = "Image"
	categoryClosure = "Closure"
	categoryEvents  = "S3 events"
)

// closureFlags are the flags that choose the program an image runs and its
// closure, with the traced run: one set, with one meaning, on inspect,
// package and deploy, so that the three commands compute the same closure
// from the same flags (image.Resolve, through closurePackageOptions).
func closureFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "entrypoint", Category: categoryClosure,
			Usage: "override the image's ENTRYPOINT: a `PROGRAM` or a JSON array, e.g. '[\"/bin/sh\",\"-c\",\"tool \\\"$1\\\"\",\"sh\",\"{input}\"]' " +
				"(with --input file, pass {input} to a shell as an argument, \"$1\", never inside the -c code); clears CMD unless --cmd is given too",
			Action: func(_ *cli.Context, s string) error { _, err := parseCommand("--entrypoint", s, false); return err }},
		&cli.StringFlag{Name: "cmd", Category: categoryClosure,
			Usage:  "override the image's CMD: `ARGS` split on spaces, or a JSON array '[\"--fast\",\"{input}\"]'; {output} is replaced by a fresh file under /tmp uploaded as the output instead of stdout",
			Action: func(_ *cli.Context, s string) error { _, err := parseCommand("--cmd", s, true); return err }},
		&cli.StringSliceFlag{Name: "include", Category: categoryClosure,
			Usage: "add the image files matching `GLOB` to the closure (absolute, ** for any depth; repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Category: categoryClosure,
			Usage: "leave the image files matching `GLOB` out of the closure (repeatable), e.g. to get under Lambda's 250 MB"},
		&cli.BoolFlag{Name: "gconv", Category: categoryClosure,
			Usage: "add glibc's gconv modules (iconv character sets, about 8 MB) to the closure"},
		noScanFlag(categoryClosure),
		noDataFlag(categoryClosure),
		// --input is a closure flag because the traced run gets its
		// sample as the function gets its input: {input} means the same
		// on Lambda, in invoke and under --trace.
		&cli.StringFlag{Name: "input", Category: categoryClosure, Value: "stdin",
			Usage: "how the input reaches the program: `MODE` stdin, or file (its path replaces {input} in the arguments); the input is the uploaded object on Lambda, " +
				"the --trace sample in a traced run (package warns when {input} or {output} stands inside a shell's -c code)",
			Action: oneOf("input", "stdin", "file")},
		&cli.StringFlag{Name: "trace", Category: categoryClosure, TakesFile: true,
			Usage: "run the program once on the sample `FILE` in a sandbox of the image (Linux, the image's architecture, root or user namespaces) and add every image file it opens or executes (\"seen at run time\"); " +
				"the sample reaches it as --input says, and {output} becomes " + image.TraceOutputPath},
		// A zero timeout is refused rather than read as "the default" or
		// "no limit": the traced run is always bounded, and a value that
		// silently meant 30 s would surprise.
		&cli.DurationFlag{Name: "trace-timeout", Category: categoryClosure, Value: image.DefaultTraceTimeout,
			Usage: "kill the traced run after `DURATION` (more than 0); what it saw until then is kept",
			Action: func(_ *cli.Context, d time.Duration) error {
				if d <= 0 {
					return usageError{fmt.Sprintf("--trace-timeout %s: want a duration above 0 (the traced run is always bounded)", d)}
				}
				return nil
			}},
	}
}

// imageFlags are the flags of the commands that package an image (package,
// deploy): which platform and program, which files, and how the function
// meets S3. They map to image.Open and lambda.Package options through
// openOptions and packageOptions.
func imageFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "platform", Category: categoryImage, DefaultText: image.DefaultPlatform,
			Usage: "platform `OS/ARCH[/VARIANT]` to select from a multi-platform image (linux/amd64 or linux/arm64 run on Lambda)"},
		&cli.BoolFlag{Name: "writable-workdir", Category: categoryImage,
			Usage: "run the program in a writable copy of its WORKDIR under /tmp (Lambda's /var/task is read-only)"},
		&cli.BoolFlag{Name: "pass-aws-credentials", Category: categoryImage,
			Usage: "pass the function's AWS credentials, region and endpoints (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, " +
				"AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL*) to a program that calls AWS itself; without it the program sees no AWS_* variable"},
		&cli.StringFlag{Name: "stdout", Category: categoryEvents, Value: "file",
			Usage:  "what the program writes its output to: `MODE` file (under /tmp, uploaded as it grows; runtimes such as Fortran's buffer only on files), or pipe",
			Action: oneOf("stdout", "file", "pipe")},
		&cli.StringFlag{Name: "prefix", Category: categoryEvents, Value: lambda.DefaultInputPrefix,
			Usage: "run on uploads whose key starts with `PREFIX`; it is removed from the output key"},
		&cli.StringFlag{Name: "suffix", Category: categoryEvents, Value: lambda.DefaultInputSuffix,
			Usage: "run on uploads whose key ends with `SUFFIX` (\"\" for every key)"},
		&cli.StringFlag{Name: "output-bucket", Category: categoryEvents,
			Usage: "write the program's output to `BUCKET` (default: the upload's bucket)"},
		&cli.StringFlag{Name: "output-prefix", Category: categoryEvents, Value: lambda.DefaultOutputPrefix,
			Usage: "output key `PREFIX`: PREFIX + key without --prefix + --output-suffix"},
		&cli.StringFlag{Name: "output-suffix", Category: categoryEvents,
			Usage: "`SUFFIX` appended to output keys"},
		&cli.BoolFlag{Name: "stdout-also", Category: categoryEvents,
			Usage: "with {output} in the arguments or --output-dir, also keep the program's stdout as OUTPUT_KEY.stdout (else it goes to the log)"},
		&cli.StringFlag{Name: "output-dir", Category: categoryEvents,
			Usage: "the program writes its output files into `DIR` (an absolute image path, made writable under /tmp): after a successful run each file it " +
				"created or changed is uploaded as --output-prefix + key without --prefix and --suffix + /PATH, then _manifest.json beside them"},
	}, closureFlags()...)
}

// categoryFormat groups --format and --slim in --help.
const categoryFormat = "Package format"

// formatFlags are --format and --slim (package, deploy). def is --format's
// default; "" lets the command infer it (package: from -o).
func formatFlags(def, defText string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Category: categoryFormat, Value: def, DefaultText: defText,
			Usage: "`FORMAT` zip (files under /var/task), image (a Lambda container image: files at their original paths), " +
				"or auto (a zip unless closure files name image paths a zip would move, or it would exceed 250 MB)",
			Action: oneOf("format", lambda.FormatZip, lambda.FormatImage, lambda.FormatAuto)},
		&cli.BoolFlag{Name: "slim", Category: categoryFormat,
			Usage: "image format: only the closure at its original paths instead of the whole image (smaller, a faster first cold start; for a closure you trust)"},
	}
}

// openOptions maps the image flags to image.Open options; progress and
// logs go to stderr.
func openOptions(c *cli.Context) []image.Option {
	opts := []image.Option{image.WithProgress(stderr(c)), image.WithLogger(logger(c))}
	if c.IsSet("platform") {
		opts = append(opts, image.WithPlatform(c.String("platform")))
	}
	return opts
}

// closurePackageOptions maps the closure flags (closureFlags) to the
// lambda.Package options that set up image.Resolve: the command override,
// the closure options, the input mode and the trace. inspect resolves with
// the same options (lambda.ResolveOptions). The --entrypoint and --cmd
// values were checked when the flags were parsed.
func closurePackageOptions(c *cli.Context) []lambda.PackageOption {
	var ov image.Override
	if c.IsSet("entrypoint") {
		ov.Entrypoint, _ = parseCommand("--entrypoint", c.String("entrypoint"), false)
		ov.EntrypointSet = true
	}
	if c.IsSet("cmd") {
		ov.Cmd, _ = parseCommand("--cmd", c.String("cmd"), true)
		ov.CmdSet = true
	}
	closure := []image.ClosureOption{image.WithGconv(c.Bool("gconv"))}
	if g := c.StringSlice("include"); len(g) > 0 {
		closure = append(closure, image.WithInclude(g...))
	}
	if g := c.StringSlice("exclude"); len(g) > 0 {
		closure = append(closure, image.WithExclude(g...))
	}
	closure = append(closure, ruleOptions(c)...)
	closure = append(closure, image.WithClosureLogger(logger(c)))
	opts := []lambda.PackageOption{
		lambda.WithCommandOverride(ov),
		lambda.WithClosureOptions(closure...),
		lambda.WithInput(c.String("input")),
		lambda.WithLogger(logger(c)),
	}
	if c.IsSet("trace") {
		opts = append(opts, lambda.WithTrace(c.String("trace"), image.WithTraceTimeout(c.Duration("trace-timeout")), image.WithTraceLogger(logger(c))))
	}
	return opts
}

// packageOptions maps the image flags to lambda.Package options.
func packageOptions(c *cli.Context) []lambda.PackageOption {
	opts := append(closurePackageOptions(c),
		lambda.WithStdout(c.String("stdout")),
		lambda.WithPrefix(c.String("prefix")),
		lambda.WithSuffix(c.String("suffix")),
		lambda.WithOutput(c.String("output-bucket"), c.String("output-prefix"), c.String("output-suffix")),
		lambda.WithStdoutAlso(c.Bool("stdout-also")),
		lambda.WithWritableWorkDir(c.Bool("writable-workdir")),
		lambda.WithPassAWSCredentials(c.Bool("pass-aws-credentials")),
		lambda.WithSlim(c.Bool("slim")),
		lambda.WithToolVersion(c.App.Version),
	)
	if c.IsSet("output-dir") {
		opts = append(opts, lambda.WithOutputDir(c.String("output-dir")))
	}
	return opts
}

// noScanFlag is --no-scan, which turns off the content rules.
func noScanFlag(category string) cli.Flag {
	return &cli.BoolFlag{Name: "no-scan", Category: category,
		Usage: "do not read scripts and modules: no commands of shell script bodies, no Python/Perl imports or standard libraries, no interpreter library trees"}
}

// noDataFlag is --no-data, which turns off data rules by name.
func noDataFlag(category string) cli.Flag {
	return &cli.StringSliceFlag{Name: "no-data", Category: category,
		Usage: "leave out the well-known data files of rule `NAME` (repeatable or comma-separated): " +
			"nsswitch (/etc/nsswitch.conf), passwd (/etc/passwd, /etc/group), tz (/etc/localtime, zoneinfo for TZ), " +
			"locale (LANG's locale), certs (/etc/ssl/certs/ca-certificates.crt), or all",
		Action: func(_ *cli.Context, names []string) error {
			if err := image.CheckDataRules(names...); err != nil {
				return usageError{err.Error()}
			}
			return nil
		}}
}

// ruleOptions maps --no-scan and --no-data to closure options.
func ruleOptions(c *cli.Context) []image.ClosureOption {
	var opts []image.ClosureOption
	if c.Bool("no-scan") {
		opts = append(opts, image.WithScan(false))
	}
	if n := c.StringSlice("no-data"); len(n) > 0 {
		opts = append(opts, image.WithoutData(n...))
	}
	return opts
}

// parseCommand reads an --entrypoint or --cmd value: a JSON array of
// strings when it starts with "[", else one program (split: false) or
// arguments split on white space (split: true). "" is an empty list.
func parseCommand(flag, s string, split bool) ([]string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var v []string
		if err := json.Unmarshal([]byte(t), &v); err != nil {
			return nil, usageError{fmt.Sprintf("%s %q: not a JSON array of strings: %v", flag, s, err)}
		}
		return v, nil
	}
	if t == "" {
		return []string{}, nil
	}
	if split {
		return strings.Fields(t), nil
	}
	return []string{s}, nil
}

// errHelpShown is returned by positionalArgs when a --help after the
// arguments printed the command's help: the command has nothing more to do.
var errHelpShown = errors.New("help shown")

// positionalArgs returns the command's positional arguments, parsing the
// flags given after them ("extract package IMAGE -o fn.zip"): urfave/cli v2
// stops at the first argument and leaves the rest in Args. Flags are those
// of the command and of the app; "--" ends them. A flag's Action (the
// validation of --entrypoint, --cmd, --input) runs as it would have.
func positionalArgs(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := findFlag(c, name)
		if f == nil {
			return nil, usageError{fmt.Sprintf("flag provided but not defined: %s", a)}
		}
		if f == cli.HelpFlag {
			parent := c
			if l := c.Lineage(); len(l) > 1 {
				parent = l[1]
			}
			if err := cli.ShowCommandHelp(parent, c.Command.Name); err != nil {
				return nil, err
			}
			return nil, errHelpShown
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, usageError{fmt.Sprintf("flag needs an argument: %s", a)}
			}
			i++
			value = args[i]
		}
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, usageError{fmt.Sprintf("invalid value %q for flag %s: %v", value, a, err)}
		}
		if af, ok := f.(cli.ActionableFlag); ok {
			if err := af.RunAction(c); err != nil {
				return nil, err
			}
		}
	}
	return pos, nil
}

// findFlag finds the command's or the app's flag called name.
func findFlag(c *cli.Context, name string) cli.Flag {
	for _, flags := range [][]cli.Flag{c.Command.Flags, c.App.Flags, {cli.HelpFlag}} {
		for _, f := range flags {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// oneOf checks that the flag name's value is one of values, else it is a
// usage error naming them.
func oneOf(name string, values ...string) func(*cli.Context, string) error {
	return func(_ *cli.Context, v string) error {
		if slices.Contains(values, v) {
			return nil
		}
		return usageError{fmt.Sprintf("--%s %q: want %s", name, v, strings.Join(values, " or "))}
	}
}
