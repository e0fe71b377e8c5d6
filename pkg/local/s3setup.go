package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
)

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
			inv.s3local.requireAccessKey(local.AccessKeyID)
		}
		return nil
	}
	switch {
	case inv.s3local != nil:
		if err := useLocal(); err != nil {
			return nil, err
		}
	case endpoint != "" && localEndpoint(endpoint) && !inv.o.callerCreds:
		inv.o.logger.Debug("S3 is a local endpoint: the function gets dummy credentials, not the caller's (WithCallerCredentials passes them)", "endpoint", endpoint)
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
