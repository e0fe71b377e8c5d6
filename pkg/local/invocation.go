package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

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

// run invokes the zip package: unpacked, its link directory pointed at it,
// its bootstrap started with the environment Lambda gives a custom
// runtime.
func (inv *invocation) run(ctx context.Context) (*InvokeResult, error) {
	if err := inv.unpack(ctx); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(inv.zipPath), filepath.Ext(inv.zipPath))
	env, payload, err := inv.serve(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	env = append(env, inv.lambdaEnv(name, inv.dir, inv.dir)...)
	env = append(env,
		"_HANDLER=bootstrap",
		// Lambda's own PATH and LD_LIBRARY_PATH: the bootstrap must not
		// let the program use them.
		"PATH="+lambdaDefaultPath,
		"LD_LIBRARY_PATH="+lambdaDefaultLibraryPath,
		"TMPDIR="+inv.tmp,
	)
	started := time.Now()
	if err := inv.startBootstrap(env); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	inv.o.logger.Debug("bootstrap started", "pid", inv.cmd.Process.Pid)
	return inv.await(ctx, payload, started)
}

// unpack unzips the package into a new work directory, reads its manifest
// and, when the manifest names a link directory, claims it and points it
// at the unpacked package.
func (inv *invocation) unpack(ctx context.Context) error {
	work, err := os.MkdirTemp("", "extract-invoke-")
	if err != nil {
		return err
	}
	inv.work = work
	inv.dir = filepath.Join(work, "task")
	inv.tmp = filepath.Join(work, "tmp")
	if err := os.Mkdir(inv.tmp, 0o700); err != nil {
		return err
	}
	if err := unzip(inv.zipPath, inv.dir); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(inv.dir, xruntime.ManifestPath)); err == nil {
		var m xruntime.Manifest
		if json.Unmarshal(b, &m) == nil {
			inv.linkDir = m.LinkDir
			inv.inputPrefix, inv.outputPrefix = m.Input.Prefix, m.Output.Prefix
		}
	}
	if inv.linkDir != "" {
		if inv.unlock, err = lockLinkDir(ctx, inv.linkDir, inv.o.logger); err != nil {
			return err
		}
		if err := pointLinkDir(inv.linkDir, inv.dir); err != nil {
			return err
		}
	}
	inv.o.logger.Debug("package unpacked", "zip", inv.zipPath, "dir", inv.dir)
	return nil
}

// serve readies what the function name talks to: S3 (whose part of the
// function's environment it returns), the event (payload), and the
// Runtime API.
func (inv *invocation) serve(ctx context.Context, name string) (env []string, payload []byte, err error) {
	if env, err = inv.s3Setup(ctx); err != nil {
		return nil, nil, err
	}
	payload = inv.o.event
	if payload == nil {
		if payload, err = inv.eventPayload(ctx); err != nil {
			return nil, nil, err
		}
	}
	inv.api, err = NewRuntimeAPI(RuntimeAPIOptions{FunctionName: name, Region: regionFromEnv(), Logger: inv.o.logger})
	if err != nil {
		return nil, nil, err
	}
	return env, payload, nil
}

// lambdaEnv is the environment Lambda gives every function's runtime,
// zip or image: the Runtime API's address, the task root and runtime
// directory, the function's settings, the region, TZ, LANG and the log
// format.
func (inv *invocation) lambdaEnv(name, taskRoot, runtimeDir string) []string {
	region := regionFromEnv()
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + inv.api.Addr(),
		"LAMBDA_TASK_ROOT=" + taskRoot,
		"LAMBDA_RUNTIME_DIR=" + runtimeDir,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", inv.o.memoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME=local",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION=" + region,
		"AWS_DEFAULT_REGION=" + region,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
	}
	return append(env, inv.o.lambdaLogEnv()...)
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

// cleanup stops the bootstrap and its children, the servers, and removes
// what the invocation made, the link directory included.
func (inv *invocation) cleanup() {
	if inv.cmd != nil && inv.cmd.Process != nil {
		inv.kill()
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
