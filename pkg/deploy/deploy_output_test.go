package deploy

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"
)

// TestDeployOutputDirRole: a package with an output directory gets
// s3:DeleteObject on the output location (the bootstrap removes the files
// of a failed run), a second deploy changes nothing, and a package without
// one loses it again.
func TestDeployOutputDirRole(t *testing.T) {
	e := newEnv(t, "inbox")
	m := testManifest("linux/amd64")
	m.Output.Dir = "/out"
	dirZip := mustZip(t, m, nil)
	e.mustDeploy(dirZip, "files", "inbox")
	const del = `"Action":["s3:PutObject","s3:AbortMultipartUpload","s3:DeleteObject"],"Resource":"arn:aws:s3:::inbox/output/*"`
	if doc := e.rolePolicy("extract-files"); !strings.Contains(doc, del) {
		t.Errorf("role policy %s lacks %s", doc, del)
	}
	if res := e.mustDeploy(dirZip, "files", "inbox"); len(res.Changes) != 0 {
		t.Errorf("second Deploy changes = %q, want none", res.Changes)
	}
	res := e.mustDeploy(mustZip(t, testManifest("linux/amd64"), nil), "files", "inbox")
	if want := `update role extract-files policy "extract"`; !strings.Contains(strings.Join(res.Changes, "\n"), want) {
		t.Errorf("Deploy without the output directory: changes %q, want %q", res.Changes, want)
	}
	if doc := e.rolePolicy("extract-files"); strings.Contains(doc, "s3:DeleteObject") {
		t.Errorf("role policy %s still allows s3:DeleteObject", doc)
	}
}

// rolePolicy returns the inline policy "extract" of role name, decoded.
func (e *motoEnv) rolePolicy(name string) string {
	e.t.Helper()
	pol, err := e.clients.IAM.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: &name, PolicyName: aws.String("extract")})
	if err != nil {
		e.t.Fatal(err)
	}
	doc, err := url.PathUnescape(aws.ToString(pol.PolicyDocument))
	if err != nil {
		e.t.Fatal(err)
	}
	return doc
}

// loggingLambda records the LoggingConfig deploy sends and, since moto
// keeps none (GetFunction returns no LoggingConfig), puts the last one sent
// into what GetFunction returns, as Lambda does.
type loggingLambda struct {
	LambdaAPI
	mu   sync.Mutex
	sent []lambdatypes.LogFormat
}

func (l *loggingLambda) record(c *lambdatypes.LoggingConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c == nil {
		l.sent = append(l.sent, "")
		return
	}
	l.sent = append(l.sent, c.LogFormat)
}

func (l *loggingLambda) CreateFunction(ctx context.Context, in *awslambda.CreateFunctionInput, opts ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error) {
	l.record(in.LoggingConfig)
	return l.LambdaAPI.CreateFunction(ctx, in, opts...)
}

func (l *loggingLambda) UpdateFunctionConfiguration(ctx context.Context, in *awslambda.UpdateFunctionConfigurationInput, opts ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error) {
	l.record(in.LoggingConfig)
	return l.LambdaAPI.UpdateFunctionConfiguration(ctx, in, opts...)
}

func (l *loggingLambda) GetFunction(ctx context.Context, in *awslambda.GetFunctionInput, opts ...func(*awslambda.Options)) (*awslambda.GetFunctionOutput, error) {
	out, err := l.LambdaAPI.GetFunction(ctx, in, opts...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && out.Configuration != nil && out.Configuration.LoggingConfig == nil && len(l.sent) > 0 {
		out.Configuration.LoggingConfig = &lambdatypes.LoggingConfig{LogFormat: l.sent[len(l.sent)-1]}
	}
	return out, err
}

// TestDeployLogFormat: --log-format json is sent on create, shown in the
// plan, changes nothing the second time, and text sets it back. moto 5
// ignores LoggingConfig (GetFunction returns none), so the test asserts on
// the requests deploy sends, through loggingLambda.
func TestDeployLogFormat(t *testing.T) {
	e := newEnv(t, "inbox")
	l := &loggingLambda{LambdaAPI: e.clients.Lambda}
	c := *e.clients
	c.Lambda = l
	zip := mustZip(t, testManifest("linux/amd64"), nil)

	dry := e.mustDeploy(zip, "logs", "inbox", WithClients(&c), WithLogFormat(LogFormatJSON), WithDryRun(true))
	if want := "create function logs (x86_64, 512 MB, 60s, log format JSON)"; !strings.Contains(strings.Join(dry.Changes, "\n"), want) {
		t.Errorf("dry-run changes %q lack %q", dry.Changes, want)
	}
	e.mustDeploy(zip, "logs", "inbox", WithClients(&c), WithLogFormat(LogFormatJSON))
	if res := e.mustDeploy(zip, "logs", "inbox", WithClients(&c), WithLogFormat(LogFormatJSON)); len(res.Changes) != 0 {
		t.Errorf("second Deploy with JSON: changes %q, want none", res.Changes)
	}
	res := e.mustDeploy(zip, "logs", "inbox", WithClients(&c))
	if diff := cmp.Diff([]string{"update function configuration: log format JSON → Text"}, res.Changes); diff != "" {
		t.Errorf("Deploy back to text: changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]lambdatypes.LogFormat{lambdatypes.LogFormatJson, lambdatypes.LogFormatText}, l.sent); diff != "" {
		t.Errorf("LoggingConfig.LogFormat sent by CreateFunction, UpdateFunctionConfiguration (-want +got):\n%s", diff)
	}
	if _, err := makeDeployOptions([]Option{WithLogFormat("xml")}); err == nil {
		t.Error(`WithLogFormat("xml") accepted`)
	}
}
