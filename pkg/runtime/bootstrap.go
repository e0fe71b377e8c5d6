package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/comingout/extract/internal/runtimeapi"
)

// TaskRoot returns the directory that holds the package's manifest: the
// directory of the running executable when the manifest is there (a zip
// unpacked at /var/task; an image package's ImageDir, while Lambda still
// sets LAMBDA_TASK_ROOT=/var/task for images), else LAMBDA_TASK_ROOT.
func TaskRoot() (string, error) {
	exe, exeErr := os.Executable()
	if exeErr == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, ManifestPath)); err == nil {
			return dir, nil
		}
	}
	if d := os.Getenv("LAMBDA_TASK_ROOT"); d != "" {
		return d, nil
	}
	if exeErr != nil {
		return "", fmt.Errorf("finding the task root: %w", exeErr)
	}
	return filepath.Dir(exe), nil
}

// InitErrorType is the error type the bootstrap reports when it cannot
// start (bad manifest, link dir, workdir).
const InitErrorType = "Runtime.ExtractInitError"

// ReportInitError posts err to the Runtime API's init error path
// (/2018-06-01/runtime/init/error) at api (host:port, as in
// AWS_LAMBDA_RUNTIME_API), with the error type InitErrorType.
func ReportInitError(ctx context.Context, api string, err error) error {
	if api == "" {
		return errors.New("reporting init error: AWS_LAMBDA_RUNTIME_API is not set")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := &apiClient{base: "http://" + api + runtimeapi.Prefix, http: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	if perr := c.post(ctx, runtimeapi.PathInitError, &ErrorResponse{ErrorMessage: err.Error(), ErrorType: InitErrorType}, InitErrorType); perr != nil {
		return fmt.Errorf("reporting init error: %w", perr)
	}
	return nil
}
