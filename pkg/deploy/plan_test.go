package deploy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

func TestOverlaps(t *testing.T) {
	created := []string{"s3:ObjectCreated:*"}
	tests := []struct {
		name string
		a, b rule
		want bool
	}{
		{"same filter", rule{Events: created, Prefix: "input/", Suffix: ".csv"}, rule{Events: created, Prefix: "input/", Suffix: ".csv"}, true},
		{"nested prefix", rule{Events: created, Prefix: "input/"}, rule{Events: created, Prefix: "input/2026/"}, true},
		{"empty prefix covers all", rule{Events: created, Prefix: ""}, rule{Events: created, Prefix: "x/"}, true},
		{"disjoint prefixes", rule{Events: created, Prefix: "input/"}, rule{Events: created, Prefix: "output/"}, false},
		{"nested suffix", rule{Events: created, Suffix: ".csv"}, rule{Events: created, Suffix: "day.csv"}, true},
		{"disjoint suffixes", rule{Events: created, Suffix: ".csv"}, rule{Events: created, Suffix: ".json"}, false},
		{"wildcard covers Put", rule{Events: created}, rule{Events: []string{"s3:ObjectCreated:Put"}}, true},
		{"other event type", rule{Events: created}, rule{Events: []string{"s3:ObjectRemoved:*"}}, false},
		{"one of several events", rule{Events: created}, rule{Events: []string{"s3:ObjectRemoved:*", "s3:ObjectCreated:Copy"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := overlaps(tc.a, tc.b); got != tc.want {
				t.Errorf("overlaps(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if got := overlaps(tc.b, tc.a); got != tc.want {
				t.Errorf("overlaps(%v, %v) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

func TestStatementIDAndRoleName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"uploads", "extract-s3-uploads"},
		{"my.bucket-1", "extract-s3-my.bucket-1"},
		{"a:b/c", "extract-s3-a-b-c"},
		{strings.Repeat("b", 120), "extract-s3-" + strings.Repeat("b", 89)},
	}
	for _, tc := range tests {
		if got := statementID(tc.in); got != tc.want {
			t.Errorf("statementID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := RoleName("momentum"); got != "extract-momentum" {
		t.Errorf("RoleName(momentum) = %q", got)
	}
	long := strings.Repeat("f", 64)
	if got := RoleName(long); len(got) != 64 || !strings.HasPrefix(got, "extract-fff") || got == RoleName(long[:63]+"g") {
		t.Errorf("RoleName(64 chars) = %q, want 64 chars, unique per function", got)
	}
}

func TestArchitecture(t *testing.T) {
	tests := []struct {
		platform string
		want     lambdatypes.Architecture
		wantErr  bool
	}{
		{"linux/amd64", lambdatypes.ArchitectureX8664, false},
		{"linux/arm64", lambdatypes.ArchitectureArm64, false},
		{"linux/arm64/v8", lambdatypes.ArchitectureArm64, false},
		{"linux/arm/v7", "", true},
		{"windows/amd64", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := architecture(tc.platform)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("architecture(%q) = %q, %v; want %q, error %v", tc.platform, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSamePolicy(t *testing.T) {
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/*"}]}`
	tests := []struct {
		name, got string
		same      bool
	}{
		{"identical", want, true},
		{"url-encoded, reordered keys, scalar action", "%7B%22Statement%22%3A%5B%7B%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Effect%22%3A%22Allow%22%7D%5D%2C%22Version%22%3A%222012-10-17%22%7D", true},
		{"other resource", strings.Replace(want, "b/*", "c/*", 1), false},
		{"not JSON", "nope", false},
	}
	for _, tc := range tests {
		if got := samePolicy(tc.got, want); got != tc.same {
			t.Errorf("%s: samePolicy = %v, want %v", tc.name, got, tc.same)
		}
	}
}

func TestFindStatement(t *testing.T) {
	want := permissionStatement{Sid: "extract-s3-uploads", SourceARN: "arn:aws:s3:::uploads", Account: "111122223333"}
	stmt := func(sid, principal, arn, account string) string {
		return `{"Sid":"` + sid + `","Effect":"Allow","Principal":{"Service":"` + principal + `"},"Action":"lambda:InvokeFunction",` +
			`"Resource":"arn:aws:lambda:us-east-1:111122223333:function:f","Condition":{"StringEquals":{"AWS:SourceAccount":"` + account +
			`"},"ArnLike":{"AWS:SourceArn":"` + arn + `"}}}`
	}
	policy := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Id":"default","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	tests := []struct {
		name           string
		policy         string
		found, matches bool
	}{
		{"ours among others", policy(stmt("other", "sns.amazonaws.com", "x", "y"), stmt(want.Sid, "s3.amazonaws.com", want.SourceARN, want.Account)), true, true},
		{"other bucket", policy(stmt(want.Sid, "s3.amazonaws.com", "arn:aws:s3:::elsewhere", want.Account)), true, false},
		{"other account", policy(stmt(want.Sid, "s3.amazonaws.com", want.SourceARN, "999999999999")), true, false},
		{"other principal", policy(stmt(want.Sid, "sqs.amazonaws.com", want.SourceARN, want.Account)), true, false},
		{"absent", policy(stmt("other", "s3.amazonaws.com", want.SourceARN, want.Account)), false, false},
	}
	for _, tc := range tests {
		found, matches, err := findStatement(tc.policy, want)
		if err != nil || found != tc.found || matches != tc.matches {
			t.Errorf("%s: findStatement = %v, %v, %v; want %v, %v", tc.name, found, matches, err, tc.found, tc.matches)
		}
	}
	if _, _, err := findStatement("{", want); err == nil {
		t.Error("findStatement of broken JSON: no error")
	}
}

func TestMergeNotification(t *testing.T) {
	const ours = "arn:aws:lambda:us-east-1:111122223333:function:momentum"
	trig := Trigger{ID: "extract-momentum", Bucket: "uploads", Prefix: "input/", Suffix: ".csv"}
	queue := s3types.QueueConfiguration{Id: aws.String("q"), QueueArn: aws.String("arn:aws:sqs:us-east-1:111122223333:q"),
		Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: keyFilter("logs/", "")}
	topic := s3types.TopicConfiguration{Id: aws.String("t"), TopicArn: aws.String("arn:aws:sns:us-east-1:111122223333:t"),
		Events: []s3types.Event{"s3:ObjectRemoved:*"}}
	eb := &s3types.EventBridgeConfiguration{}
	wantRule := lambdaRule(trig, ours)
	ignore := cmpopts.IgnoreUnexported(s3types.NotificationConfiguration{}, s3types.LambdaFunctionConfiguration{},
		s3types.QueueConfiguration{}, s3types.TopicConfiguration{}, s3types.EventBridgeConfiguration{},
		s3types.NotificationConfigurationFilter{}, s3types.S3KeyFilter{}, s3types.FilterRule{})

	stale := wantRule
	stale.Filter = keyFilter("old/", ".csv")
	tests := []struct {
		name        string
		in          *s3types.NotificationConfiguration
		want        *s3types.NotificationConfiguration
		wantChanged bool
	}{
		{"empty bucket", &s3types.NotificationConfiguration{},
			&s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{wantRule}}, true},
		{"others kept, EventBridge too",
			&s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{queue}, TopicConfigurations: []s3types.TopicConfiguration{topic}, EventBridgeConfiguration: eb},
			&s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{queue}, TopicConfigurations: []s3types.TopicConfiguration{topic}, EventBridgeConfiguration: eb,
				LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{wantRule}}, true},
		{"already there (S3 spells filter names capitalized)",
			&s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{Id: wantRule.Id, LambdaFunctionArn: wantRule.LambdaFunctionArn, Events: wantRule.Events,
				Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{{Name: "Suffix", Value: aws.String(".csv")}, {Name: "Prefix", Value: aws.String("input/")}}}}}}},
			nil, false},
		{"stale rule replaced in place",
			&s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{stale}, QueueConfigurations: []s3types.QueueConfiguration{queue}},
			&s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{wantRule}, QueueConfigurations: []s3types.QueueConfiguration{queue}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := mergeNotification(tc.in, trig, ours)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, got, ignore); diff != "" {
					t.Errorf("merged (-want +got):\n%s", diff)
				}
			}
			back, removed := removeNotification(got, trig.ID)
			if !removed || len(back.LambdaFunctionConfigurations) != 0 || len(back.QueueConfigurations) != len(tc.in.QueueConfigurations) ||
				len(back.TopicConfigurations) != len(tc.in.TopicConfigurations) || back.EventBridgeConfiguration != tc.in.EventBridgeConfiguration {
				t.Errorf("removeNotification(merged) = %+v, %v; want the original rules only", back, removed)
			}
		})
	}

	// Overlap with a rule for the same function under another id counts.
	dup := wantRule
	dup.Id = aws.String("hand-made")
	_, _, err := mergeNotification(&s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{dup}}, trig, ours)
	var oe *OverlapError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "hand-made") || !strings.Contains(err.Error(), "another id") {
		t.Errorf("merge over a same-target rule: %v, want *OverlapError naming it", err)
	}
}

func TestConfigChanges(t *testing.T) {
	spec := functionSpec{Role: "arn:aws:iam::1:role/r", MemorySize: 512, Timeout: 60, EphemeralStorage: 512, LogFormat: lambdatypes.LogFormatText, Env: map[string]string{"A": "1"}}
	cur := &lambdatypes.FunctionConfiguration{
		Role: aws.String(spec.Role), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		MemorySize: aws.Int32(512), Timeout: aws.Int32(60), EphemeralStorage: &lambdatypes.EphemeralStorage{Size: aws.Int32(512)},
		Environment: &lambdatypes.EnvironmentResponse{Variables: map[string]string{"A": "1"}},
	}
	if got := configChanges(cur, spec); len(got) != 0 {
		t.Errorf("configChanges(same) = %q, want none", got)
	}
	changed := *cur
	changed.Timeout = aws.Int32(30)
	changed.Environment = &lambdatypes.EnvironmentResponse{Variables: map[string]string{"A": "secret-value", "B": "2"}}
	changed.Runtime = lambdatypes.RuntimeProvidedal2
	got := configChanges(&changed, spec)
	want := []string{"runtime provided.al2 → provided.al2023", "timeout 30s → 60s", "environment [A B] → [A]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configChanges (-want +got):\n%s", diff)
	}
	if strings.Contains(strings.Join(got, " "), "secret-value") {
		t.Error("configChanges shows environment values")
	}
	// No environment on either side is no change.
	spec.Env = nil
	cur.Environment = nil
	if got := configChanges(cur, spec); len(got) != 0 {
		t.Errorf("configChanges(no env) = %q, want none", got)
	}
}

func TestRolePolicyScopes(t *testing.T) {
	id := identity{Account: "111122223333", Partition: "aws-cn", Region: "cn-north-1"}
	m := &xruntime.Manifest{Input: xruntime.Input{Prefix: "input/", Suffix: ".csv"}, Output: xruntime.Output{Bucket: "results", Prefix: "out/"}}
	p := rolePolicy(id, "momentum", "uploads", m)
	for _, want := range []string{
		`"Action":"s3:GetObject","Resource":"arn:aws-cn:s3:::uploads/input/*"`,
		`"Action":["s3:PutObject","s3:AbortMultipartUpload"],"Resource":"arn:aws-cn:s3:::results/out/*"`,
		`"Resource":"arn:aws-cn:logs:cn-north-1:111122223333:log-group:/aws/lambda/momentum:*"`,
		`"Resource":"arn:aws-cn:logs:cn-north-1:111122223333:log-group:/aws/lambda/momentum:log-stream:*"`,
	} {
		if !strings.Contains(p, want) {
			t.Errorf("rolePolicy = %s\nlacks %s", p, want)
		}
	}
	for _, bad := range []string{`"*"`, "s3:*", "logs:*"} {
		if strings.Contains(p, bad) {
			t.Errorf("rolePolicy grants %s: %s", bad, p)
		}
	}
}

func TestStaleTriggers(t *testing.T) {
	policy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"extract-s3-new","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",
		 "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::new"}}},
		{"Sid":"extract-s3-old","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",
		 "Condition":{"ArnLike":{"AWS:SourceArn":["arn:aws-cn:s3:::old"]},"StringEquals":{"AWS:SourceAccount":"123456789012"}}},
		{"Sid":"extract-s3-bare","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction"},
		{"Sid":"theirs","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",
		 "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::theirs"}}}]}`
	got, err := staleTriggers(policy, "extract-s3-new")
	if err != nil {
		t.Fatal(err)
	}
	want := []staleTrigger{{Sid: "extract-s3-bare"}, {Sid: "extract-s3-old", Bucket: "old"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("staleTriggers (-want +got):\n%s", diff)
	}
	if _, err := staleTriggers("{", "x"); err == nil {
		t.Error("staleTriggers of bad JSON: no error")
	}
}

func TestRemoveOurRule(t *testing.T) {
	const fn = "arn:aws:lambda:us-east-1:123456789012:function:momentum"
	lambdaRule := func(id, target string) s3types.LambdaFunctionConfiguration {
		return s3types.LambdaFunctionConfiguration{Id: aws.String(id), LambdaFunctionArn: aws.String(target), Events: []s3types.Event{triggerEvent}}
	}
	queue := []s3types.QueueConfiguration{{Id: aws.String("q"), QueueArn: aws.String("arn:aws:sqs:us-east-1:123456789012:q")}}
	nc := &s3types.NotificationConfiguration{
		LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{
			lambdaRule("extract-momentum", fn),
			lambdaRule("extract-momentum", fn+":live"),
			lambdaRule("extract-momentum", fn+"-other"), // same id, another function: not ours
			lambdaRule("other", fn),
		},
		QueueConfigurations: queue,
	}
	out, removed := removeOurRule(nc, "extract-momentum", fn)
	if !removed {
		t.Fatal("removeOurRule: nothing removed")
	}
	var kept []string
	for _, r := range rules(out) {
		kept = append(kept, r.ID+" "+r.Target)
	}
	want := []string{"extract-momentum " + fn + "-other", "other " + fn, "q arn:aws:sqs:us-east-1:123456789012:q"}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("rules kept (-want +got):\n%s", diff)
	}
	if _, removed := removeOurRule(out, "extract-momentum", fn); removed {
		t.Error("removeOurRule removed a rule the second time")
	}
}

// TestRolePolicyDocumented holds the role policy README.md and
// docs/deploying.md show to the one deploy writes: the same JSON value for
// the placeholders the docs use (BUCKET, OUTPUT_BUCKET, the default
// prefixes, REGION, ACCOUNT, NAME), so every action and resource they list
// is granted and nothing else is.
func TestRolePolicyDocumented(t *testing.T) {
	id := identity{Account: "ACCOUNT", Partition: "aws", Region: "REGION"}
	m := &xruntime.Manifest{
		Input:  xruntime.Input{Prefix: lambda.DefaultInputPrefix, Suffix: lambda.DefaultInputSuffix},
		Output: xruntime.Output{Bucket: "OUTPUT_BUCKET", Prefix: lambda.DefaultOutputPrefix},
	}
	var want any
	if err := json.Unmarshal([]byte(rolePolicy(id, "NAME", "BUCKET", m)), &want); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{"README.md", "docs/deploying.md"} {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(doc)))
			if err != nil {
				t.Fatal(err)
			}
			block := jsonBlock(string(b), `"ReadTriggerObjects"`)
			if block == "" {
				t.Fatalf("%s has no json block with the role policy (Sid ReadTriggerObjects)", doc)
			}
			var got any
			if err := json.Unmarshal([]byte(block), &got); err != nil {
				t.Fatalf("%s: the role policy is not JSON: %v\n%s", doc, err, block)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: role policy differs from what deploy writes (-deploy +doc):\n%s", doc, diff)
			}
		})
	}
}

// jsonBlock returns the body of the first ```json fenced block of a
// Markdown document that contains marker, or "".
func jsonBlock(doc, marker string) string {
	for rest := doc; ; {
		_, after, ok := strings.Cut(rest, "```json\n")
		if !ok {
			return ""
		}
		body, tail, ok := strings.Cut(after, "```")
		if !ok {
			return ""
		}
		if strings.Contains(body, marker) {
			return body
		}
		rest = tail
	}
}
