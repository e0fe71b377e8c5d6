package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ErrInputChanged is wrapped by the error of a record whose input object
// is no longer the version its event named: two quick uploads of one key
// must not give the older one's output under the newer one's event, nor a
// splice of both.
var ErrInputChanged = errors.New("the input object changed")

// inputPin is the object version every read of a run's input is pinned
// to: the event's ETag (sent as If-Match) and its VersionId, when the
// event has them.
type inputPin struct {
	etag      string // without quotes
	versionID string
}

// pinOf returns the version the event's object names.
func pinOf(o events.S3Object) inputPin {
	return inputPin{etag: strings.Trim(o.ETag, `"`), versionID: o.VersionID}
}

// apply pins the request to p.
func (p inputPin) apply(in *s3.GetObjectInput) {
	if p.etag != "" {
		in.IfMatch = aws.String(`"` + p.etag + `"`)
	}
	if p.versionID != "" {
		in.VersionId = aws.String(p.versionID)
	}
}

// getInput opens the input object pinned to p; a failed precondition
// becomes an error wrapping ErrInputChanged.
func getInput(ctx context.Context, c S3API, bucket, key string, p inputPin) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	p.apply(in)
	out, err := c.GetObject(ctx, in)
	if err != nil && preconditionFailed(err) {
		return nil, fmt.Errorf("s3://%s/%s no longer has the ETag %q its event named (a newer upload replaced it, and its own event processes it): %w: %w",
			bucket, key, p.etag, ErrInputChanged, err)
	}
	return out, err
}

// preconditionFailed reports whether err is S3's answer to an If-Match that
// does not match.
func preconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}
