package deploy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/comingout/extract/internal/mototest"
	"github.com/comingout/extract/pkg/lambda"
)

// TestDestroyPurgeOtherRegion: purging images from an ECR repository in
// another region than the clients' is a *PurgeRegionError naming both
// regions, a failure rather than a refusal.
func TestDestroyPurgeOtherRegion(t *testing.T) {
	e := newEnv(t, "inbox")
	repo := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/extract-momentum"
	_, err := Destroy(context.Background(), "momentum", "inbox", WithClients(e.clients), WithPurgeImages(true), WithRepository(repo))
	var pe *PurgeRegionError
	if !errors.As(err, &pe) || pe.Repository != repo || pe.RepositoryRegion != "eu-west-1" || pe.Region != mototest.Region || IsRefused(err) {
		t.Fatalf("Destroy purging %s = %v, want a *PurgeRegionError eu-west-1 vs %s, not refused", repo, err, mototest.Region)
	}
}

// TestIsRefused: refusals are recognized through wrapping; a
// RecursionError only with its bucket (deploy's, not package's).
func TestIsRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&NotManagedError{Kind: "role", Name: "r"}, true},
		{&DirectUploadError{Size: 2, Limit: 1}, true},
		{&PackageTypeError{Function: "f", Current: "Zip", Want: "Image"}, true},
		{&RepositoryRegionError{}, true},
		{&OverlapError{}, true},
		{&lambda.RecursionError{Bucket: "b", What: lambda.RecursiveOutputKeys}, true},
		{&lambda.RecursionError{What: lambda.RecursiveOutputKeys}, false},
		{&lambda.ManifestError{Problems: []string{"p"}}, true},
		{&lambda.SizeError{Size: 2, Limit: 1}, true},
		{&PurgeRegionError{}, false},
		{&ImagePackageError{Ref: "x"}, false},
		{ErrNoRegion, false},
		{errors.New("throttled"), false},
	} {
		if got := IsRefused(fmt.Errorf("deploying: %w", tc.err)); got != tc.want {
			t.Errorf("IsRefused(%T) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
