package lambda

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/pkg/local"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// TestPackageEmptySuffix: WithSuffix("") (--suffix "") survives the
// manifest, so the bootstrap processes every key as the trigger fires on
// every key: data.bin is processed, not skipped as not ending in ".csv".
func TestPackageEmptySuffix(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap and runs it")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	zipPath, m := mustPackageTestProg(t, []string{"PATH=/bin"}, []string{"cat"}, WithSuffix(""))
	if m.Input.Suffix != "" {
		t.Fatalf("manifest suffix %q, want none", m.Input.Suffix)
	}
	var logs strings.Builder
	data := []byte("\x00\x01binary\n")
	res, err := local.Invoke(context.Background(), zipPath, local.WithCSV(testkit.TempFile(t, "data.bin", data)), local.WithLogWriter(&logs), local.WithTimeout(time.Minute))
	if err != nil {
		t.Fatalf("local.Invoke: %v\nlogs:\n%s", err, logs.String())
	}
	var r xruntime.Result
	if err := json.Unmarshal(res.Response, &r); err != nil {
		t.Fatalf("response %s: %v", res.Response, err)
	}
	if len(r.Records) != 1 || r.Records[0].Skipped != "" || r.Records[0].Key != "input/data.bin" {
		t.Fatalf("records = %+v, want input/data.bin processed", r.Records)
	}
	if res.OutputKey != "output/data.bin" || string(res.Output) != string(data) {
		t.Errorf("output s3://%s/%s = %q, want output/data.bin = %q", res.OutputBucket, res.OutputKey, res.Output, data)
	}
}
