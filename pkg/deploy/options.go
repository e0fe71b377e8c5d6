package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"time"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/comingout/extract/pkg/lambda"
)

// Option configures a deploy: Zip, ZipFile, Image and Container.
type Option interface {
	applyDeploy(*deployOptions) error
}

// DestroyOption configures Destroy.
type DestroyOption interface {
	applyDestroy(*destroyOptions) error
}

// CommonOption configures a deploy and Destroy alike: WithClients,
// WithLogger, WithDryRun, WithCodeBucket and WithRepository.
type CommonOption interface {
	Option
	DestroyOption
}

// deployOption sets a deploy-only setting.
type deployOption func(*deployOptions) error

func (f deployOption) applyDeploy(o *deployOptions) error { return f(o) }

// destroyOption sets a Destroy-only setting.
type destroyOption func(*destroyOptions) error

func (f destroyOption) applyDestroy(o *destroyOptions) error { return f(o) }

// commonOption sets a setting a deploy and Destroy share.
type commonOption func(*commonOptions) error

func (f commonOption) applyDeploy(o *deployOptions) error   { return f(&o.commonOptions) }
func (f commonOption) applyDestroy(o *destroyOptions) error { return f(&o.commonOptions) }

// commonOptions are the settings of CommonOption.
type commonOptions struct {
	clients *Clients
	log     *slog.Logger
	dryRun  bool
	// codeBucket is where a deploy uploads large zips and Destroy deletes
	// them from (WithCodeBucket).
	codeBucket string
	// repository is WithRepository's reference.
	repository string
}

// clientsOrDefault returns the clients WithClients set, else clients for
// the standard AWS configuration chain.
func (o *commonOptions) clientsOrDefault(ctx context.Context) (*Clients, error) {
	if o.clients == nil {
		cfg, err := LoadAWSConfig(ctx, "", "")
		if err != nil {
			return nil, err
		}
		o.clients = NewClients(cfg)
	}
	return o.clients, nil
}

// deployOptions are a deploy's settings.
type deployOptions struct {
	commonOptions
	role      string
	memory    int32
	timeout   int32
	ephemeral int32
	env       map[string]string
	publish   bool
	alias     string
	limits    *CodeLimits
	// format is how Image packages (WithFormat).
	format string
	// logFormat is WithLogFormat's.
	logFormat lambdatypes.LogFormat
	// onWarning is WithWarnings's; nil logs each warning's message.
	onWarning func(lambda.Warning)

	// Retry and wait settings; tests shorten them.
	roleRetryDelays []time.Duration
	conflictRetries int
	waitTimeout     time.Duration
	waitMinDelay    time.Duration
	sleep           func(context.Context, time.Duration) error
}

func makeDeployOptions(opts []Option) (*deployOptions, error) {
	o := &deployOptions{
		commonOptions: commonOptions{log: slog.New(slog.DiscardHandler)},
		format:        lambda.FormatZip,
		logFormat:     lambdatypes.LogFormatText,
		memory:        512,
		timeout:       60,
		ephemeral:     512,
		// About 45 seconds in all: new IAM roles usually become assumable
		// by Lambda within ten.
		roleRetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		conflictRetries: 5,
		waitTimeout:     5 * time.Minute,
		sleep:           sleepCtx,
	}
	var errs []error
	for _, opt := range opts {
		if err := opt.applyDeploy(o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// destroyOptions are Destroy's settings.
type destroyOptions struct {
	commonOptions
	// purgeImages is WithPurgeImages's.
	purgeImages bool
}

func makeDestroyOptions(opts []DestroyOption) (*destroyOptions, error) {
	o := &destroyOptions{commonOptions: commonOptions{log: slog.New(slog.DiscardHandler)}}
	var errs []error
	for _, opt := range opts {
		if err := opt.applyDestroy(o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithClients sets the AWS clients. The default loads the standard AWS
// configuration chain (LoadAWSConfig with no region or profile override).
func WithClients(c *Clients) CommonOption {
	return commonOption(func(o *commonOptions) error {
		if c == nil || c.Lambda == nil || c.IAM == nil || c.S3 == nil || c.STS == nil {
			return errors.New("WithClients: every client (Lambda, IAM, S3, STS) is required")
		}
		o.clients = c
		return nil
	})
}

// WithLogger sets the logger that reports each change and, at debug
// level, each read. The default discards.
func WithLogger(l *slog.Logger) CommonOption {
	return commonOption(func(o *commonOptions) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.log = l
		return nil
	})
}

// WithRoleARN makes the function use an existing role instead of the role
// extract-NAME that deploy creates and maintains by default.
func WithRoleARN(arn string) Option {
	return deployOption(func(o *deployOptions) error {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":role/") {
			return fmt.Errorf("role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", arn)
		}
		o.role = arn
		return nil
	})
}

// WithFunctionMemory sets the function's memory in MB, 128 to 10240 (default
// 512).
func WithFunctionMemory(mb int) Option {
	return deployOption(func(o *deployOptions) error {
		if mb < 128 || mb > 10240 {
			return fmt.Errorf("memory %d MB is outside Lambda's 128 to 10240 MB", mb)
		}
		o.memory = int32(mb)
		return nil
	})
}

// WithFunctionTimeout sets how long one invocation may run, whole seconds
// from 1s to 900s (default 60s).
func WithFunctionTimeout(d time.Duration) Option {
	return deployOption(func(o *deployOptions) error {
		if d < time.Second || d > 900*time.Second || d%time.Second != 0 {
			return fmt.Errorf("timeout %s is not a whole number of seconds from 1s to 900s", d)
		}
		o.timeout = int32(d / time.Second)
		return nil
	})
}

// WithEphemeralStorage sets the size of /tmp in MB, 512 to 10240 (default
// 512).
func WithEphemeralStorage(mb int) Option {
	return deployOption(func(o *deployOptions) error {
		if mb < 512 || mb > 10240 {
			return fmt.Errorf("ephemeral storage %d MB is outside Lambda's 512 to 10240 MB", mb)
		}
		o.ephemeral = int32(mb)
		return nil
	})
}

var envKeyRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// reservedEnv are variables Lambda sets itself and refuses in a function's
// configuration.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// WithFunctionEnv sets the function's environment variables (default none;
// the image's ENV travels in the package's manifest). Keys must be valid
// Lambda variable names and not reserved by Lambda.
func WithFunctionEnv(env map[string]string) Option {
	return deployOption(func(o *deployOptions) error {
		var errs []error
		for k := range env {
			switch {
			case !envKeyRE.MatchString(k):
				errs = append(errs, fmt.Errorf("environment variable name %q is not a letter followed by letters, digits and underscores", k))
			case reservedEnv[k]:
				errs = append(errs, fmt.Errorf("environment variable %q is reserved by Lambda", k))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.env = maps.Clone(env)
		return nil
	})
}

// WithPublish publishes a version when the code or configuration changed
// (or no version matches them yet). Default false: only $LATEST is updated.
func WithPublish(publish bool) Option {
	return deployOption(func(o *deployOptions) error {
		o.publish = publish
		return nil
	})
}

var aliasRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// WithAlias points the alias name at the published version (with
// WithPublish) or at $LATEST, creating it when missing.
func WithAlias(name string) Option {
	return deployOption(func(o *deployOptions) error {
		if !aliasRE.MatchString(name) || strings.Trim(name, "0123456789") == "" {
			return fmt.Errorf("alias %q must be 1 to 128 letters, digits, - or _, and not only digits", name)
		}
		o.alias = name
		return nil
	})
}

// WithCodeBucket uploads code too large for a direct upload to this bucket
// (in the function's region) as extract/NAME/<sha256 hex>.zip. Destroy
// deletes the objects under extract/NAME/ in it.
func WithCodeBucket(bucket string) CommonOption {
	return commonOption(func(o *commonOptions) error {
		if bucket == "" {
			return errors.New("WithCodeBucket: empty bucket name")
		}
		o.codeBucket = bucket
		return nil
	})
}

// CodeLimits are Lambda's code size limits in bytes.
type CodeLimits struct {
	// DirectUpload is the largest zip sent in the API request itself;
	// larger zips need a code bucket.
	DirectUpload int64
	// Unzipped is the largest the code may be once unpacked.
	Unzipped int64
}

// DefaultCodeLimits are Lambda's documented limits, used when
// GetAccountSettings is not allowed: 50 MB zipped, 250 MB unzipped.
var DefaultCodeLimits = CodeLimits{DirectUpload: lambda.MaxDirectUploadSize, Unzipped: lambda.MaxUnzippedSize}

// WithLimits sets the code size limits instead of asking GetAccountSettings
// (and falling back to DefaultCodeLimits).
func WithLimits(l CodeLimits) Option {
	return deployOption(func(o *deployOptions) error {
		if l.DirectUpload <= 0 || l.Unzipped <= 0 {
			return fmt.Errorf("WithLimits: limits must be positive, got %+v", l)
		}
		o.limits = &l
		return nil
	})
}

// WithDryRun makes a deploy or Destroy read the current state and report
// the changes it would make, calling no API that changes anything.
func WithDryRun(dryRun bool) CommonOption {
	return commonOption(func(o *commonOptions) error {
		o.dryRun = dryRun
		return nil
	})
}

// WithWarnings hands each warning of the package Image makes to fn instead
// of logging its message, so a caller can add its own advice to each kind
// (the CLI names the flag that addresses it).
func WithWarnings(fn func(lambda.Warning)) Option {
	return deployOption(func(o *deployOptions) error {
		if fn == nil {
			return errors.New("WithWarnings: nil function")
		}
		o.onWarning = fn
		return nil
	})
}

// warn reports a packaging warning: to WithWarnings's function, else to
// the log.
func (o *deployOptions) warn(w lambda.Warning) {
	if o.onWarning != nil {
		o.onWarning(w)
		return
	}
	o.log.Warn(w.String())
}

// WithFormat sets how Image packages the image: lambda.FormatZip (the
// default), lambda.FormatImage (a container image, deployed as Container
// does), or lambda.FormatAuto, the format lambda.Prepare picks for it (a zip unless the
// program needs files at their original paths or is too big for one; the
// CLI's default).
func WithFormat(format string) Option {
	return deployOption(func(o *deployOptions) error {
		switch format {
		case lambda.FormatZip, lambda.FormatImage, lambda.FormatAuto:
			o.format = format
			return nil
		}
		return fmt.Errorf("format %q is not %s, %s or %s", format, lambda.FormatZip, lambda.FormatImage, lambda.FormatAuto)
	})
}

// Log formats of WithLogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// WithLogFormat sets the function's log format (its LoggingConfig):
// LogFormatText (the default), the lines as the bootstrap and the program
// write them, or LogFormatJSON, Lambda's JSON format, in which the
// bootstrap writes one JSON object per line (AWS_LAMBDA_LOG_FORMAT=JSON).
// A deploy sets it on every run, so a function deployed with JSON goes back
// to text when deployed without it.
func WithLogFormat(format string) Option {
	return deployOption(func(o *deployOptions) error {
		switch format {
		case LogFormatText:
			o.logFormat = lambdatypes.LogFormatText
		case LogFormatJSON:
			o.logFormat = lambdatypes.LogFormatJson
		default:
			return fmt.Errorf("log format %q is not %s or %s", format, LogFormatText, LogFormatJSON)
		}
		return nil
	})
}

// WithRepository pushes container images to ref (REGISTRY/NAME, no tag or
// digest) instead of the ECR repository ACCOUNT.dkr.ecr.REGION.amazonaws.com/
// extract-NAME (see RepositoryName) that deploy creates when missing. An ECR
// repository of the deploying account that does not exist is created, as
// the default one is. Destroy purges this repository (WithPurgeImages)
// instead of the function's.
func WithRepository(ref string) CommonOption {
	return commonOption(func(o *commonOptions) error {
		if _, err := parseRepository(ref); err != nil {
			return err
		}
		o.repository = ref
		return nil
	})
}

// WithPurgeImages makes Destroy delete the container images deploy pushed
// for the function (the tags extract-NAME-* in the function's repository),
// and the ECR repository itself when extract created it (tag
// managed-by=extract) and nothing else is left in it. Default false:
// images are kept.
func WithPurgeImages(purge bool) DestroyOption {
	return destroyOption(func(o *destroyOptions) error {
		o.purgeImages = purge
		return nil
	})
}
