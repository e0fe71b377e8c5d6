package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/deploy"
	"github.com/comingout/extract/pkg/lambda"
)

// TestAdviceDeploy: every typed error of pkg/deploy that a flag gets past,
// as the user reads it (wrapped, as commands return them), ends in advice
// naming that flag.
func TestAdviceDeploy(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{&deploy.NotManagedError{Kind: "role", Name: "extract-fn"}, []string{"pass --role with its ARN", "another --function name"}},
		{&deploy.NotManagedError{Kind: "function", Name: "fn"}, []string{"another --function name", "tag it managed-by=extract"}},
		{&deploy.DirectUploadError{Size: 60 << 20, Limit: 50 << 20}, []string{"pass --code-bucket BUCKET"}},
		{&deploy.PackageTypeError{Function: "fn", Current: "Zip", Want: "Image"}, []string{"extract destroy --function fn first", "another --function", "--format zip"}},
		{&deploy.PackageTypeError{Function: "fn", Current: "Image", Want: "Zip"}, []string{"extract destroy --function fn first", "--format image"}},
		{&deploy.RepositoryRegionError{Repository: "r", RepositoryRegion: "eu-west-1", Region: "us-east-1"}, []string{"a --repository in us-east-1", "leave --repository out"}},
		{&deploy.PurgeRegionError{Repository: "r", RepositoryRegion: "eu-west-1", Region: "us-east-1"}, []string{"pass --region eu-west-1"}},
		{&deploy.OverlapError{Bucket: "b", Trigger: "t", Conflicts: []string{"c"}}, []string{"--prefix or --suffix disjoint"}},
		{&deploy.ImagePackageError{Ref: "oci:x"}, []string{"--format image"}},
		{deploy.ErrNoRegion, []string{"pass --region REGION"}},
		{&lambda.RecursionError{Bucket: "b", What: lambda.RecursiveOutputKeys}, []string{"--output-prefix output/", "--output-bucket", "--output-suffix"}},
		{&lambda.RecursionError{Bucket: "b", What: lambda.RecursiveStdoutKeys}, []string{"--output-prefix output/", "a trigger --suffix other than .stdout"}},
		{&lambda.RecursionError{What: lambda.RecursiveDirKeys}, []string{"neither of which starts with the other", "--output-bucket"}},
	} {
		t.Run(fmt.Sprintf("%T %v", tc.err, tc.err), func(t *testing.T) {
			err := advised(fmt.Errorf("deploying: %w", tc.err))
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("advised(%v) = %q, want it to say %q", tc.err, err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "deploying: "+tc.err.Error()+"; ") || !errors.Is(err, tc.err) {
				t.Errorf("advised(%v) = %q, want the error, then the advice, the chain kept", tc.err, err)
			}
		})
	}
	if a := adviceDeploy(errors.New("other")); a != "" {
		t.Errorf("adviceDeploy(other) = %q, want none", a)
	}
}

// TestExitCodeRefused: deploy's refusals exit 4 with their advice added,
// package's check of the same settings (no bucket yet) exits 1.
func TestExitCodeRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&deploy.NotManagedError{Kind: "function", Name: "fn"}, exitRefused},
		{&deploy.DirectUploadError{Size: 2, Limit: 1}, exitRefused},
		{&deploy.OverlapError{Bucket: "b"}, exitRefused},
		{&lambda.RecursionError{Bucket: "b", What: lambda.RecursiveOutputKeys}, exitRefused},
		{&lambda.RecursionError{What: lambda.RecursiveOutputKeys}, exitFailure},
		{&deploy.PurgeRegionError{Repository: "r"}, exitFailure},
		{deploy.ErrNoRegion, exitFailure},
	} {
		if got := exitCode(advised(fmt.Errorf("x: %w", tc.err))); got != tc.want {
			t.Errorf("exitCode(%T %v) = %d, want %d", tc.err, tc.err, got, tc.want)
		}
	}
}
