package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// testManifest is a manifest with the project's default input and output
// settings: trigger input/*.csv, outputs under output/.
func testManifest(platform string) xruntime.Manifest {
	return xruntime.Manifest{
		Version:  1,
		Tool:     "test",
		Image:    "example.com/momentum:v1",
		Digest:   "sha256:0123",
		Platform: platform,
		Program:  "/usr/bin/momentum",
		Args:     []string{"/usr/bin/momentum"},
		Input:    xruntime.Input{Mode: "stdin", Prefix: "input/", Suffix: ".csv"},
		Output:   xruntime.Output{Prefix: "output/"},
	}
}

// mustZip builds a small valid package: a bootstrap, the manifest, and
// extra files (name → content).
func mustZip(t *testing.T, m xruntime.Manifest, extra map[string][]byte) []byte {
	t.Helper()
	files := []testkit.ZipFile{
		{Name: "bootstrap", Mode: 0o755, Body: []byte("#!/bin/sh\necho bootstrap\n")},
		{Name: xruntime.ManifestPath, Body: testkit.JSON(t, m)},
	}
	for _, n := range slices.Sorted(maps.Keys(extra)) {
		files = append(files, testkit.ZipFile{Name: n, Body: extra[n], Store: true})
	}
	return testkit.Zip(t, files...)
}

func codeSha(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// env is one moto server with clients loaded through the standard AWS
// configuration chain (AWS_ENDPOINT_URL and friends, as users set them).
type motoEnv struct {
	t       *testing.T
	server  *mototest.Server
	clients *Clients
}

func newEnv(t *testing.T, buckets ...string) *motoEnv {
	t.Helper()
	s := mototest.Start(t)
	s.Setenv(t)
	cfg, err := LoadAWSConfig(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	e := &motoEnv{t: t, server: s, clients: NewClients(cfg)}
	for _, b := range buckets {
		e.mustBucket(b)
	}
	return e
}

func (e *motoEnv) mustBucket(name string) {
	e.t.Helper()
	if _, err := e.clients.S3.(*s3.Client).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		e.t.Fatalf("CreateBucket(%q): %v", name, err)
	}
}

// deploy runs Deploy on zip with fast waiters and the env's clients.
func (e *motoEnv) deploy(zip []byte, function, bucket string, opts ...Option) (*Result, error) {
	e.t.Helper()
	opts = append([]Option{WithClients(e.clients), fastWaits}, opts...)
	return Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), function, bucket, opts...)
}

func (e *motoEnv) mustDeploy(zip []byte, function, bucket string, opts ...Option) *Result {
	e.t.Helper()
	res, err := e.deploy(zip, function, bucket, opts...)
	if err != nil {
		e.t.Fatalf("Zip(%q, %q): %v", function, bucket, err)
	}
	return res
}

func (e *motoEnv) destroy(function, bucket string, opts ...DestroyOption) *DestroyResult {
	e.t.Helper()
	opts = append([]DestroyOption{WithClients(e.clients)}, opts...)
	res, err := Destroy(context.Background(), function, bucket, opts...)
	if err != nil {
		e.t.Fatalf("Destroy(%q, %q): %v", function, bucket, err)
	}
	return res
}

// fastWaits makes waiting for the function quick and retrying instant.
var fastWaits = deployOption(func(o *deployOptions) error {
	o.waitMinDelay = 10 * time.Millisecond
	o.waitTimeout = 20 * time.Second
	o.sleep = func(context.Context, time.Duration) error { return nil }
	return nil
})

func (e *motoEnv) function(name string) *awslambda.GetFunctionOutput {
	e.t.Helper()
	out, err := e.clients.Lambda.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: &name})
	if isCode(err, "ResourceNotFoundException") {
		return nil
	}
	if err != nil {
		e.t.Fatalf("GetFunction(%q): %v", name, err)
	}
	return out
}

func (e *motoEnv) roleExists(name string) bool {
	e.t.Helper()
	_, err := e.clients.IAM.GetRole(context.Background(), &iam.GetRoleInput{RoleName: &name})
	if isCode(err, "NoSuchEntity") {
		return false
	}
	if err != nil {
		e.t.Fatalf("GetRole(%q): %v", name, err)
	}
	return true
}

func (e *motoEnv) notification(bucket string) *s3types.NotificationConfiguration {
	e.t.Helper()
	nc, err := readNotification(context.Background(), e.clients.S3, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	return nc
}

// ruleSummary lists a bucket's rules as comparable strings.
func (e *motoEnv) ruleSummary(bucket string) []string {
	e.t.Helper()
	var out []string
	for _, r := range rules(e.notification(bucket)) {
		evs := slices.Clone(r.Events)
		slices.Sort(evs)
		out = append(out, r.Kind+" "+r.ID+" "+r.Target+" "+strings.Join(evs, ",")+" prefix="+r.Prefix+" suffix="+r.Suffix)
	}
	slices.Sort(out)
	return out
}

func (e *motoEnv) putNotification(bucket string, nc *s3types.NotificationConfiguration) {
	e.t.Helper()
	if err := writeNotification(context.Background(), e.clients.S3, bucket, nc); err != nil {
		e.t.Fatal(err)
	}
}

func keyFilter(prefix, suffix string) *s3types.NotificationConfigurationFilter {
	var frs []s3types.FilterRule
	if prefix != "" {
		frs = append(frs, s3types.FilterRule{Name: s3types.FilterRuleNamePrefix, Value: aws.String(prefix)})
	}
	if suffix != "" {
		frs = append(frs, s3types.FilterRule{Name: s3types.FilterRuleNameSuffix, Value: aws.String(suffix)})
	}
	return &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: frs}}
}

const (
	otherFunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:other"
	queueARN         = "arn:aws:sqs:us-east-1:123456789012:uploads"
)

// TestDeployLifecycle walks one function through create, no-op, config
// change, code change, dry run and destroy against moto.
func TestDeployLifecycle(t *testing.T) {
	e := newEnv(t, "inbox")
	m := testManifest("linux/arm64")
	zip1 := mustZip(t, m, map[string][]byte{"rootfs/usr/bin/momentum": []byte("v1")})
	zip2 := mustZip(t, m, map[string][]byte{"rootfs/usr/bin/momentum": []byte("v2")})

	// Create.
	res := e.mustDeploy(zip1, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}))
	wantChanges := []string{
		`create role extract-momentum (trust lambda.amazonaws.com, inline policy "extract")`,
		"create function momentum (arm64, 512 MB, 60s)",
		"add permission extract-s3-inbox (s3.amazonaws.com may invoke momentum for arn:aws:s3:::inbox in account 123456789012)",
		`set notification rule extract-momentum on bucket inbox (s3:ObjectCreated:*, prefix "input/", suffix ".csv" → momentum)`,
	}
	if diff := cmp.Diff(wantChanges, res.Changes); diff != "" {
		t.Errorf("first Deploy changes (-want +got):\n%s", diff)
	}
	if res.CodeSha256 != codeSha(zip1) {
		t.Errorf("CodeSha256 = %q, want %q", res.CodeSha256, codeSha(zip1))
	}
	if want := "arn:aws:iam::123456789012:role/extract-momentum"; res.RoleARN != want {
		t.Errorf("RoleARN = %q, want %q", res.RoleARN, want)
	}
	fn := e.function("momentum")
	if fn == nil {
		t.Fatal("function not created")
	}
	c := fn.Configuration
	got := map[string]any{
		"runtime": string(c.Runtime), "handler": deref(c.Handler), "memory": deref(c.MemorySize),
		"timeout": deref(c.Timeout), "arch": string(c.Architectures[0]), "sha": deref(c.CodeSha256),
		"role": deref(c.Role), "tag": fn.Tags[ManagedByTag], "env": c.Environment.Variables["MODE"],
		"arn": deref(c.FunctionArn),
	}
	want := map[string]any{
		"runtime": "provided.al2023", "handler": "bootstrap", "memory": int32(512),
		"timeout": int32(60), "arch": "arm64", "sha": codeSha(zip1),
		"role": res.RoleARN, "tag": "extract", "env": "fast", "arn": res.FunctionARN,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("function configuration (-want +got):\n%s", diff)
	}

	// The role: tagged, trusted by Lambda, least privilege.
	tags, err := e.clients.IAM.ListRoleTags(context.Background(), &iam.ListRoleTagsInput{RoleName: aws.String("extract-momentum")})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || deref(tags.Tags[0].Key) != "managed-by" || deref(tags.Tags[0].Value) != "extract" {
		t.Errorf("role tags = %+v, want managed-by=extract", tags.Tags)
	}
	pol, err := e.clients.IAM.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String("extract-momentum"), PolicyName: aws.String("extract")})
	if err != nil {
		t.Fatal(err)
	}
	doc := deref(pol.PolicyDocument)
	if u, err := url.PathUnescape(doc); err == nil {
		doc = u
	}
	for _, s := range []string{
		`"Action":"s3:GetObject","Resource":"arn:aws:s3:::inbox/input/*"`,
		`"Action":["s3:PutObject","s3:AbortMultipartUpload"],"Resource":"arn:aws:s3:::inbox/output/*"`,
		`arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/momentum:log-stream:*`,
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("role policy %s lacks %s", doc, s)
		}
	}

	// The permission and the rule.
	found, ok, err := readPermission(context.Background(), e.clients.Lambda, "momentum",
		permissionStatement{Sid: "extract-s3-inbox", SourceARN: "arn:aws:s3:::inbox", Account: "123456789012"})
	if err != nil || !found || !ok {
		t.Errorf("permission statement found=%v matches=%v err=%v, want found and matching", found, ok, err)
	}
	wantRules := []string{"Lambda extract-momentum " + res.FunctionARN + " s3:ObjectCreated:* prefix=input/ suffix=.csv"}
	if diff := cmp.Diff(wantRules, e.ruleSummary("inbox")); diff != "" {
		t.Errorf("notification rules (-want +got):\n%s", diff)
	}

	// Same deploy again: no changes.
	res = e.mustDeploy(zip1, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}))
	if len(res.Changes) != 0 {
		t.Errorf("second Deploy changes = %q, want none", res.Changes)
	}

	// Memory changes: configuration only.
	res = e.mustDeploy(zip1, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}), WithFunctionMemory(1024))
	if diff := cmp.Diff([]string{"update function configuration: memory 512 MB → 1024 MB"}, res.Changes); diff != "" {
		t.Errorf("memory Deploy changes (-want +got):\n%s", diff)
	}
	if got := deref(e.function("momentum").Configuration.MemorySize); got != 1024 {
		t.Errorf("memory after update = %d, want 1024", got)
	}

	// New code: code only.
	res = e.mustDeploy(zip2, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}), WithFunctionMemory(1024))
	if diff := cmp.Diff([]string{"update function code (CodeSha256 " + codeSha(zip1) + " → " + codeSha(zip2) + ")"}, res.Changes); diff != "" {
		t.Errorf("code Deploy changes (-want +got):\n%s", diff)
	}
	if got := deref(e.function("momentum").Configuration.CodeSha256); got != codeSha(zip2) {
		t.Errorf("CodeSha256 after update = %q, want %q", got, codeSha(zip2))
	}

	// Dry run of a change: reported, not made.
	res, err = e.deploy(zip1, "momentum", "inbox", WithFunctionMemory(2048), WithDryRun(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 2 || !strings.HasPrefix(res.Changes[0], "update function code") ||
		res.Changes[1] != "update function configuration: memory 1024 MB → 2048 MB, environment [MODE] → (none)" {
		t.Errorf("dry-run changes = %q, want code and configuration updates", res.Changes)
	}
	fc := e.function("momentum").Configuration
	if deref(fc.MemorySize) != 1024 || deref(fc.CodeSha256) != codeSha(zip2) {
		t.Errorf("after dry run memory = %d, sha = %s; want unchanged 1024, %s", deref(fc.MemorySize), deref(fc.CodeSha256), codeSha(zip2))
	}

	// Publish and alias; idempotent too.
	res = e.mustDeploy(zip2, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}), WithFunctionMemory(1024), WithPublish(true), WithAlias("live"))
	if diff := cmp.Diff([]string{"publish version 1", "create alias live → 1"}, res.Changes); diff != "" {
		t.Errorf("publish Deploy changes (-want +got):\n%s", diff)
	}
	res = e.mustDeploy(zip2, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}), WithFunctionMemory(1024), WithPublish(true), WithAlias("live"))
	if len(res.Changes) != 0 || res.Version != "1" {
		t.Errorf("second publish Deploy changes = %q, version %q; want none, 1", res.Changes, res.Version)
	}

	// New code with --publish: a new version, the alias follows it.
	res = e.mustDeploy(zip1, "momentum", "inbox", WithFunctionEnv(map[string]string{"MODE": "fast"}), WithFunctionMemory(1024), WithPublish(true), WithAlias("live"))
	wantChanges = []string{
		"update function code (CodeSha256 " + codeSha(zip2) + " → " + codeSha(zip1) + ")",
		"publish version 2",
		"update alias live: 1 → 2",
	}
	if diff := cmp.Diff(wantChanges, res.Changes); diff != "" || res.Version != "2" {
		t.Errorf("second publish (version %q) changes (-want +got):\n%s", res.Version, diff)
	}

	// Destroy, then destroy again.
	dres := e.destroy("momentum", "inbox")
	wantDestroy := []string{
		"remove notification rule extract-momentum from bucket inbox",
		"remove permission extract-s3-inbox from function momentum",
		"delete function momentum",
		`delete role extract-momentum (policies: extract)`,
	}
	if diff := cmp.Diff(wantDestroy, dres.Changes); diff != "" {
		t.Errorf("Destroy changes (-want +got):\n%s", diff)
	}
	if e.function("momentum") != nil || e.roleExists("extract-momentum") || len(e.ruleSummary("inbox")) != 0 {
		t.Error("Destroy left the function, role or rule behind")
	}
	if dres = e.destroy("momentum", "inbox"); len(dres.Changes) != 0 {
		t.Errorf("second Destroy changes = %q, want none", dres.Changes)
	}
}

func TestDeployDryRunCreatesNothing(t *testing.T) {
	e := newEnv(t, "inbox")
	foreign := &s3types.NotificationConfiguration{
		QueueConfigurations: []s3types.QueueConfiguration{{Id: aws.String("q"), QueueArn: aws.String(queueARN), Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: keyFilter("", ".json")}},
	}
	e.putNotification("inbox", foreign)
	before := e.ruleSummary("inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	res, err := e.deploy(zip, "dry", "inbox", WithDryRun(true), WithPublish(true), WithAlias("live"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`create role extract-dry (trust lambda.amazonaws.com, inline policy "extract")`,
		"create function dry (x86_64, 512 MB, 60s)",
		"publish a new version",
		"create alias live → (new version)",
		"add permission extract-s3-inbox (s3.amazonaws.com may invoke dry for arn:aws:s3:::inbox in account 123456789012)",
		`set notification rule extract-dry on bucket inbox (s3:ObjectCreated:*, prefix "input/", suffix ".csv" → dry)`,
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("dry-run changes (-want +got):\n%s", diff)
	}
	if !res.DryRun {
		t.Error("DryRun = false, want true")
	}
	if e.function("dry") != nil || e.roleExists("extract-dry") {
		t.Error("dry run created the function or the role")
	}
	if diff := cmp.Diff(before, e.ruleSummary("inbox")); diff != "" {
		t.Errorf("dry run changed the notification (-before +after):\n%s", diff)
	}
}

func TestDeployMergesAndDestroyKeepsForeignRules(t *testing.T) {
	e := newEnv(t, "inbox")
	e.putNotification("inbox", &s3types.NotificationConfiguration{
		LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			Id: aws.String("theirs"), LambdaFunctionArn: aws.String(otherFunctionARN),
			Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: keyFilter("other/", ""),
		}},
		QueueConfigurations: []s3types.QueueConfiguration{{
			Id: aws.String("queue"), QueueArn: aws.String(queueARN),
			Events: []s3types.Event{"s3:ObjectCreated:Put"}, Filter: keyFilter("", ".json"),
		}},
	})
	foreign := e.ruleSummary("inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	res := e.mustDeploy(zip, "momentum", "inbox")
	want := append(slices.Clone(foreign), "Lambda extract-momentum "+res.FunctionARN+" s3:ObjectCreated:* prefix=input/ suffix=.csv")
	slices.Sort(want)
	if diff := cmp.Diff(want, e.ruleSummary("inbox")); diff != "" {
		t.Errorf("rules after Deploy (-want +got):\n%s", diff)
	}
	if res = e.mustDeploy(zip, "momentum", "inbox"); len(res.Changes) != 0 {
		t.Errorf("second Deploy changes = %q, want none", res.Changes)
	}
	e.destroy("momentum", "inbox")
	if diff := cmp.Diff(foreign, e.ruleSummary("inbox")); diff != "" {
		t.Errorf("rules after Destroy (-want +got):\n%s", diff)
	}
}

func TestDeployRefusals(t *testing.T) {
	e := newEnv(t, "inbox", "outbox")
	e.putNotification("inbox", &s3types.NotificationConfiguration{
		QueueConfigurations: []s3types.QueueConfiguration{{
			Id: aws.String("queue"), QueueArn: aws.String(queueARN),
			Events: []s3types.Event{"s3:ObjectCreated:Put"}, Filter: keyFilter("input/2026/", ".csv"),
		}},
	})
	recursive := testManifest("linux/amd64")
	recursive.Input.Prefix = ""
	disjoint := testManifest("linux/amd64")
	disjoint.Input.Prefix = "other/"
	dirUnderTrigger := testManifest("linux/amd64")
	dirUnderTrigger.Output = xruntime.Output{Prefix: "input/results/", Suffix: ".out", Dir: "/out"}

	tests := []struct {
		name     string
		manifest xruntime.Manifest
		want     any
	}{
		{"overlap with a queue rule", testManifest("linux/amd64"), &OverlapError{}},
		{"output would re-trigger", recursive, &lambda.RecursionError{}},
		{"output directory under the trigger prefix", dirUnderTrigger, &lambda.RecursionError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.deploy(mustZip(t, tc.manifest, nil), "refused", "inbox")
			switch tc.want.(type) {
			case *OverlapError:
				var oe *OverlapError
				if !errors.As(err, &oe) || !strings.Contains(err.Error(), queueARN) {
					t.Fatalf("Deploy error = %v, want *OverlapError naming %s", err, queueARN)
				}
			case *lambda.RecursionError:
				var re *lambda.RecursionError
				if !errors.As(err, &re) {
					t.Fatalf("Deploy error = %v, want *lambda.RecursionError", err)
				}
			}
			if !IsRefused(err) {
				t.Errorf("IsRefused(%v) = false", err)
			}
			if e.function("refused") != nil || e.roleExists("extract-refused") {
				t.Error("a refused deploy created the function or role")
			}
		})
	}

	// The same trigger with the output in another bucket, or a disjoint
	// prefix, deploys.
	other := recursive
	other.Output.Bucket = "outbox"
	other.Input.Suffix = ".tsv"
	if _, err := e.deploy(mustZip(t, other, nil), "elsewhere", "inbox"); err != nil {
		t.Errorf("Deploy with the output in another bucket: %v", err)
	}
	if _, err := e.deploy(mustZip(t, disjoint, nil), "disjoint", "inbox"); err != nil {
		t.Errorf("Deploy with a disjoint prefix: %v", err)
	}

	// A function of that name not made by extract.
	role := e.mustUserRole("user-role")
	_, err := e.clients.Lambda.CreateFunction(context.Background(), &awslambda.CreateFunctionInput{
		FunctionName: aws.String("handmade"), Role: &role, Runtime: "provided.al2023", Handler: aws.String("bootstrap"),
		Code: &lambdatypes.FunctionCode{ZipFile: mustZip(t, disjoint, nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ne *NotManagedError
	if _, err := e.deploy(mustZip(t, disjoint, nil), "handmade", "outbox"); !errors.As(err, &ne) {
		t.Errorf("Deploy over a foreign function: error %v, want *NotManagedError", err)
	}
	if _, err := Destroy(context.Background(), "handmade", "outbox", WithClients(e.clients)); !errors.As(err, &ne) {
		t.Errorf("Destroy of a foreign function: error %v, want *NotManagedError", err)
	}
	if e.function("handmade") == nil {
		t.Error("the foreign function was deleted")
	}
}

// countingSTS counts GetCallerIdentity, the first AWS call of a deploy.
type countingSTS struct {
	STSAPI
	calls *atomic.Int32
}

func (c countingSTS) GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	c.calls.Add(1)
	return c.STSAPI.GetCallerIdentity(ctx, in, opts...)
}

// TestDeployRefusesEditedManifest edits the input and output settings of
// a package's extract.json, zip and container image, as package would
// never write them: an output bucket "*" (the role would write to every
// bucket), wildcards in a prefix, an empty output prefix. Deploy refuses
// each before any AWS call and creates no role.
func TestDeployRefusesEditedManifest(t *testing.T) {
	e := newEnv(t, "inbox")
	var calls atomic.Int32
	clients := *e.clients
	clients.STS = countingSTS{e.clients.STS, &calls}
	edit := func(f func(m *xruntime.Manifest)) xruntime.Manifest {
		m := testManifest("linux/amd64")
		f(&m)
		return m
	}
	for _, tc := range []struct {
		name     string
		manifest xruntime.Manifest
		want     string
	}{
		{"output bucket *", edit(func(m *xruntime.Manifest) { m.Output.Bucket = "*" }), `output bucket "*" is not a valid S3 bucket name`},
		{"output bucket with a slash", edit(func(m *xruntime.Manifest) { m.Output.Bucket = "outbox/x" }), `output bucket "outbox/x"`},
		{"output prefix *", edit(func(m *xruntime.Manifest) { m.Output.Prefix = "*" }), `output prefix "*" holds "*" or "?"`},
		{"input prefix with ?", edit(func(m *xruntime.Manifest) { m.Input.Prefix = "in?ut/" }), `input prefix "in?ut/" holds "*" or "?"`},
		{"empty output prefix", edit(func(m *xruntime.Manifest) { m.Output.Bucket, m.Output.Prefix = "outbox", "" }), "output prefix is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zip := mustZip(t, tc.manifest, nil)
			img := testContainer(t, testkit.FilesLayer(t, testkit.File{Name: "a", Body: "a"}), "v1", "linux/amd64")
			img.Manifest = tc.manifest
			for what, deploy := range map[string]func() error{
				"zip": func() error {
					_, err := Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), "edited", "inbox", WithClients(&clients), fastWaits)
					return err
				},
				"image": func() error {
					_, err := Container(context.Background(), img, "edited", "inbox", WithClients(&clients), fastWaits)
					return err
				},
			} {
				err := deploy()
				var me *lambda.ManifestError
				if !errors.As(err, &me) || !IsRefused(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "extract.json") {
					t.Errorf("%s deploy: error %v, want a refused *lambda.ManifestError saying %s", what, err, tc.want)
				}
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("refused deploys called sts:GetCallerIdentity %d times, want no AWS call", n)
			}
			if e.roleExists("extract-edited") || e.function("edited") != nil {
				t.Error("a refused deploy created the role or the function")
			}
		})
	}
	// The trigger bucket is checked too: it is in the role's policy.
	if _, err := e.deploy(mustZip(t, testManifest("linux/amd64"), nil), "edited", "*"); err == nil || !strings.Contains(err.Error(), `trigger bucket "*"`) {
		t.Errorf("Deploy to bucket %q: error %v, want the bucket name refused", "*", err)
	}
	if n := calls.Load(); n != 0 || e.roleExists("extract-edited") {
		t.Errorf("deploy to bucket %q: %d AWS calls, role created %v; want none", "*", n, e.roleExists("extract-edited"))
	}
}

// TestDeployMovesTrigger deploys a function on bucket A, then on bucket B:
// A keeps every rule but ours, the function's policy no longer lets A
// invoke it, and a dry run says so first without doing it. Moving on from
// a bucket that was deleted meanwhile removes the permission alone.
func TestDeployMovesTrigger(t *testing.T) {
	e := newEnv(t, "bucket-a", "bucket-b")
	e.putNotification("bucket-a", &s3types.NotificationConfiguration{
		LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			Id: aws.String("theirs"), LambdaFunctionArn: aws.String(otherFunctionARN),
			Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: keyFilter("other/", ""),
		}},
		QueueConfigurations: []s3types.QueueConfiguration{{
			Id: aws.String("queue"), QueueArn: aws.String(queueARN),
			Events: []s3types.Event{"s3:ObjectCreated:Put"}, Filter: keyFilter("", ".json"),
		}},
	})
	foreign := e.ruleSummary("bucket-a")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	res := e.mustDeploy(zip, "momentum", "bucket-a")
	permitted := func(bucket string) bool {
		t.Helper()
		found, _, err := readPermission(context.Background(), e.clients.Lambda, "momentum", permissionStatement{Sid: statementID(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	ours := "Lambda extract-momentum " + res.FunctionARN + " s3:ObjectCreated:* prefix=input/ suffix=.csv"

	moved := []string{
		`update role extract-momentum policy "extract"`,
		"add permission extract-s3-bucket-b (s3.amazonaws.com may invoke momentum for arn:aws:s3:::bucket-b in account 123456789012)",
		`set notification rule extract-momentum on bucket bucket-b (s3:ObjectCreated:*, prefix "input/", suffix ".csv" → momentum)`,
		"remove notification rule extract-momentum from bucket bucket-a (the trigger moved to bucket bucket-b)",
		"remove permission extract-s3-bucket-a from function momentum (the trigger moved to bucket bucket-b)",
	}
	dry, err := e.deploy(zip, "momentum", "bucket-b", WithDryRun(true))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(moved, dry.Changes); diff != "" {
		t.Errorf("dry-run changes (-want +got):\n%s", diff)
	}
	if !permitted("bucket-a") || !slices.Contains(e.ruleSummary("bucket-a"), ours) {
		t.Error("the dry run removed the trigger from bucket-a")
	}

	res = e.mustDeploy(zip, "momentum", "bucket-b")
	if diff := cmp.Diff(moved, res.Changes); diff != "" {
		t.Errorf("Deploy on bucket-b changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(foreign, e.ruleSummary("bucket-a")); diff != "" {
		t.Errorf("bucket-a rules after the move (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ours}, e.ruleSummary("bucket-b")); diff != "" {
		t.Errorf("bucket-b rules after the move (-want +got):\n%s", diff)
	}
	if permitted("bucket-a") || !permitted("bucket-b") {
		t.Errorf("after the move the policy allows bucket-a %v, bucket-b %v; want only bucket-b", permitted("bucket-a"), permitted("bucket-b"))
	}
	if res = e.mustDeploy(zip, "momentum", "bucket-b"); len(res.Changes) != 0 {
		t.Errorf("second Deploy on bucket-b changes = %q, want none", res.Changes)
	}

	// bucket-b deleted: moving back to bucket-a removes only the permission.
	if _, err := e.clients.S3.(*s3.Client).DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String("bucket-b")}); err != nil {
		t.Fatal(err)
	}
	res = e.mustDeploy(zip, "momentum", "bucket-a")
	if want := "remove permission extract-s3-bucket-b from function momentum (the trigger moved to bucket bucket-a)"; !slices.Contains(res.Changes, want) ||
		slices.ContainsFunc(res.Changes, func(c string) bool { return strings.Contains(c, "from bucket bucket-b") }) {
		t.Errorf("Deploy back on bucket-a changes = %q, want %q and no rule removed from the deleted bucket", res.Changes, want)
	}
	if permitted("bucket-b") || !permitted("bucket-a") {
		t.Errorf("after moving back the policy allows bucket-a %v, bucket-b %v; want only bucket-a", permitted("bucket-a"), permitted("bucket-b"))
	}
}

// TestDestroyKeepsUserRole deploys with --role and checks destroy leaves
// that role alone.
func TestDestroyKeepsUserRole(t *testing.T) {
	e := newEnv(t, "inbox")
	role := e.mustUserRole("mine")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	res := e.mustDeploy(zip, "momentum", "inbox", WithRoleARN(role))
	if res.RoleARN != role || slices.ContainsFunc(res.Changes, func(s string) bool { return strings.Contains(s, "role") }) {
		t.Errorf("Deploy with a role: RoleARN %q, changes %q; want %q and no role change", res.RoleARN, res.Changes, role)
	}
	dres := e.destroy("momentum", "inbox")
	if slices.ContainsFunc(dres.Changes, func(s string) bool { return strings.Contains(s, "role") }) {
		t.Errorf("Destroy changes = %q, want no role deleted", dres.Changes)
	}
	if !e.roleExists("mine") {
		t.Error("Destroy deleted the user's role")
	}
}

func TestDeployThroughCodeBucket(t *testing.T) {
	e := newEnv(t, "inbox", "code")
	big := make([]byte, 8192)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	zip := mustZip(t, testManifest("linux/amd64"), map[string][]byte{"rootfs/data": big})
	limits := WithLimits(CodeLimits{DirectUpload: 4096, Unzipped: 1 << 20})

	_, err := e.deploy(zip, "big", "inbox", limits)
	var de *DirectUploadError
	if !errors.As(err, &de) || !IsRefused(err) || de.Size != int64(len(zip)) || de.Limit != 4096 || !strings.Contains(err.Error(), "no code bucket") {
		t.Fatalf("Deploy without a code bucket: error %v, want a refused *DirectUploadError of %d bytes over 4096 saying there is no code bucket", err, len(zip))
	}
	_, err = e.deploy(zip, "big", "inbox", WithLimits(CodeLimits{DirectUpload: 1 << 20, Unzipped: 4096}))
	var se *lambda.SizeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "/data") {
		t.Fatalf("Deploy over the unzipped limit: error %v, want *lambda.SizeError naming /data", err)
	}
	if e.function("big") != nil {
		t.Fatal("a refused deploy created the function")
	}

	res := e.mustDeploy(zip, "big", "inbox", limits, WithCodeBucket("code"))
	sum := sha256.Sum256(zip)
	key := "extract/big/" + hex.EncodeToString(sum[:]) + ".zip"
	if res.CodeLocation != "s3://code/"+key {
		t.Errorf("CodeLocation = %q, want s3://code/%s", res.CodeLocation, key)
	}
	obj, err := e.clients.S3.(*s3.Client).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("code"), Key: &key})
	if err != nil {
		t.Fatalf("code object: %v", err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if !bytes.Equal(body, zip) {
		t.Error("code object differs from the zip")
	}
	if got := deref(e.function("big").Configuration.CodeSha256); got != codeSha(zip) {
		t.Errorf("CodeSha256 = %q, want %q", got, codeSha(zip))
	}
	if res = e.mustDeploy(zip, "big", "inbox", limits, WithCodeBucket("code")); len(res.Changes) != 0 {
		t.Errorf("second Deploy changes = %q, want none", res.Changes)
	}
	dres := e.destroy("big", "inbox", WithCodeBucket("code"))
	if !slices.Contains(dres.Changes, "delete code object s3://code/"+key) {
		t.Errorf("Destroy changes = %q, want the code object deleted", dres.Changes)
	}
	if _, err := e.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("code"), Key: &key}); err == nil {
		t.Error("code object still there after Destroy")
	}
}

func (e *motoEnv) mustUserRole(name string) string {
	e.t.Helper()
	out, err := e.clients.IAM.CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName: &name, AssumeRolePolicyDocument: aws.String(trustPolicy()),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("science")}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return deref(out.Role.Arn)
}

// TestDeployImage packages an image on the fly with package options (the
// trigger prefix among them) and deploys it; the function runs the same
// bytes Package writes, and a second run changes nothing.
func TestDeployImage(t *testing.T) {
	e := newEnv(t, "inbox")
	img := imagetest.Serve(t, testkit.ProgramImage(t))
	pkgOpts := []lambda.PackageOption{lambda.WithBootstrap(testBootstrap), lambda.WithPrefix("data/"), lambda.WithToolVersion("test")}
	var want bytes.Buffer
	pres, err := lambda.Package(context.Background(), img, &want, pkgOpts...)
	if err != nil {
		t.Fatal(err)
	}
	deploy := func() *Result {
		t.Helper()
		res, err := Image(context.Background(), img, "dash", "inbox", pkgOpts, WithClients(e.clients), fastWaits)
		if err != nil {
			t.Fatalf("Image: %v", err)
		}
		return res
	}
	res := deploy()
	if res.CodeSha256 != pres.CodeSHA256 || res.Architecture != pres.Arch {
		t.Errorf("Image CodeSha256 %s, arch %s; Package gives %s, %s", res.CodeSha256, res.Architecture, pres.CodeSHA256, pres.Arch)
	}
	if got := deref(e.function("dash").Configuration.CodeSha256); got != codeSha(want.Bytes()) {
		t.Errorf("function CodeSha256 = %s, want %s", got, codeSha(want.Bytes()))
	}
	wantRules := []string{"Lambda extract-dash " + res.FunctionARN + " s3:ObjectCreated:* prefix=data/ suffix=.csv"}
	if diff := cmp.Diff(wantRules, e.ruleSummary("inbox")); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if res = deploy(); len(res.Changes) != 0 {
		t.Errorf("second Image changes = %q, want none", res.Changes)
	}
}
