package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/mototest"
)

// fakeLambda is a LambdaAPI that sends every call to the embedded client
// (moto) except those with a func set, which tests use to inject faults
// moto cannot produce.
type fakeLambda struct {
	LambdaAPI
	createFunction              func(context.Context, *awslambda.CreateFunctionInput, ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error)
	updateFunctionConfiguration func(context.Context, *awslambda.UpdateFunctionConfigurationInput, ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error)
	getAccountSettings          func(context.Context, *awslambda.GetAccountSettingsInput, ...func(*awslambda.Options)) (*awslambda.GetAccountSettingsOutput, error)
	addPermission               func(context.Context, *awslambda.AddPermissionInput, ...func(*awslambda.Options)) (*awslambda.AddPermissionOutput, error)
}

func (f *fakeLambda) AddPermission(ctx context.Context, in *awslambda.AddPermissionInput, opts ...func(*awslambda.Options)) (*awslambda.AddPermissionOutput, error) {
	if f.addPermission != nil {
		return f.addPermission(ctx, in, opts...)
	}
	return f.LambdaAPI.AddPermission(ctx, in, opts...)
}

func (f *fakeLambda) CreateFunction(ctx context.Context, in *awslambda.CreateFunctionInput, opts ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error) {
	if f.createFunction != nil {
		return f.createFunction(ctx, in, opts...)
	}
	return f.LambdaAPI.CreateFunction(ctx, in, opts...)
}

func (f *fakeLambda) UpdateFunctionConfiguration(ctx context.Context, in *awslambda.UpdateFunctionConfigurationInput, opts ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error) {
	if f.updateFunctionConfiguration != nil {
		return f.updateFunctionConfiguration(ctx, in, opts...)
	}
	return f.LambdaAPI.UpdateFunctionConfiguration(ctx, in, opts...)
}

func (f *fakeLambda) GetAccountSettings(ctx context.Context, in *awslambda.GetAccountSettingsInput, opts ...func(*awslambda.Options)) (*awslambda.GetAccountSettingsOutput, error) {
	if f.getAccountSettings != nil {
		return f.getAccountSettings(ctx, in, opts...)
	}
	return f.LambdaAPI.GetAccountSettings(ctx, in, opts...)
}

// withFake returns the env's clients with Lambda wrapped by f.
func (e *motoEnv) withFake(f *fakeLambda) *Clients {
	f.LambdaAPI = e.clients.Lambda
	c := *e.clients
	c.Lambda = f
	return &c
}

// recordSleeps replaces sleeping with recording the delays.
func recordSleeps(delays *[]time.Duration) Option {
	return deployOption(func(o *deployOptions) error {
		o.sleep = func(_ context.Context, d time.Duration) error {
			*delays = append(*delays, d)
			return nil
		}
		return nil
	})
}

var errRoleNotAssumable = &lambdatypes.InvalidParameterValueException{
	Message: aws.String("The role defined for the function cannot be assumed by Lambda."),
}

func TestCreateFunctionRoleRetry(t *testing.T) {
	e := newEnv(t)
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	all := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}

	tests := []struct {
		name       string
		failures   int   // calls failing before the real one
		failWith   error // the error of the failing calls
		wantCalls  int
		wantSleeps []time.Duration
		wantErr    string // "" when deploy must succeed
	}{
		{"assumable after three tries", 3, errRoleNotAssumable, 4, all[:3], ""},
		{"never assumable: bounded", 100, errRoleNotAssumable, len(all) + 1, all, "still cannot be assumed by Lambda after 7 retries"},
		{"other invalid parameter: no retry", 100, &lambdatypes.InvalidParameterValueException{Message: aws.String("Unzipped size must be smaller than 262144000 bytes")}, 1, nil, "Unzipped size"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			fake := &fakeLambda{createFunction: nil}
			fake.createFunction = func(ctx context.Context, in *awslambda.CreateFunctionInput, opts ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error) {
				calls++
				if calls <= tc.failures {
					return nil, tc.failWith
				}
				return fake.LambdaAPI.CreateFunction(ctx, in, opts...)
			}
			var sleeps []time.Duration
			name := fmt.Sprintf("retry%d", i)
			bucket := fmt.Sprintf("inbox%d", i) // one trigger per bucket
			e.mustBucket(bucket)
			_, err := Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), name, bucket,
				WithClients(e.withFake(fake)), fastWaits, recordSleeps(&sleeps))
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Deploy error = %v, want one containing %q", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("CreateFunction called %d times, want %d", calls, tc.wantCalls)
			}
			if diff := cmp.Diff(tc.wantSleeps, sleeps); diff != "" {
				t.Errorf("backoff delays (-want +got):\n%s", diff)
			}
			if created := e.function(name) != nil; created != (tc.wantErr == "") {
				t.Errorf("function created = %v, want %v", created, tc.wantErr == "")
			}
		})
	}
}

func TestUpdateWaitsOutConflicts(t *testing.T) {
	e := newEnv(t, "inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	e.mustDeploy(zip, "busy", "inbox")

	inProgress := &lambdatypes.ResourceConflictException{
		Message: aws.String("The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:busy"),
	}
	tests := []struct {
		name      string
		conflicts int
		memory    int
		wantCalls int
		wantErr   bool
	}{
		{"one conflict, then success", 1, 256, 2, false},
		{"conflicts forever: bounded", 100, 1024, 6, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			fake := &fakeLambda{}
			fake.updateFunctionConfiguration = func(ctx context.Context, in *awslambda.UpdateFunctionConfigurationInput, opts ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error) {
				calls++
				if calls <= tc.conflicts {
					return nil, inProgress
				}
				return fake.LambdaAPI.UpdateFunctionConfiguration(ctx, in, opts...)
			}
			_, err := Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), "busy", "inbox",
				WithClients(e.withFake(fake)), fastWaits, WithFunctionMemory(tc.memory))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Deploy error = %v, want error %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("UpdateFunctionConfiguration called %d times, want %d", calls, tc.wantCalls)
			}
			got := deref(e.function("busy").Configuration.MemorySize)
			if !tc.wantErr && got != int32(tc.memory) {
				t.Errorf("memory = %d, want %d", got, tc.memory)
			}
		})
	}
}

func TestThrottlingAfterRetriesIsClear(t *testing.T) {
	e := newEnv(t, "inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	fake := &fakeLambda{createFunction: func(context.Context, *awslambda.CreateFunctionInput, ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "TooManyRequestsException", Message: "Rate exceeded"}
	}}
	_, err := Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), "throttled", "inbox", WithClients(e.withFake(fake)), fastWaits)
	var te *ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Deploy error = %v, want *ThrottledError", err)
	}
	for _, want := range []string{`creating function "throttled"`, "throttled", "Rate exceeded", "AWS_MAX_ATTEMPTS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestClientsRetryThrottling checks the clients NewClients builds retry a
// throttled call (here twice) before giving up, using a server that
// answers like Lambda does.
func TestClientsRetryThrottling(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 2 {
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"AccountLimit":{"CodeSizeZipped":1000,"CodeSizeUnzipped":2000,"ConcurrentExecutions":10,"TotalCodeSize":5000}}`)
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_MAX_ATTEMPTS", "")
	cfg, err := LoadAWSConfig(context.Background(), "eu-west-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryMaxAttempts != defaultMaxAttempts {
		t.Errorf("RetryMaxAttempts = %d, want %d", cfg.RetryMaxAttempts, defaultMaxAttempts)
	}
	d := &deployer{o: &deployOptions{commonOptions: commonOptions{log: slog.New(slog.DiscardHandler)}}, c: NewClients(cfg), log: slog.New(slog.DiscardHandler)}
	got, err := d.limits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (CodeLimits{DirectUpload: 1000, Unzipped: 2000}); got != want {
		t.Errorf("limits = %+v, want %+v (from GetAccountSettings)", got, want)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("requests = %d, want 3 (two throttled, retried)", n)
	}
}

func TestLimitsFallBackToDefaults(t *testing.T) {
	fake := &fakeLambda{getAccountSettings: func(context.Context, *awslambda.GetAccountSettingsInput, ...func(*awslambda.Options)) (*awslambda.GetAccountSettingsOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: lambda:GetAccountSettings"}
	}}
	d := &deployer{o: &deployOptions{commonOptions: commonOptions{log: slog.New(slog.DiscardHandler)}}, c: &Clients{Lambda: fake}, log: slog.New(slog.DiscardHandler)}
	got, err := d.limits(context.Background())
	if err != nil || got != DefaultCodeLimits {
		t.Errorf("limits = %+v, %v; want %+v", got, err, DefaultCodeLimits)
	}
	if DefaultCodeLimits.DirectUpload != 50<<20 || DefaultCodeLimits.Unzipped != 250<<20 {
		t.Errorf("DefaultCodeLimits = %+v, want 50 MiB and 250 MiB", DefaultCodeLimits)
	}
}

// TestServiceEndpointOverride routes S3 alone to moto with
// AWS_ENDPOINT_URL_S3 while AWS_ENDPOINT_URL points elsewhere: the SDK's
// per-service overrides work, and S3 goes path-style.
func TestServiceEndpointOverride(t *testing.T) {
	s := mototest.Start(t)
	s.Setenv(t)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer dead.Close()
	t.Setenv("AWS_ENDPOINT_URL", dead.URL)
	t.Setenv("AWS_ENDPOINT_URL_S3", s.URL)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	cfg, err := LoadAWSConfig(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := NewClients(cfg)
	s3c := c.S3.(*s3.Client)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("routed")}); err != nil {
		t.Fatalf("S3 through AWS_ENDPOINT_URL_S3: %v", err)
	}
	if _, err := readNotification(context.Background(), c.S3, "routed"); err != nil {
		t.Errorf("S3 path-style request: %v", err)
	}
	if _, err := c.STS.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err == nil || !strings.Contains(err.Error(), "418") {
		t.Errorf("STS went to %v, want the AWS_ENDPOINT_URL server (418)", err)
	}
}
