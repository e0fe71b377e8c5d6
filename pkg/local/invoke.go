package local

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/comingout/extract/internal/syncio"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// LocalBucket is the bucket WithCSV puts the CSV in.
const LocalBucket = "local"

// DefaultTimeout is the invocation timeout unless WithTimeout
// sets another.
const DefaultTimeout = 30 * time.Second

// maxUnzip bounds what Invoke unpacks: Lambda's own limit is 250 MB.
const maxUnzip = 2 << 30

// Option configures Invoke.
type Option func(*options) error

type options struct {
	event       []byte
	csv         string
	bucket, key string
	timeout     time.Duration
	logger      *slog.Logger
	logWriter   io.Writer
	output      io.Writer
	memoryMB    int
	// saveDir is WithSaveOutputs's directory.
	saveDir string
	// jsonLogs is WithLogFormat(LogFormatJSON).
	jsonLogs bool
	// callerCreds hands the caller's credentials to the function also
	// when S3 is a local endpoint.
	callerCreds bool
	image       imageOptions
}

// WithEvent sends event (JSON, usually an S3 event) as the invocation's
// payload.
func WithEvent(event []byte) Option {
	return func(o *options) error {
		if !json.Valid(event) {
			return errors.New("the event is not valid JSON")
		}
		o.event = event
		return nil
	}
}

// WithCSV runs the function on a local file: it is put at the package's
// input prefix + its base name ("input/day1.csv") in the bucket "local" of the S3 endpoint AWS_ENDPOINT_URL_S3 names, or of an
// in-process local S3 when that is unset, and the output object is fetched
// into the result's Output (or streamed to WithOutputWriter's writer): the
// object at the output key, or, for a program that writes an output
// directory and no "{output}" file, its _manifest.json. The result's
// Outputs list every object the run wrote; WithSaveOutputs saves them all.
func WithCSV(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("empty CSV path")
		}
		o.csv = path
		return nil
	}
}

// WithOutputWriter streams the output object of a WithCSV invocation to w
// instead of keeping it in the result's Output.
func WithOutputWriter(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil output writer")
		}
		o.output = w
		return nil
	}
}

// WithS3Object sends the S3 event S3 would send for a Put of bucket/key,
// with the key URL-encoded the way S3 does.
func WithS3Object(bucket, key string) Option {
	return func(o *options) error {
		if bucket == "" || key == "" {
			return errors.New("empty bucket or key")
		}
		o.bucket, o.key = bucket, key
		return nil
	}
}

// WithTimeout sets the invocation timeout (default 30s; Lambda allows
// up to 15 minutes).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > 15*time.Minute {
			return fmt.Errorf("timeout %v is not between 0 and 15m", d)
		}
		o.timeout = d
		return nil
	}
}

// WithLogger sets the logger for Invoke's own messages (default:
// discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithLogWriter receives the function's log: the bootstrap's stdout and
// stderr, with the program's stderr lines (default: discard).
func WithLogWriter(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("nil log writer")
		}
		o.logWriter = w
		return nil
	}
}

// WithMemorySize sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE for the function
// (default 128; it limits nothing locally).
func WithMemorySize(mb int) Option {
	return func(o *options) error {
		if mb < 128 || mb > 10240 {
			return fmt.Errorf("memory size %d MB is not between 128 and 10240", mb)
		}
		o.memoryMB = mb
		return nil
	}
}

// The function's log formats, the values a deployed function's
// LoggingConfig takes (lower case, as the deploy options spell them).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// WithLogFormat sets the function's log format as a deployed function's
// LoggingConfig does on Lambda: LogFormatText (the default) or
// LogFormatJSON, which sets AWS_LAMBDA_LOG_FORMAT=JSON for the bootstrap:
// it then writes one JSON object per line.
func WithLogFormat(format string) Option {
	return func(o *options) error {
		switch format {
		case LogFormatText, LogFormatJSON:
			o.jsonLogs = format == LogFormatJSON
			return nil
		}
		return fmt.Errorf("log format %q is not %s or %s", format, LogFormatText, LogFormatJSON)
	}
}

// lambdaLogEnv is the log format variable Lambda sets for a function
// whose LoggingConfig says JSON.
func (o *options) lambdaLogEnv() []string {
	if o.jsonLogs {
		return []string{"AWS_LAMBDA_LOG_FORMAT=JSON"}
	}
	return nil
}

// WithCallerCredentials hands the caller's AWS credentials to the function
// also when S3 is a local endpoint: AWS_ENDPOINT_URL_S3 (or
// AWS_ENDPOINT_URL) on a loopback address or "localhost". By default such
// an endpoint, and the function, get per-invocation dummy credentials
// instead, since whatever listens there would receive yours (moto accepts
// any; a local MinIO wants its own, given as AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY with this option).
func WithCallerCredentials() Option {
	return func(o *options) error {
		o.callerCreds = true
		return nil
	}
}

// InvokeError reports an invocation that failed: the function's error, a
// timeout or a runtime that did not start. Result holds everything known.
type InvokeError struct {
	Result *InvokeResult
}

// Error reads like "invocation failed: RecordError: processing ...".
func (e *InvokeError) Error() string {
	return "invocation failed: " + e.Result.Error.Error()
}

// Invoke runs the package pkg the way Lambda would, on this machine: it
// unpacks it to a temporary directory, serves the Runtime API, starts the
// package's own bootstrap with a Lambda-like environment, sends one event
// and returns the answer. Exactly one of WithEvent, WithCSV and
// WithS3Object says what to send.
//
// pkg is a zip (a path to a zip file, or any path ending in ".zip") or a
// Lambda container image in image.Open's syntax ("oci:DIR",
// "docker-archive:FILE", a registry reference). An image runs the way Lambda
// runs container images: flattened into a temporary root, its ENTRYPOINT
// (+CMD) started chrooted there in a private mount namespace, the root
// read-only, /tmp fresh and writable, as a non-root user (WithUID), with
// its ENV and WORKDIR. That needs Linux and root.
//
// S3 is the endpoint AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) names when
// set; else, with WithCSV, an in-process S3; else AWS itself, with the
// caller's credentials. The in-process S3 and an endpoint on a loopback
// address get per-invocation dummy credentials, not the caller's (unless
// WithCallerCredentials); the in-process S3 and the Runtime API refuse
// requests without them, or whose Host header is not their 127.0.0.1:port.
//
// The package's link directory (Manifest.LinkDir, under /tmp) is pointed at
// the unpacked package for the invocation and removed afterwards: two
// concurrent invocations of the same package share it, one after the other
// (a lock file next to it). A link or lock that is not this user's, or not
// what Invoke makes (a symlink to the package, a regular file), is refused,
// never followed.
//
// A failed invocation returns the result and an *InvokeError.
func Invoke(ctx context.Context, pkg string, opts ...Option) (*InvokeResult, error) {
	o := options{
		timeout:   DefaultTimeout,
		logger:    slog.New(slog.DiscardHandler),
		logWriter: io.Discard,
		memoryMB:  128,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
	}
	n := 0
	for _, set := range []bool{o.event != nil, o.csv != "", o.bucket != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("invoke: give exactly one of an event, a CSV file or a bucket and key")
	}
	if !isZipPackage(pkg) {
		return invokeImage(ctx, pkg, o)
	}
	inv := &invocation{o: o, zipPath: pkg}
	defer inv.cleanup()
	return inv.run(ctx)
}

// invocation is one run of Invoke and the resources it must release.
type invocation struct {
	o       options
	zipPath string

	dir     string // the unpacked package (the task root)
	tmp     string // TMPDIR of the function
	work    string // holds dir and tmp
	linkDir string
	unlock  func() // releases the link directory's lock
	// inputPrefix is the package's trigger prefix, under which WithCSV
	// puts the file; outputPrefix its output prefix, which
	// WithSaveOutputs removes from the keys.
	inputPrefix, outputPrefix string
	api                       *RuntimeAPI
	s3local                   *S3
	s3                        *s3.Client
	cmd                       *exec.Cmd
	exited                    chan struct{}
	exitErr                   error
}

func (inv *invocation) run(ctx context.Context) (*InvokeResult, error) {
	log := inv.o.logger
	work, err := os.MkdirTemp("", "extract-invoke-")
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	inv.work = work
	inv.dir = filepath.Join(work, "task")
	inv.tmp = filepath.Join(work, "tmp")
	if err := os.Mkdir(inv.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	if err := Unzip(inv.zipPath, inv.dir); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(inv.dir, xruntime.ManifestPath)); err == nil {
		var m xruntime.Manifest
		if json.Unmarshal(b, &m) == nil {
			inv.linkDir = m.LinkDir
			inv.inputPrefix, inv.outputPrefix = m.Input.Prefix, m.Output.Prefix
		}
	}
	if inv.linkDir != "" {
		if inv.unlock, err = lockLinkDir(ctx, inv.linkDir, log); err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
		if err := pointLinkDir(inv.linkDir, inv.dir); err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
	}
	log.Debug("package unpacked", "zip", inv.zipPath, "dir", inv.dir)

	env, err := inv.s3Setup(ctx)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	payload := inv.o.event
	if payload == nil {
		if payload, err = inv.eventPayload(ctx); err != nil {
			return nil, fmt.Errorf("invoke: %w", err)
		}
	}

	name := strings.TrimSuffix(filepath.Base(inv.zipPath), filepath.Ext(inv.zipPath))
	region := regionFromEnv()
	inv.api, err = NewRuntimeAPI(RuntimeAPIOptions{FunctionName: name, Region: region, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+inv.api.Addr(),
		"LAMBDA_TASK_ROOT="+inv.dir,
		"LAMBDA_RUNTIME_DIR="+inv.dir,
		"AWS_LAMBDA_FUNCTION_NAME="+name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", inv.o.memoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+name,
		"AWS_LAMBDA_LOG_STREAM_NAME=local",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"_HANDLER=bootstrap",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		// Lambda's own PATH and LD_LIBRARY_PATH: the bootstrap must not
		// let the program use them.
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"TMPDIR="+inv.tmp,
	)
	env = append(env, inv.o.lambdaLogEnv()...)

	started := time.Now()
	if err := inv.startBootstrap(env); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	log.Debug("bootstrap started", "pid", inv.cmd.Process.Pid)
	return inv.await(ctx, payload, started)
}

// await sends payload to the bootstrap started at started and waits for its
// answer, or for its exit; with WithCSV it then fetches the output.
func (inv *invocation) await(ctx context.Context, payload []byte, started time.Time) (*InvokeResult, error) {
	ictx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-inv.exited:
			cancel(errBootstrapExited)
		case <-ictx.Done():
		}
	}()
	res, err := inv.api.Invoke(ictx, payload, inv.o.timeout)
	if err != nil {
		if !errors.Is(err, errBootstrapExited) {
			return nil, fmt.Errorf("invoke: %w", err)
		}
		res = &InvokeResult{Error: inv.exitError()}
		if ie := inv.api.InitError(); ie != nil {
			res.Error = ie
		}
	}
	if first := inv.api.FirstNext(); !first.IsZero() {
		res.InitDuration = first.Sub(started)
	}
	if res.Error != nil {
		return res, &InvokeError{Result: res}
	}
	if inv.o.csv != "" {
		if err := inv.fetchOutput(ctx, res); err != nil {
			return res, fmt.Errorf("invoke: %w", err)
		}
	}
	return res, nil
}

var errBootstrapExited = errors.New("the bootstrap exited")

// exitError describes how the bootstrap ended.
func (inv *invocation) exitError() *FunctionError {
	msg := "the bootstrap exited"
	if inv.exitErr != nil {
		msg += ": " + inv.exitErr.Error()
	}
	return &FunctionError{ErrorType: ErrorTypeExitError, ErrorMessage: msg}
}

// s3Setup prepares S3 for the invocation and returns the S3 part of the
// function's environment.
func (inv *invocation) s3Setup(ctx context.Context) ([]string, error) {
	var env []string
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	for _, k := range []string{"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if endpoint == "" && inv.o.csv != "" {
		s, err := NewS3(filepath.Join(inv.work, "s3"), inv.o.logger)
		if err != nil {
			return nil, err
		}
		inv.s3local = s
		endpoint = s.URL()
		inv.o.logger.Debug("local S3 started", "endpoint", endpoint)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(regionFromEnv()), config.WithLogger(logging.Nop{}))
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if endpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_S3="+endpoint)
	}
	useLocal := func() error {
		local, err := newLocalCredentials()
		if err != nil {
			return err
		}
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return local, nil })
		env = append(env, "AWS_ACCESS_KEY_ID="+local.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+local.SecretAccessKey)
		if inv.s3local != nil {
			inv.s3local.RequireAccessKey(local.AccessKeyID)
		}
		return nil
	}
	switch {
	case inv.s3local != nil:
		if err := useLocal(); err != nil {
			return nil, err
		}
	case endpoint != "" && localEndpoint(endpoint) && !inv.o.callerCreds:
		inv.o.logger.Debug("S3 is a local endpoint: the function gets dummy credentials, not yours (--aws-credentials passes yours)", "endpoint", endpoint)
		if err := useLocal(); err != nil {
			return nil, err
		}
	default:
		creds, err := cfg.Credentials.Retrieve(ctx)
		switch {
		case err == nil:
			env = append(env, "AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey)
			if creds.SessionToken != "" {
				env = append(env, "AWS_SESSION_TOKEN="+creds.SessionToken)
			}
		case endpoint != "":
			// Local endpoints such as moto accept any credentials.
			if err := useLocal(); err != nil {
				return nil, err
			}
		default:
			inv.o.logger.Warn("no AWS credentials found; the function's S3 calls will fail", "err", err)
		}
	}
	inv.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	})
	return env, nil
}

// newLocalCredentials returns random credentials for one invocation's
// local S3 endpoint.
func newLocalCredentials() (aws.Credentials, error) {
	var b [28]byte
	if _, err := rand.Read(b[:]); err != nil {
		return aws.Credentials{}, fmt.Errorf("making local credentials: %w", err)
	}
	return aws.Credentials{
		AccessKeyID:     "LOCAL" + strings.ToUpper(hex.EncodeToString(b[:8])),
		SecretAccessKey: hex.EncodeToString(b[8:]),
		Source:          "extract invoke",
	}, nil
}

// localEndpoint says whether the endpoint URL names this machine: a
// loopback or unspecified address, "localhost" or a name under it. An
// unparsable URL counts as local (its credentials stay dummy ones).
func localEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return true
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

func regionFromEnv() string {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "us-east-1"
}

// eventPayload builds the S3 event for WithCSV (after uploading the file)
// or WithS3Object.
func (inv *invocation) eventPayload(ctx context.Context) ([]byte, error) {
	bucket, key := inv.o.bucket, inv.o.key
	if inv.o.csv != "" {
		bucket, key = LocalBucket, inv.inputPrefix+filepath.Base(inv.o.csv)
		if err := inv.putCSV(ctx, bucket, key); err != nil {
			return nil, err
		}
	}
	return S3PutEvent(bucket, key, regionFromEnv())
}

func (inv *invocation) putCSV(ctx context.Context, bucket, key string) error {
	f, err := os.Open(inv.o.csv)
	if err != nil {
		return err
	}
	defer f.Close()
	if inv.s3local != nil { // in-process: no HTTP, no signing
		if err := inv.s3local.CreateBucket(bucket); err != nil {
			return err
		}
		return inv.s3local.PutObject(bucket, key, f)
	}
	_, err = inv.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("creating bucket %q: %w", bucket, err)
	}
	if _, err := inv.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f}); err != nil {
		return fmt.Errorf("putting %s at s3://%s/%s: %w", inv.o.csv, bucket, key, err)
	}
	return nil
}

// S3PutEvent returns the event S3 sends for an ObjectCreated:Put of
// bucket/key: one record, the key URL-encoded form style ("red+flower.csv").
func S3PutEvent(bucket, key, region string) ([]byte, error) {
	now := time.Now().UTC()
	ev := map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1",
		"eventSource":  "aws:s3",
		"awsRegion":    region,
		"eventTime":    now.Format("2006-01-02T15:04:05.000Z"),
		"eventName":    "ObjectCreated:Put",
		"userIdentity": map[string]string{"principalId": "AWS:LOCAL"},
		"requestParameters": map[string]string{
			"sourceIPAddress": "127.0.0.1",
		},
		"responseElements": map[string]string{
			"x-amz-request-id": newRequestID()[:16],
			"x-amz-id-2":       newRequestID(),
		},
		"s3": map[string]any{
			"s3SchemaVersion": "1.0",
			"configurationId": "extract",
			"bucket": map[string]any{
				"name":          bucket,
				"ownerIdentity": map[string]string{"principalId": "LOCAL"},
				"arn":           "arn:aws:s3:::" + bucket,
			},
			"object": map[string]any{
				"key":       url.QueryEscape(key),
				"sequencer": fmt.Sprintf("%016X", now.UnixNano()),
			},
		},
	}}}
	return json.Marshal(ev)
}

// startBootstrap starts the package's bootstrap, contained by
// startContained: PID 1 of its own PID namespace when this process may make
// one (root), with Pdeathsig, in its own process group.
func (inv *invocation) startBootstrap(env []string) error {
	bin := filepath.Join(inv.dir, "bootstrap")
	fi, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("the package has no bootstrap: %w", err)
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("the package's bootstrap is not executable")
	}
	w := &syncio.Writer{W: inv.o.logWriter}
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{
			Path:        bin,
			Args:        []string{bin},
			Env:         env,
			Dir:         inv.dir,
			Stdout:      w,
			Stderr:      w,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
			WaitDelay:   time.Second,
		}
	}
	if err := inv.startContained(newCmd, nil, true); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			return fmt.Errorf("starting the bootstrap: %w (it is built for another architecture: run on such a host, or install qemu-user-static for its binfmt handler)", err)
		}
		return fmt.Errorf("starting the bootstrap: %w", err)
	}
	return nil
}

// cleanup stops the bootstrap and its children, the servers, and removes
// what the invocation made, the link directory included.
func (inv *invocation) cleanup() {
	if inv.cmd != nil && inv.cmd.Process != nil {
		_ = syscall.Kill(-inv.cmd.Process.Pid, syscall.SIGKILL)
		<-inv.exited
	}
	if inv.api != nil {
		inv.api.Close()
	}
	if inv.s3local != nil {
		inv.s3local.Close()
	}
	if inv.linkDir != "" && inv.dir != "" {
		if target, err := os.Readlink(inv.linkDir); err == nil && target == inv.dir {
			os.Remove(inv.linkDir)
		}
	}
	if inv.unlock != nil {
		inv.unlock()
	}
	if inv.work != "" {
		_ = filepath.WalkDir(inv.work, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o700) // read-only copies must not stop removal
			}
			return nil
		})
		os.RemoveAll(inv.work)
	}
}

// lockLinkDir waits until no other local invocation uses linkDir and
// claims it; unlock releases it. The link directory is one path per
// package — its programs' PT_INTERP names it — so a second invocation of
// the same package would repoint it, and remove it at its end, under the
// first one's running program. (On Lambda every sandbox has its own /tmp.)
// The lock is a flock on linkDir+".lock", released by the kernel if this
// process dies. Unlock removes the file before releasing it, so a waiter
// that then locks the removed file sees it is no longer at the path and
// tries again.
func lockLinkDir(ctx context.Context, linkDir string, log *slog.Logger) (unlock func(), err error) {
	name := linkDir + ".lock"
	for waited := false; ; {
		f, err := openLock(name)
		if err != nil {
			return nil, err
		}
		fd := int(f.Fd())
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			held, herr := f.Stat()
			cur, cerr := os.Lstat(name)
			if herr == nil && cerr == nil && os.SameFile(held, cur) {
				return func() {
					os.Remove(name)
					_ = syscall.Flock(fd, syscall.LOCK_UN)
					f.Close()
				}, nil
			}
			f.Close() // removed by its holder meanwhile: lock the new one
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking the link directory %s: %w", linkDir, err)
		}
		if !waited {
			log.Info("waiting for another `extract invoke` of this package to end (they share its link directory)", "link", linkDir)
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openLock opens the link directory's lock file name, creating it. The
// name is predictable, in a directory every user may write (/tmp): another
// user could have made it first, to hold the lock forever or, as a
// symlink, to make this process create or open a file of its choice. So a
// symlink is refused (and never followed: O_NOFOLLOW), and so is anything
// but a regular file owned by this process's user, checked before opening
// (for a clear error) and on the opened file.
func openLock(name string) (*os.File, error) {
	if fi, err := os.Lstat(name); err == nil {
		if err := checkOurs(fi, name, "the link directory's lock", "a regular file"); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("locking the link directory: %q is a symlink: refusing to follow it (another user may have made it; remove it if it is not yours)", name)
		}
		return nil, fmt.Errorf("locking the link directory: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOurs(fi, name, "the link directory's lock", "a regular file")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOurs refuses a file (Lstat's or Stat's fi of the path name) that is
// not of the wanted kind ("a regular file" or "a symlink") or not owned by
// this process's user.
func checkOurs(fi fs.FileInfo, name, what, kind string) error {
	ok := fi.Mode().IsRegular()
	if kind == "a symlink" {
		ok = fi.Mode()&fs.ModeSymlink != 0
	}
	if !ok {
		return fmt.Errorf("%s %q exists and is not %s (%v): refusing to use it (another user may have made it; remove it if it is not yours)", what, name, kind, fi.Mode().Type())
	}
	if st, isStat := fi.Sys().(*syscall.Stat_t); isStat && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s %q belongs to uid %d, not to this user (uid %d): refusing to use it (another user may have made it; remove it if it is not yours)", what, name, st.Uid, os.Geteuid())
	}
	return nil
}

// pointLinkDir makes linkDir a symlink to dir, the unpacked package, before
// the bootstrap starts (which then finds it in place and leaves it). The
// caller holds the lock, so a symlink of this user's already there is the
// leftover of an invocation that was killed, and is replaced. Anything
// else is refused: the package's programs are started through this path
// (their PT_INTERP names it), so whoever owns it chooses what they run.
func pointLinkDir(linkDir, dir string) error {
	fi, err := os.Lstat(linkDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	default:
		if err := checkOurs(fi, linkDir, "the link directory", "a symlink"); err != nil {
			return err
		}
		if err := os.Remove(linkDir); err != nil {
			return fmt.Errorf("replacing the stale link directory %s: %w", linkDir, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(linkDir), 0o755); err != nil {
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	}
	// Symlink fails if anything appeared at the path meanwhile.
	if err := os.Symlink(dir, linkDir); err != nil {
		return fmt.Errorf("linking %s to the package: %w", linkDir, err)
	}
	return nil
}

// Unzip unpacks the zip at zipPath into the new directory dir, safely:
// entries with absolute paths, ".." components or a path through a
// symlink are refused, symlinks are restored as symlinks (their targets
// are not followed), permission bits are kept (setuid and setgid dropped)
// and at most 2 GiB are written.
func Unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("opening %s: %w", zipPath, err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var total int64
	for _, f := range zr.File {
		name, err := safeEntryName(f.Name)
		if err != nil {
			return fmt.Errorf("unzipping %s: %w", zipPath, err)
		}
		if name == "" {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := checkNoSymlinkParent(dir, name); err != nil {
			return fmt.Errorf("unzipping %s: entry %q: %w", zipPath, f.Name, err)
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		case mode&fs.ModeSymlink != 0:
			target, err := readEntry(f, 4096)
			if err != nil {
				return fmt.Errorf("unzipping %s: symlink %q: %w", zipPath, f.Name, err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(string(target), dst); err != nil {
				return fmt.Errorf("unzipping %s: %w", zipPath, err)
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("unzipping %s: entry %q has unsupported type %v", zipPath, f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		n, err := writeEntry(f, dst, mode.Perm(), maxUnzip-total)
		total += n
		if err != nil {
			return fmt.Errorf("unzipping %s: entry %q: %w", zipPath, f.Name, err)
		}
	}
	return nil
}

// safeEntryName cleans a zip entry name and refuses one escaping the
// destination.
func safeEntryName(name string) (string, error) {
	if strings.Contains(name, `\`) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: backslash or NUL in the name", name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("entry %q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: \"..\" in the path", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// checkNoSymlinkParent refuses a path whose parent directories, inside
// dir, include a symlink: writing through it could leave dir.
func checkNoSymlinkParent(dir, name string) error {
	parts := strings.Split(name, "/")
	cur := dir
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("path goes through the symlink %q", strings.TrimPrefix(cur, dir+string(filepath.Separator)))
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err == nil && !fi.IsDir() {
		return errors.New("duplicate entry")
	}
	return nil
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return b, nil
}

func writeEntry(f *zip.File, dst string, perm fs.FileMode, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("the package unpacks to more than %d bytes", int64(maxUnzip))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, perm&0o777)
	}
	return n, err
}
