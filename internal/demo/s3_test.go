package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/comingout/extract/internal/mototest"
)

func TestEncodeKey(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"input/day1.csv", "input/day1.csv"},
		{"input/red flower.csv", "input/red+flower.csv"},
		{"input/a+b.csv", "input/a%2Bb.csv"},
		{"input/été/x.csv", "input/%C3%A9t%C3%A9/x.csv"},
	} {
		if got := EncodeKey(c.key); got != c.want {
			t.Errorf("EncodeKey(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

func TestFunctionMatches(t *testing.T) {
	arn := "arn:aws:lambda:us-east-1:123456789012:function:momentum"
	for _, c := range []struct {
		arn, fn string
		want    bool
	}{
		{arn, "momentum", true},
		{arn, arn, true},
		{arn + ":live", "momentum", true},
		{arn, "momentum2", false},
		{"arn:aws:sqs:us-east-1:123456789012:momentum", "momentum", false},
	} {
		if got := functionMatches(c.arn, c.fn); got != c.want {
			t.Errorf("functionMatches(%q, %q) = %v, want %v", c.arn, c.fn, got, c.want)
		}
	}
}

func TestEventFromNotification(t *testing.T) {
	srv := mototest.Start(t)
	srv.Setenv(t)
	ctx := context.Background()
	c, err := NewS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "demo-bucket"
	if err := MakeBucket(ctx, c, bucket); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	if err := MakeBucket(ctx, c, bucket); err != nil {
		t.Fatalf("MakeBucket again (already owned): %v", err)
	}
	csv := filepath.Join(t.TempDir(), "red flower.csv")
	content := "mass,velocity\n10,2.5\n"
	if err := os.WriteFile(csv, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	const key = "input/red flower.csv"
	if err := PutFile(ctx, c, bucket, key, csv); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	var got bytes.Buffer
	if err := Get(ctx, c, bucket, key, &got); err != nil || got.String() != content {
		t.Fatalf("Get = %q, %v; want %q", got.String(), err, content)
	}

	// No notification yet: the error says so.
	_, err = Event(ctx, c, bucket, key, "momentum")
	var nt *NoTriggerError
	if !errors.As(err, &nt) || len(nt.Configured) != 0 {
		t.Fatalf("Event without notification = %v, want a *NoTriggerError with nothing configured", err)
	}

	arn := "arn:aws:lambda:" + mototest.Region + ":" + mototest.AccountID + ":function:momentum"
	other := "arn:aws:lambda:" + mototest.Region + ":" + mototest.AccountID + ":function:other"
	rule := func(prefix, suffix string) *s3types.NotificationConfigurationFilter {
		return &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
			{Name: s3types.FilterRuleNamePrefix, Value: aws.String(prefix)},
			{Name: s3types.FilterRuleNameSuffix, Value: aws.String(suffix)},
		}}}
	}
	_, err = c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{
			LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{
				{Id: aws.String("other-fn"), LambdaFunctionArn: aws.String(other), Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: rule("input/", ".csv")},
				{Id: aws.String("removed-only"), LambdaFunctionArn: aws.String(arn), Events: []s3types.Event{"s3:ObjectRemoved:*"}, Filter: rule("input/", ".csv")},
				{Id: aws.String("txt-only"), LambdaFunctionArn: aws.String(arn), Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: rule("input/", ".txt")},
				{Id: aws.String("extract-momentum"), LambdaFunctionArn: aws.String(arn), Events: []s3types.Event{"s3:ObjectCreated:*"}, Filter: rule("input/", ".csv")},
			},
		},
	})
	if err != nil {
		t.Fatalf("PutBucketNotificationConfiguration: %v", err)
	}

	ev, err := Event(ctx, c, bucket, key, "momentum")
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	// Round-trip through JSON, as the invoker reads it.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back events.S3Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Records) != 1 {
		t.Fatalf("event has %d records, want 1", len(back.Records))
	}
	r := back.Records[0]
	checks := []struct{ field, got, want string }{
		{"eventSource", r.EventSource, "aws:s3"},
		{"eventName", r.EventName, "ObjectCreated:Put"},
		{"awsRegion", r.AWSRegion, mototest.Region},
		{"configurationId", r.S3.ConfigurationID, "extract-momentum"},
		{"bucket.name", r.S3.Bucket.Name, bucket},
		{"bucket.arn", r.S3.Bucket.Arn, "arn:aws:s3:::" + bucket},
		{"object.key", r.S3.Object.Key, "input/red+flower.csv"},
		{"object.urlDecodedKey", r.S3.Object.URLDecodedKey, key},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("event %s = %q, want %q", ck.field, ck.got, ck.want)
		}
	}
	if r.S3.Object.Size != int64(len(content)) {
		t.Errorf("event object.size = %d, want %d", r.S3.Object.Size, len(content))
	}
	if r.S3.Object.ETag == "" || strings.Contains(r.S3.Object.ETag, `"`) {
		t.Errorf("event object.eTag = %q, want the unquoted ETag", r.S3.Object.ETag)
	}

	// A key outside the filter, and a function without notification.
	for _, tc := range []struct{ key, fn string }{
		{"output/red flower.csv", "momentum"},
		{"input/notes.md", "momentum"},
		{key, "nobody"},
	} {
		_, err := Event(ctx, c, bucket, tc.key, tc.fn)
		if !errors.As(err, &nt) || len(nt.Configured) != 4 || !strings.Contains(err.Error(), "extract-momentum") {
			t.Errorf("Event(%q, %q) = %v, want a *NoTriggerError listing the 4 notifications", tc.key, tc.fn, err)
		}
	}
}
