package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// This file holds the repository side of container-image deploys: where the
// image goes (WithRepository's or the default ECR repository extract-NAME),
// the ECR repository extract creates and maintains, and the images Destroy
// removes with WithPurgeImages.

// ecrHostRE matches private ECR registries:
// ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn].
var ecrHostRE = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// repository is where a container image is pushed.
type repository struct {
	ref name.Repository
	// ecr is set for a private ECR registry, with its account and region.
	ecr             bool
	account, region string
	// name is the repository's name inside its registry ("extract-momentum").
	name string
}

// String is the repository reference: REGISTRY/NAME.
func (r *repository) String() string { return r.ref.Name() }

// parseRepository reads a repository reference: REGISTRY/NAME, no tag or
// digest.
func parseRepository(ref string) (*repository, error) {
	if strings.Contains(ref, "@") {
		return nil, fmt.Errorf("repository %q has a digest: give the repository only (REGISTRY/NAME); deploy chooses the tag and pins the digest", ref)
	}
	// A tag is a ":" after the last "/" (a ":" before it is a port).
	if i := strings.LastIndex(ref, "/"); i >= 0 && strings.Contains(ref[i:], ":") {
		return nil, fmt.Errorf("repository %q has a tag: give the repository only (REGISTRY/NAME); deploy tags the image itself", ref)
	}
	if !strings.Contains(ref, "/") {
		return nil, fmt.Errorf("repository %q names no registry: give REGISTRY/NAME, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME", ref)
	}
	r, err := name.NewRepository(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", ref, err)
	}
	out := &repository{ref: r, name: r.RepositoryStr()}
	if m := ecrHostRE.FindStringSubmatch(r.RegistryStr()); m != nil {
		out.ecr, out.account, out.region = true, m[1], m[3]
		if !ecrRepositoryNameRE.MatchString(out.name) || len(out.name) > 256 {
			return nil, fmt.Errorf("repository %q: %q is not an ECR repository name (lower-case letters and digits, separated by single ., _, - or /)", ref, out.name)
		}
	}
	return out, nil
}

// ecrRepositoryNameRE is ECR's rule for repository names.
var ecrRepositoryNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)

// RepositoryName is the name of the ECR repository deploy creates for
// function's container images: "extract-" + the function name in lower
// case, runs of "_" and "-" made one "-" (ECR's rule); when that changed the
// name, a hash of the original keeps names that differ only in case apart.
func RepositoryName(function string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(function) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteRune(r)
			continue
		}
		sep = true
	}
	s := b.String()
	if s != function {
		sum := sha256.Sum256([]byte(function))
		if s != "" {
			s += "-"
		}
		s += hex.EncodeToString(sum[:4])
	}
	return "extract-" + s
}

// defaultRepository is the ECR repository extract-NAME in the deploying
// account and region.
func defaultRepository(id identity, function string) (*repository, error) {
	host := fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", id.Account, id.Region)
	if id.Partition == "aws-cn" {
		host += ".cn"
	}
	return parseRepository(host + "/" + RepositoryName(function))
}

// imageTagPrefix is how every tag deploy gives function's images starts:
// Destroy with WithPurgeImages removes exactly the tags with it.
func imageTagPrefix(function string) string { return "extract-" + function + "-" }

// imageTag is the tag of an image with digest ("sha256:HEX") deployed as
// function: the prefix and the digest's first 16 hex digits. It never moves
// to another image, so a re-deploy of the same image finds it in place.
func imageTag(function, digest string) string {
	return imageTagPrefix(function) + strings.TrimPrefix(digest, "sha256:")[:16]
}

// repositoryPolicyJSON is the policy extract puts on the ECR repositories it
// creates: Lambda (the service, for functions of the deploying account in
// its region) may pull the images, nothing more. Lambda would otherwise add
// a broader statement itself on the first CreateFunction.
func repositoryPolicyJSON(id identity) string {
	return mustJSON(policyDocument{
		Version: "2012-10-17",
		Statement: []policyStatement{{
			Sid:       "LambdaECRImageRetrievalPolicy",
			Effect:    "Allow",
			Principal: map[string]string{"Service": "lambda.amazonaws.com"},
			Action:    []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"},
			Condition: map[string]map[string]string{
				"StringLike": {"aws:sourceArn": fmt.Sprintf("arn:%s:lambda:%s:%s:function:*", id.Partition, id.Region, id.Account)},
			},
		}},
	})
}

// ecrManaged reports whether the ECR repository arn carries the
// managed-by=extract tag.
func ecrManaged(ctx context.Context, c ECRAPI, arn string) (bool, error) {
	out, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil {
		return false, wrapAWS(err, "reading the tags of repository %s", arn)
	}
	for _, t := range out.Tags {
		if deref(t.Key) == ManagedByTag && deref(t.Value) == ManagedByValue {
			return true, nil
		}
	}
	return false, nil
}

// describeRepository returns the ECR repository, or nil when it does not
// exist.
func describeRepository(ctx context.Context, c ECRAPI, r *repository) (*ecrtypes.Repository, error) {
	out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: &r.account, RepositoryNames: []string{r.name}})
	if isCode(err, "RepositoryNotFoundException") {
		return nil, nil
	}
	if err != nil {
		return nil, wrapAWS(err, "reading ECR repository %s", r)
	}
	for i := range out.Repositories {
		if deref(out.Repositories[i].RepositoryName) == r.name {
			return &out.Repositories[i], nil
		}
	}
	return nil, nil
}

// ensureRepository makes the image's ECR repository ready in the deploying
// account: created when missing (scan on push, tag managed-by=extract, the
// Lambda pull policy), its pull policy brought up to date when extract
// manages it; a repository extract did not create, or one of another
// account, is used as it is. Other registries are not Lambda's and only get
// a warning.
func (d *deployer) ensureRepository(ctx context.Context) error {
	r := d.repo
	if !r.ecr {
		d.log.Warn("the repository is not in ECR: Lambda pulls container images only from ECR in the function's region", "repository", r.String())
		return nil
	}
	if r.account != d.id.Account {
		d.log.Info("the repository is in another account: it is used as it is, and its policy must let this account's Lambda functions pull", "repository", r.String())
		return nil
	}
	c := d.c.ECR
	cur, err := describeRepository(ctx, c, r)
	if err != nil {
		return err
	}
	policy := repositoryPolicyJSON(d.id)
	if cur == nil {
		d.change("create ECR repository %s (scan on push, tag %s=%s, Lambda may pull)", r, ManagedByTag, ManagedByValue)
		d.repoCreated = true
		if d.o.dryRun {
			return nil
		}
		_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{
			RepositoryName:             &r.name,
			ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true},
			Tags:                       []ecrtypes.Tag{{Key: aws.String(ManagedByTag), Value: aws.String(ManagedByValue)}},
		})
		if isCode(err, "RepositoryAlreadyExistsException") {
			// Made meanwhile by someone else: used as it is.
			d.log.Info("the ECR repository appeared while deploy created it; using it as it is", "repository", r.String())
			return nil
		}
		if err != nil {
			return wrapAWS(err, "creating ECR repository %s", r)
		}
		_, err = c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: &r.name, PolicyText: &policy})
		return wrapAWS(err, "setting the policy of ECR repository %s", r)
	}
	managed, err := ecrManaged(ctx, c, deref(cur.RepositoryArn))
	if err != nil || !managed {
		return err
	}
	got, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: &r.name})
	if err != nil && !isCode(err, "RepositoryPolicyNotFoundException") {
		return wrapAWS(err, "reading the policy of ECR repository %s", r)
	}
	if err == nil && samePolicy(deref(got.PolicyText), policy) {
		return nil
	}
	d.change("set the policy of ECR repository %s (Lambda may pull)", r)
	if d.o.dryRun {
		return nil
	}
	_, err = c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: &r.name, PolicyText: &policy})
	return wrapAWS(err, "setting the policy of ECR repository %s", r)
}

// remoteOptions are the registry options of a deploy or destroy: its
// context and keychain.
func remoteOptions(ctx context.Context, kc authn.Keychain) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
}

// isNotFound reports whether err is a registry's 404 (unknown repository,
// manifest or tag).
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// purgePlan decides what Destroy with WithPurgeImages removes from a repository
// whose images are digest → tags: every tag starting with prefix, and an
// image itself when all its tags are such tags. emptyAfter reports whether
// nothing would be left.
func purgePlan(images map[string][]string, prefix string) (tags []string, gone []string, emptyAfter bool) {
	emptyAfter = true
	for _, digest := range slices.Sorted(maps.Keys(images)) {
		ours, others := 0, 0
		for _, t := range images[digest] {
			if strings.HasPrefix(t, prefix) {
				tags = append(tags, t)
				ours++
			} else {
				others++
			}
		}
		if ours > 0 && others == 0 {
			gone = append(gone, digest)
		} else {
			emptyAfter = false
		}
	}
	slices.Sort(tags)
	return tags, gone, emptyAfter
}

// purgeECR removes function's images (tags extract-NAME-*) from the ECR
// repository r, and the repository when extract created it and nothing
// else is left in it.
func purgeECR(ctx context.Context, c ECRAPI, r *repository, function string, dryRun bool, change func(string, ...any)) error {
	repo, err := describeRepository(ctx, c, r)
	if err != nil || repo == nil {
		return err
	}
	images := map[string][]string{}
	var token *string
	for {
		out, err := c.ListImages(ctx, &ecr.ListImagesInput{RegistryId: &r.account, RepositoryName: &r.name, NextToken: token})
		if err != nil {
			return wrapAWS(err, "listing the images of ECR repository %s", r)
		}
		for _, id := range out.ImageIds {
			digest := deref(id.ImageDigest)
			if _, ok := images[digest]; !ok {
				images[digest] = nil
			}
			if t := deref(id.ImageTag); t != "" {
				images[digest] = append(images[digest], t)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	tags, _, emptyAfter := purgePlan(images, imageTagPrefix(function))
	for _, t := range tags {
		change("delete image %s:%s", r, t)
	}
	if !dryRun {
		// Deleting by tag removes the tag, and the image once it has no
		// tag left: an image someone else also tagged stays.
		for batch := range slices.Chunk(tags, 100) {
			ids := make([]ecrtypes.ImageIdentifier, len(batch))
			for i, t := range batch {
				ids[i] = ecrtypes.ImageIdentifier{ImageTag: aws.String(t)}
			}
			out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RegistryId: &r.account, RepositoryName: &r.name, ImageIds: ids})
			if err != nil {
				return wrapAWS(err, "deleting images of ECR repository %s", r)
			}
			var errs []error
			for _, f := range out.Failures {
				if f.FailureCode == ecrtypes.ImageFailureCodeImageNotFound || f.FailureCode == ecrtypes.ImageFailureCodeImageTagDoesNotMatchDigest {
					continue
				}
				errs = append(errs, fmt.Errorf("%s: %s", deref(f.ImageId.ImageTag), deref(f.FailureReason)))
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("deleting images of ECR repository %s: %w", r, err)
			}
		}
	}
	if !emptyAfter {
		return nil
	}
	managed, err := ecrManaged(ctx, c, deref(repo.RepositoryArn))
	if err != nil || !managed {
		return err
	}
	change("delete ECR repository %s (empty, created by extract)", r)
	if dryRun {
		return nil
	}
	// Not forced: an image pushed meanwhile makes this fail rather than
	// vanish.
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RegistryId: &r.account, RepositoryName: &r.name})
	if err != nil && !isCode(err, "RepositoryNotFoundException") {
		return wrapAWS(err, "deleting ECR repository %s", r)
	}
	return nil
}

// purgeRegistry removes function's images (tags extract-NAME-*) from r
// through the registry API: each such tag, and the manifest itself when
// only such tags named it. Registries do not delete repositories.
func purgeRegistry(ctx context.Context, r *repository, function string, kc authn.Keychain, dryRun bool, change func(string, ...any)) error {
	opts := remoteOptions(ctx, kc)
	all, err := remote.List(r.ref, opts...)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing the tags of %s: %w", r, err)
	}
	images := map[string][]string{}
	digestOf := map[string]string{}
	for _, t := range all {
		desc, err := remote.Head(r.ref.Tag(t), opts...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s:%s: %w", r, t, err)
		}
		images[desc.Digest.String()] = append(images[desc.Digest.String()], t)
		digestOf[t] = desc.Digest.String()
	}
	tags, gone, _ := purgePlan(images, imageTagPrefix(function))
	for _, t := range tags {
		change("delete image %s:%s", r, t)
	}
	if dryRun {
		return nil
	}
	for _, digest := range gone {
		if err := remote.Delete(r.ref.Digest(digest), opts...); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting %s@%s: %w", r, digest, err)
		}
	}
	// Registries that keep a tag apart from its manifest lose it here; a
	// registry that cannot delete tags has dropped them with the manifest,
	// which is all that matters for the tags of a deleted image.
	var errs []error
	for _, t := range tags {
		err := remote.Delete(r.ref.Tag(t), opts...)
		if err != nil && !isNotFound(err) && !slices.Contains(gone, digestOf[t]) {
			errs = append(errs, fmt.Errorf("deleting %s:%s: %w", r, t, err))
		}
	}
	return errors.Join(errs...)
}
