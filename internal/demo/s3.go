package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// NewS3 returns an S3 client from the default configuration chain
// (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION, credentials), with
// path-style addressing, which moto on 127.0.0.1 needs.
func NewS3(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		// moto sends no response checksums; the SDK would log that on each get.
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

// MakeBucket creates bucket in the client's region; a bucket the caller
// already owns is not an error.
func MakeBucket(ctx context.Context, c *s3.Client, bucket string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if r := c.Options().Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r)}
	}
	_, err := c.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("creating bucket %q: %w", bucket, err)
	}
	return nil
}

// PutFile uploads file to bucket/key.
func PutFile(ctx context.Context, c *s3.Client, bucket, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          f,
		ContentLength: aws.Int64(fi.Size()),
		ContentType:   aws.String("text/csv"),
	})
	if err != nil {
		return fmt.Errorf("uploading %s to s3://%s/%s: %w", file, bucket, key, err)
	}
	return nil
}

// Get writes the object bucket/key to w.
func Get(ctx context.Context, c *s3.Client, bucket, key string, w io.Writer) error {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("downloading s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if _, err := io.Copy(w, out.Body); err != nil {
		return fmt.Errorf("downloading s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// NoTriggerError says that no notification of the bucket sends an
// ObjectCreated event for the key to the function.
type NoTriggerError struct {
	Bucket, Key, Function string
	// Configured lists the bucket's Lambda notifications, one line each.
	Configured []string
}

func (e *NoTriggerError) Error() string {
	msg := fmt.Sprintf("no notification of bucket %q sends s3:ObjectCreated:Put for %q to function %q", e.Bucket, e.Key, e.Function)
	if len(e.Configured) == 0 {
		return msg + " (the bucket has no Lambda notification)"
	}
	return msg + "; configured: " + strings.Join(e.Configured, "; ")
}

// Event returns the event S3 sends to function when bucket/key is
// uploaded with PutObject: it reads the bucket's notification configuration
// and finds the Lambda notification whose events and prefix/suffix filter
// match (a *NoTriggerError when there is none, so a deploy that did not
// wire the trigger fails here), and the object's size and ETag. function is
// a name or an ARN. The key is URL-encoded the way S3 does it
// ("red flower.csv" → "red+flower.csv").
func Event(ctx context.Context, c *s3.Client, bucket, key, function string) (*events.S3Event, error) {
	nc, err := c.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, fmt.Errorf("reading the notification configuration of bucket %q: %w", bucket, err)
	}
	var match *s3types.LambdaFunctionConfiguration
	var configured []string
	for i, lc := range nc.LambdaFunctionConfigurations {
		prefix, suffix := filterRules(lc.Filter)
		var evs []string
		for _, e := range lc.Events {
			evs = append(evs, string(e))
		}
		configured = append(configured, fmt.Sprintf("%s → %s (events %s, prefix %q, suffix %q)",
			aws.ToString(lc.Id), aws.ToString(lc.LambdaFunctionArn), strings.Join(evs, ","), prefix, suffix))
		if match == nil && functionMatches(aws.ToString(lc.LambdaFunctionArn), function) &&
			eventMatches(evs, "s3:ObjectCreated:Put") &&
			strings.HasPrefix(key, prefix) && strings.HasSuffix(key, suffix) {
			match = &nc.LambdaFunctionConfigurations[i]
		}
	}
	if match == nil {
		return nil, &NoTriggerError{Bucket: bucket, Key: key, Function: function, Configured: configured}
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	region := c.Options().Region
	if arn := aws.ToString(match.LambdaFunctionArn); strings.HasPrefix(arn, "arn:") {
		if parts := strings.Split(arn, ":"); len(parts) > 3 && parts[3] != "" {
			region = parts[3]
		}
	}
	reqID := randomHex(8)
	rec := events.S3EventRecord{
		EventVersion:      "2.1",
		EventSource:       "aws:s3",
		AWSRegion:         region,
		EventTime:         time.Now().UTC().Truncate(time.Millisecond),
		EventName:         "ObjectCreated:Put",
		PrincipalID:       events.S3UserIdentity{PrincipalID: "AWS:AIDAEXTRACTDEMO"},
		RequestParameters: events.S3RequestParameters{SourceIPAddress: "127.0.0.1"},
		ResponseElements: map[string]string{
			"x-amz-request-id": strings.ToUpper(reqID),
			"x-amz-id-2":       randomHex(32),
		},
		S3: events.S3Entity{
			SchemaVersion:   "1.0",
			ConfigurationID: aws.ToString(match.Id),
			Bucket: events.S3Bucket{
				Name:          bucket,
				OwnerIdentity: events.S3UserIdentity{PrincipalID: "A3EXTRACTDEMO"},
				Arn:           "arn:aws:s3:::" + bucket,
			},
			Object: events.S3Object{
				Key:           EncodeKey(key),
				Size:          aws.ToInt64(head.ContentLength),
				URLDecodedKey: key,
				VersionID:     aws.ToString(head.VersionId),
				ETag:          strings.Trim(aws.ToString(head.ETag), `"`),
				Sequencer:     strings.ToUpper(randomHex(9)),
			},
		},
	}
	return &events.S3Event{Records: []events.S3EventRecord{rec}}, nil
}

// EncodeKey URL-encodes an object key the way S3 event notifications do:
// form encoding (space as "+"), slashes kept.
func EncodeKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

func filterRules(f *s3types.NotificationConfigurationFilter) (prefix, suffix string) {
	if f == nil || f.Key == nil {
		return "", ""
	}
	for _, r := range f.Key.FilterRules {
		switch strings.ToLower(string(r.Name)) {
		case "prefix":
			prefix = aws.ToString(r.Value)
		case "suffix":
			suffix = aws.ToString(r.Value)
		}
	}
	return prefix, suffix
}

// functionMatches reports whether the notification's function ARN
// (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]) names fn, a
// function name or ARN.
func functionMatches(arn, fn string) bool {
	if arn == fn {
		return true
	}
	parts := strings.Split(arn, ":")
	return len(parts) >= 7 && parts[5] == "function" && parts[6] == fn
}

// eventMatches reports whether one of the configured event patterns
// ("s3:ObjectCreated:*") covers event.
func eventMatches(patterns []string, event string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, event); ok {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
