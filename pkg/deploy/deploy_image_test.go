package deploy

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/comingout/extract/internal/imagebuild"
	"github.com/comingout/extract/internal/testkit"
	"github.com/comingout/extract/internal/testkit/imagetest"
	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// testRegistry is an in-process registry that records the requests that
// write to it.
type testRegistry struct {
	host string
	mu   sync.Mutex
	log  []string // "METHOD kind", kind one of upload, manifest, blob
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	r.host = testkit.NewRegistry(t, func(req *http.Request) {
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			return
		}
		kind := "blob"
		switch {
		case strings.Contains(req.URL.Path, "/blobs/uploads/"):
			kind = "upload"
		case strings.Contains(req.URL.Path, "/manifests/"):
			kind = "manifest"
		}
		r.mu.Lock()
		r.log = append(r.log, req.Method+" "+kind)
		r.mu.Unlock()
	}).Host()
	return r
}

// writes returns and forgets the write requests seen so far.
func (r *testRegistry) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

// count is how many of the writes are method+" "+kind.
func count(writes []string, what string) int {
	n := 0
	for _, w := range writes {
		if w == what {
			n++
		}
	}
	return n
}

// testContainer is a container image shaped like lambda.PackageImage's: the
// base layer, then a layer with a bootstrap (saying body) and the
// manifest under /opt/extract, the bootstrap as ENTRYPOINT.
func testContainer(t *testing.T, base v1.Layer, body, platform string) ContainerImage {
	t.Helper()
	m := testManifest(platform)
	top := testkit.FilesLayer(t,
		testkit.File{Name: "opt/extract/", Type: tar.TypeDir},
		testkit.File{Name: "opt/extract/bootstrap", Body: "#!/bin/sh\necho " + body + "\n", Mode: 0o755},
		testkit.File{Name: "opt/extract/extract.json", Body: string(mustJSONBytes(t, m))},
	)
	img, err := mutate.AppendLayers(empty.Image, base, top)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := architecture(platform)
	if err != nil {
		t.Fatal(err)
	}
	img = testkit.Configure(t, img, "linux/"+lambdaPlatform(arch), v1.Config{Entrypoint: []string{"/opt/extract/bootstrap"}})
	return ContainerImage{Image: img, Arch: string(arch), Manifest: m}
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	s := mustJSON(v)
	if s == "" {
		t.Fatalf("marshaling %v", v)
	}
	return []byte(s)
}

func mustDigest(t *testing.T, ci ContainerImage) string {
	t.Helper()
	h, err := ci.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// imageEnv is moto with its Lambda checking images against its own ECR,
// and an in-process registry deploy pushes to.
type imageEnv struct {
	*motoEnv
	reg  *testRegistry
	repo string // REGISTRY/extract-momentum
}

// newImageEnv starts moto with MOTO_LAMBDA_STUB_ECR=false: its
// CreateFunction and UpdateFunctionCode with an ImageUri then look the
// image up in moto's ECR (by the URI's last path element as repository
// name and its digest), as Lambda does in ECR, and report the digest as
// CodeSha256, as Lambda does. moto's ECR cannot receive a push, so the
// test registers each image there by hand (registerECR) besides deploy's
// real push to the in-process registry.
func newImageEnv(t *testing.T, buckets ...string) *imageEnv {
	t.Helper()
	t.Setenv("MOTO_LAMBDA_STUB_ECR", "false")
	e := &imageEnv{motoEnv: newEnv(t, buckets...), reg: newTestRegistry(t)}
	e.repo = e.reg.host + "/extract-momentum"
	return e
}

// registerECR puts the image's manifest into moto's ECR repository name
// (created when missing) under its digest and tag.
func (e *motoEnv) registerECR(repo string, ci ContainerImage, tag string) {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.clients.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: &repo})
	if err != nil && !isCode(err, "RepositoryAlreadyExistsException") {
		e.t.Fatal(err)
	}
	raw, err := ci.Image.RawManifest()
	if err != nil {
		e.t.Fatal(err)
	}
	mt, err := ci.Image.MediaType()
	if err != nil {
		e.t.Fatal(err)
	}
	digest := mustDigest(e.t, ci)
	_, err = e.clients.ECR.(*ecr.Client).PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: &repo, ImageManifest: aws.String(string(raw)), ImageManifestMediaType: aws.String(string(mt)),
		ImageDigest: &digest, ImageTag: &tag,
	})
	if err != nil {
		e.t.Fatalf("registering %s in moto's ECR: %v", digest, err)
	}
}

func (e *imageEnv) deployContainer(ci ContainerImage, function, bucket string, opts ...Option) (*Result, error) {
	e.t.Helper()
	opts = append([]Option{WithClients(e.clients), fastWaits}, opts...)
	return Container(context.Background(), ci, function, bucket, opts...)
}

func (e *imageEnv) mustDeployContainer(ci ContainerImage, function, bucket string, opts ...Option) *Result {
	e.t.Helper()
	res, err := e.deployContainer(ci, function, bucket, opts...)
	if err != nil {
		e.t.Fatalf("Container(%q): %v", function, err)
	}
	return res
}

// manifestDigest is the digest the registry answers for ref, "" when it
// has no such manifest.
func (e *imageEnv) manifestDigest(ref string) string {
	e.t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		e.t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if isNotFound(err) {
		return ""
	}
	if err != nil {
		e.t.Fatalf("HEAD %s: %v", ref, err)
	}
	return desc.Digest.String()
}

// TestDeployImageLifecycle deploys container images to moto's Lambda
// through a real push to the in-process registry: create, no-op, new image,
// dry run, a second function sharing the repository and an image, and
// destroy with and without --purge-images.
func TestDeployImageLifecycle(t *testing.T) {
	e := newImageEnv(t, "inbox", "outbox")
	base := testkit.FilesLayer(t, testkit.File{Name: "usr/share/app/data", Body: strings.Repeat("base layer ", 1000)})
	ci1 := testContainer(t, base, "v1", "linux/arm64")
	ci2 := testContainer(t, base, "v2", "linux/arm64")
	d1, d2 := mustDigest(t, ci1), mustDigest(t, ci2)
	uri1, uri2 := e.repo+"@"+d1, e.repo+"@"+d2
	tag1, tag2 := "extract-momentum-"+strings.TrimPrefix(d1, "sha256:")[:16], "extract-momentum-"+strings.TrimPrefix(d2, "sha256:")[:16]
	e.registerECR("extract-momentum", ci1, tag1)
	e.registerECR("extract-momentum", ci2, tag2)
	repo := WithRepository(e.repo)

	// Create.
	res := e.mustDeployContainer(ci1, "momentum", "inbox", repo)
	want := []string{
		`create role extract-momentum (trust lambda.amazonaws.com, inline policy "extract")`,
		"push image " + uri1 + " (" + lambda.HumanSize(imageSize(t, ci1)) + ", tag " + tag1 + ")",
		"create function momentum (image " + uri1 + ", arm64, 512 MB, 60s)",
		"add permission extract-s3-inbox (s3.amazonaws.com may invoke momentum for arn:aws:s3:::inbox in account 123456789012)",
		`set notification rule extract-momentum on bucket inbox (s3:ObjectCreated:*, prefix "input/", suffix ".csv" → momentum)`,
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("first Container changes (-want +got):\n%s", diff)
	}
	if res.PackageType != "Image" || res.ImageURI != uri1 || res.CodeLocation != uri1 || res.CodeSha256 != strings.TrimPrefix(d1, "sha256:") || res.Architecture != "arm64" {
		t.Errorf("result package type %q, image %q, location %q, sha %q, arch %q; want Image, %s, %s, %s, arm64",
			res.PackageType, res.ImageURI, res.CodeLocation, res.CodeSha256, res.Architecture, uri1, uri1, d1)
	}
	fn := e.function("momentum")
	if fn == nil {
		t.Fatal("function not created")
	}
	c := fn.Configuration
	got := map[string]any{
		"type": string(c.PackageType), "uri": deref(fn.Code.ImageUri), "runtime": string(c.Runtime), "handler": deref(c.Handler),
		"arch": string(c.Architectures[0]), "sha": deref(c.CodeSha256), "tag": fn.Tags[ManagedByTag], "role": deref(c.Role),
	}
	wantFn := map[string]any{
		"type": "Image", "uri": uri1, "runtime": "", "handler": "",
		"arch": "arm64", "sha": strings.TrimPrefix(d1, "sha256:"), "tag": "extract", "role": res.RoleARN,
	}
	if diff := cmp.Diff(wantFn, got); diff != "" {
		t.Errorf("function (-want +got):\n%s", diff)
	}
	if got := e.manifestDigest(uri1); got != d1 {
		t.Errorf("registry holds %s as %q, want %s", uri1, got, d1)
	}
	if got := e.manifestDigest(e.repo + ":" + tag1); got != d1 {
		t.Errorf("registry tag %s is %q, want %s", tag1, got, d1)
	}
	// The role is a zip function's: Lambda pulls the image with its own
	// service principal, never with the execution role.
	pol, err := e.clients.IAM.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String("extract-momentum"), PolicyName: aws.String("extract")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.PathUnescape(deref(pol.PolicyDocument)); strings.Contains(doc, "ecr:") || !strings.Contains(doc, "s3:GetObject") {
		t.Errorf("role policy %s: want the zip function's policy, no ecr: action", doc)
	}
	first := e.reg.writes()
	if count(first, "PUT manifest") != 1 || count(first, "POST upload") != 3 {
		t.Errorf("first push wrote %q, want 3 blob uploads (2 layers, config) and 1 manifest", first)
	}

	// Same image again: nothing changes, nothing is written.
	res = e.mustDeployContainer(ci1, "momentum", "inbox", repo)
	if len(res.Changes) != 0 {
		t.Errorf("second Container changes = %q, want none", res.Changes)
	}
	if w := e.reg.writes(); len(w) != 0 {
		t.Errorf("second Container wrote %q to the registry, want nothing", w)
	}

	// A new image: pushed (its new layer and config only) and the code
	// updated.
	res = e.mustDeployContainer(ci2, "momentum", "inbox", repo)
	want = []string{
		"push image " + uri2 + " (" + lambda.HumanSize(imageSize(t, ci2)) + ", tag " + tag2 + ")",
		"update function code (image " + uri1 + " → " + uri2 + ")",
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("new image changes (-want +got):\n%s", diff)
	}
	if w := e.reg.writes(); count(w, "POST upload") != 2 || count(w, "PUT manifest") != 1 {
		t.Errorf("pushing the changed image wrote %q, want 2 blob uploads (top layer, config: the base layer is the registry's already) and 1 manifest", w)
	}
	fn = e.function("momentum")
	if deref(fn.Code.ImageUri) != uri2 || deref(fn.Configuration.CodeSha256) != strings.TrimPrefix(d2, "sha256:") {
		t.Errorf("after update ImageUri %q CodeSha256 %q, want %s", deref(fn.Code.ImageUri), deref(fn.Configuration.CodeSha256), uri2)
	}

	// Dry run of the first image with more memory: planned, not made.
	res, err = e.deployContainer(ci1, "momentum", "inbox", repo, WithFunctionMemory(1024), WithDryRun(true))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"update function code (image " + uri2 + " → " + uri1 + ")",
		"update function configuration: memory 512 MB → 1024 MB",
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" || !res.DryRun {
		t.Errorf("dry-run changes (dry run %v) (-want +got):\n%s", res.DryRun, diff)
	}
	if fn = e.function("momentum"); deref(fn.Code.ImageUri) != uri2 || deref(fn.Configuration.MemorySize) != 512 {
		t.Errorf("dry run changed the function: ImageUri %q, memory %d", deref(fn.Code.ImageUri), deref(fn.Configuration.MemorySize))
	}

	// Publish: a version for the image, then nothing more.
	res = e.mustDeployContainer(ci2, "momentum", "inbox", repo, WithPublish(true))
	if diff := cmp.Diff([]string{"publish version 1"}, res.Changes); diff != "" || res.Version != "1" {
		t.Errorf("publish changes (version %q) (-want +got):\n%s", res.Version, diff)
	}
	if res = e.mustDeployContainer(ci2, "momentum", "inbox", repo, WithPublish(true)); len(res.Changes) != 0 || res.Version != "1" {
		t.Errorf("second publish: changes %q, version %q; want none, 1", res.Changes, res.Version)
	}

	// Another function in the same repository with the same image: its own
	// tag; purging its images leaves momentum's.
	tagOther := "extract-other-" + strings.TrimPrefix(d2, "sha256:")[:16]
	if _, err := e.deployContainer(ci2, "other", "outbox", repo, WithLogger(discardLogger())); err != nil {
		t.Fatal(err)
	}
	if w := e.reg.writes(); !cmp.Equal(w, []string{"PUT manifest"}) {
		t.Errorf("pushing an image the registry has under another tag wrote %q, want only the manifest (under the new tag)", w)
	}
	if got := e.manifestDigest(e.repo + ":" + tagOther); got != d2 {
		t.Errorf("tag %s is %q, want %s", tagOther, got, d2)
	}
	dres := e.destroy("other", "outbox", WithPurgeImages(true))
	if !slices.Contains(dres.Changes, "delete image "+e.repo+":"+tagOther) {
		t.Errorf("Destroy other --purge-images changes = %q, want its tag deleted", dres.Changes)
	}
	if got := e.manifestDigest(e.repo + ":" + tagOther); got != "" {
		t.Errorf("tag %s still there after purge", tagOther)
	}
	if e.manifestDigest(uri2) != d2 || e.manifestDigest(e.repo+":"+tag2) != d2 {
		t.Error("purging other's images removed momentum's image (same digest, momentum's tag)")
	}

	// Destroy without --purge-images keeps the images; with it (the
	// function gone, so the repository is given) they go.
	dres = e.destroy("momentum", "inbox")
	if slices.ContainsFunc(dres.Changes, func(s string) bool { return strings.Contains(s, "image") }) {
		t.Errorf("Destroy changes = %q, want no image deleted", dres.Changes)
	}
	if e.manifestDigest(uri1) != d1 || e.manifestDigest(uri2) != d2 {
		t.Error("Destroy without --purge-images deleted images")
	}
	dres = e.destroy("momentum", "inbox", WithPurgeImages(true), repo)
	want = []string{"delete image " + e.repo + ":" + tag1, "delete image " + e.repo + ":" + tag2}
	slices.Sort(want)
	if diff := cmp.Diff(want, dres.Changes); diff != "" {
		t.Errorf("Destroy --purge-images changes (-want +got):\n%s", diff)
	}
	for _, ref := range []string{uri1, uri2, e.repo + ":" + tag1, e.repo + ":" + tag2} {
		if got := e.manifestDigest(ref); got != "" {
			t.Errorf("%s still resolves to %s after purge", ref, got)
		}
	}
}

// imageSize is the size deploy reports for ci.
func imageSize(t *testing.T, ci ContainerImage) int64 {
	t.Helper()
	p, err := readContainerImage(ci)
	if err != nil {
		t.Fatal(err)
	}
	return p.image.size
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// shortHash is the hash RepositoryName appends: 8 hex digits of the
// name's SHA-256.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// TestDeployImagePackageTypeRefused checks that a zip function is never
// turned into an image function or back.
func TestDeployImagePackageTypeRefused(t *testing.T) {
	e := newImageEnv(t, "inbox", "outbox")
	ci := testContainer(t, testkit.FilesLayer(t, testkit.File{Name: "a", Body: "a"}), "v1", "linux/amd64")
	e.registerECR("extract-momentum", ci, "x")

	e.mustDeploy(mustZip(t, testManifest("linux/amd64"), nil), "zipped", "inbox")
	_, err := e.deployContainer(ci, "zipped", "inbox", WithRepository(e.repo))
	var pe *PackageTypeError
	if !errors.As(err, &pe) || !IsRefused(err) || pe.Current != "Zip" || pe.Want != "Image" {
		t.Fatalf("image deploy over a zip function: error %v, want a refused *PackageTypeError Zip → Image", err)
	}
	for _, s := range []string{`function "zipped" is a zip function`, "this deploy is a container image", "cannot change the package type"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if w := e.reg.writes(); len(w) != 0 {
		t.Errorf("a refused deploy wrote %q to the registry", w)
	}
	if fn := e.function("zipped"); fn.Configuration.PackageType != lambdatypes.PackageTypeZip {
		t.Errorf("function became %s", fn.Configuration.PackageType)
	}

	e.mustDeployContainer(ci, "imaged", "outbox", WithRepository(e.repo))
	_, err = e.deploy(mustZip(t, testManifest("linux/amd64"), nil), "imaged", "outbox")
	if !errors.As(err, &pe) || !IsRefused(err) || pe.Current != "Image" || pe.Want != "Zip" || !strings.Contains(err.Error(), "is a container image function") {
		t.Fatalf("zip deploy over an image function: error %v, want a refused *PackageTypeError Image → Zip saying so", err)
	}
}

// TestDeployImageDefaultRepositoryPlan plans a deploy to the default ECR
// repository (moto's ECR host cannot be pushed to, so a dry run): the plan
// names the repository it would create and the image URI.
func TestDeployImageDefaultRepositoryPlan(t *testing.T) {
	e := newEnv(t, "inbox")
	ci := testContainer(t, testkit.FilesLayer(t, testkit.File{Name: "a", Body: "a"}), "v1", "linux/amd64")
	res, err := Container(context.Background(), ci, "Momentum_2", "inbox", WithClients(e.clients), WithDryRun(true))
	if err != nil {
		t.Fatal(err)
	}
	repo := "123456789012.dkr.ecr.us-east-1.amazonaws.com/" + RepositoryName("Momentum_2")
	uri := repo + "@" + mustDigest(t, ci)
	if res.ImageURI != uri {
		t.Errorf("ImageURI = %q, want %q", res.ImageURI, uri)
	}
	want := []string{
		`create role extract-Momentum_2 (trust lambda.amazonaws.com, inline policy "extract")`,
		"create ECR repository " + repo + " (scan on push, tag managed-by=extract, Lambda may pull)",
		"push image " + uri + " (" + lambda.HumanSize(imageSize(t, ci)) + ", tag extract-Momentum_2-" + strings.TrimPrefix(mustDigest(t, ci), "sha256:")[:16] + ")",
		"create function Momentum_2 (image " + uri + ", x86_64, 512 MB, 60s)",
		"add permission extract-s3-inbox (s3.amazonaws.com may invoke Momentum_2 for arn:aws:s3:::inbox in account 123456789012)",
		`set notification rule extract-Momentum_2 on bucket inbox (s3:ObjectCreated:*, prefix "input/", suffix ".csv" → Momentum_2)`,
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("dry-run changes (-want +got):\n%s", diff)
	}
	out, err := e.clients.ECR.DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{})
	if err != nil || len(out.Repositories) != 0 {
		t.Errorf("dry run: repositories %v (err %v), want none created", out.Repositories, err)
	}

	// An ECR repository in another region is refused before anything.
	_, err = Container(context.Background(), ci, "momentum", "inbox", WithClients(e.clients),
		WithRepository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/extract-momentum"))
	var re *RepositoryRegionError
	if !errors.As(err, &re) || !IsRefused(err) || !strings.Contains(err.Error(), "only from ECR in the function's region") {
		t.Errorf("repository in eu-west-1: error %v, want a refused *RepositoryRegionError", err)
	}
	if e.function("momentum") != nil || e.roleExists("extract-momentum") {
		t.Error("a refused deploy created the function or role")
	}
}

// TestDeployImageECRRepository ensures the default repository against moto's
// ECR: created with scan on push, the managed-by tag and the Lambda pull
// policy; a second run changes nothing; a repository extract did not create
// is left as it is.
func TestDeployImageECRRepository(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, err := callerIdentity(ctx, e.clients)
	if err != nil {
		t.Fatal(err)
	}
	ensure := func(function string, dryRun bool) []string {
		t.Helper()
		o, err := makeDeployOptions([]Option{WithClients(e.clients), WithDryRun(dryRun)})
		if err != nil {
			t.Fatal(err)
		}
		d := newDeployer(o, function, "inbox", &pkgInfo{manifest: &xruntime.Manifest{}})
		d.id = id
		if d.repo, err = defaultRepository(id, function); err != nil {
			t.Fatal(err)
		}
		if err := d.ensureRepository(ctx); err != nil {
			t.Fatalf("ensureRepository(%q): %v", function, err)
		}
		return d.res.Changes
	}

	if got := ensure("momentum", true); len(got) != 1 {
		t.Errorf("dry run changes = %q, want the creation", got)
	}
	if _, err := e.clients.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"extract-momentum"}}); !isCode(err, "RepositoryNotFoundException") {
		t.Fatalf("after a dry run DescribeRepositories error = %v, want RepositoryNotFoundException", err)
	}
	want := []string{"create ECR repository 123456789012.dkr.ecr.us-east-1.amazonaws.com/extract-momentum (scan on push, tag managed-by=extract, Lambda may pull)"}
	if diff := cmp.Diff(want, ensure("momentum", false)); diff != "" {
		t.Errorf("first ensure changes (-want +got):\n%s", diff)
	}
	out, err := e.clients.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"extract-momentum"}})
	if err != nil || len(out.Repositories) != 1 {
		t.Fatalf("DescribeRepositories: %v, %v", out, err)
	}
	r := out.Repositories[0]
	if r.ImageScanningConfiguration == nil || !r.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("scanning configuration %+v, want scan on push", r.ImageScanningConfiguration)
	}
	if deref(r.RepositoryUri) != "123456789012.dkr.ecr.us-east-1.amazonaws.com/extract-momentum" {
		t.Errorf("repository URI %q", deref(r.RepositoryUri))
	}
	tags, err := e.clients.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
	if err != nil || len(tags.Tags) != 1 || deref(tags.Tags[0].Key) != "managed-by" || deref(tags.Tags[0].Value) != "extract" {
		t.Errorf("repository tags %+v (err %v), want managed-by=extract", tags, err)
	}
	pol, err := e.clients.ECR.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("extract-momentum")})
	if err != nil || !samePolicy(deref(pol.PolicyText), repositoryPolicyJSON(id)) {
		t.Errorf("repository policy %v (err %v), want %s", pol, err, repositoryPolicyJSON(id))
	}
	for _, s := range []string{`"Service":"lambda.amazonaws.com"`, `"ecr:BatchGetImage"`, `"ecr:GetDownloadUrlForLayer"`, `"arn:aws:lambda:us-east-1:123456789012:function:*"`} {
		if !strings.Contains(repositoryPolicyJSON(id), s) {
			t.Errorf("repository policy lacks %s", s)
		}
	}
	if got := ensure("momentum", false); len(got) != 0 {
		t.Errorf("second ensure changes = %q, want none", got)
	}

	// Someone else's repository of that name: used, not changed.
	if _, err := e.clients.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("extract-theirs")}); err != nil {
		t.Fatal(err)
	}
	if got := ensure("theirs", false); len(got) != 0 {
		t.Errorf("ensure on a foreign repository changes = %q, want none", got)
	}
	if _, err := e.clients.ECR.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("extract-theirs")}); !isCode(err, "RepositoryPolicyNotFoundException") {
		t.Errorf("foreign repository policy: error %v, want none set", err)
	}
}

// TestDestroyPurgeImagesECR purges through ECR's API (moto): only the
// function's tags go, an image another tag names stays, and the repository
// goes only when extract created it and it is empty.
func TestDestroyPurgeImagesECR(t *testing.T) {
	e := newEnv(t, "inbox")
	ctx := context.Background()
	mk := func(body string) ContainerImage {
		return testContainer(t, testkit.FilesLayer(t, testkit.File{Name: "a", Body: body}), body, "linux/amd64")
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	// Managed (created by deploy's ensure step) with momentum's images and
	// a foreign tag on one of them.
	o, err := makeDeployOptions([]Option{WithClients(e.clients)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := callerIdentity(ctx, e.clients)
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployer(o, "momentum", "inbox", &pkgInfo{manifest: &xruntime.Manifest{}})
	d.id = id
	if d.repo, err = defaultRepository(id, "momentum"); err != nil {
		t.Fatal(err)
	}
	if err := d.ensureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	tagA, tagB := imageTag("momentum", mustDigest(t, a)), imageTag("momentum", mustDigest(t, b))
	e.registerECR("extract-momentum", a, tagA)
	e.registerECR("extract-momentum", b, tagB)
	e.registerECR("extract-momentum", b, "release")
	e.registerECR("extract-momentum", c, "someone-elses")

	images := func(repo string) []string {
		t.Helper()
		out, err := e.clients.ECR.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: &repo})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range out.ImageIds {
			got = append(got, deref(id.ImageTag))
		}
		slices.Sort(got)
		return got
	}
	destroy := func(opts ...DestroyOption) []string {
		t.Helper()
		res, err := Destroy(ctx, "momentum", "inbox", append([]DestroyOption{WithClients(e.clients), WithPurgeImages(true)}, opts...)...)
		if err != nil {
			t.Fatalf("Destroy --purge-images: %v", err)
		}
		return res.Changes
	}

	repo := "123456789012.dkr.ecr.us-east-1.amazonaws.com/extract-momentum"
	if got := destroy(WithDryRun(true)); !cmp.Equal(got, []string{"delete image " + repo + ":" + tagA, "delete image " + repo + ":" + tagB}) {
		t.Errorf("dry-run purge changes = %q", got)
	}
	if diff := cmp.Diff([]string{tagA, tagB, "release", "someone-elses"}, images("extract-momentum")); diff != "" {
		t.Errorf("a dry run changed the images (-want +got):\n%s", diff)
	}
	// The function is gone, no repository given: the default one.
	destroy()
	if diff := cmp.Diff([]string{"release", "someone-elses"}, images("extract-momentum")); diff != "" {
		t.Errorf("images after purge (-want +got):\n%s", diff)
	}

	// Once only momentum's are left, the managed repository goes too.
	for _, tag := range []string{"release", "someone-elses"} {
		if _, err := e.clients.ECR.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("extract-momentum"),
			ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}}); err != nil {
			t.Fatal(err)
		}
	}
	e.registerECR("extract-momentum", a, tagA)
	want := []string{"delete image " + repo + ":" + tagA, "delete ECR repository " + repo + " (empty, created by extract)"}
	if diff := cmp.Diff(want, destroy()); diff != "" {
		t.Errorf("purge of a managed repository (-want +got):\n%s", diff)
	}
	if _, err := e.clients.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"extract-momentum"}}); !isCode(err, "RepositoryNotFoundException") {
		t.Errorf("managed repository still there: %v", err)
	}

	// A repository extract did not create keeps existing, even empty.
	e.registerECR("theirs", a, tagA)
	want = []string{"delete image 123456789012.dkr.ecr.us-east-1.amazonaws.com/theirs:" + tagA}
	if diff := cmp.Diff(want, destroy(WithRepository("123456789012.dkr.ecr.us-east-1.amazonaws.com/theirs"))); diff != "" {
		t.Errorf("purge of a foreign repository (-want +got):\n%s", diff)
	}
	if _, err := e.clients.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"theirs"}}); err != nil {
		t.Errorf("foreign repository deleted: %v", err)
	}
}

func TestRepositoryName(t *testing.T) {
	for _, tc := range []struct{ function, want string }{
		{"momentum", "extract-momentum"},
		{"a-b", "extract-a-b"},
		{"Momentum", "extract-momentum-" + shortHash("Momentum")},
		{"my__fn--x", "extract-my-fn-x-" + shortHash("my__fn--x")},
		{"_x", "extract-x-" + shortHash("_x")},
		{"__", "extract-" + shortHash("__")},
	} {
		got := RepositoryName(tc.function)
		if got != tc.want || !ecrRepositoryNameRE.MatchString(got) {
			t.Errorf("RepositoryName(%q) = %q, want %q (a valid ECR name)", tc.function, got, tc.want)
		}
	}
	if RepositoryName("Momentum") == RepositoryName("momentum") {
		t.Error("names differing in case share a repository")
	}
}

func TestParseRepository(t *testing.T) {
	for _, tc := range []struct {
		ref, err    string
		ecr         bool
		region, acc string
	}{
		{ref: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/extract-x", ecr: true, region: "eu-west-1", acc: "123456789012"},
		{ref: "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a/b", ecr: true, region: "us-gov-west-1", acc: "123456789012"},
		{ref: "127.0.0.1:5000/extract-x"},
		{ref: "127.0.0.1:5000/extract-x:v1", err: "has a tag"},
		{ref: "example.com/x@sha256:" + strings.Repeat("0", 64), err: "has a digest"},
		{ref: "extract-x", err: "names no registry"},
		{ref: "example.com/UPPER", err: "repository"},
		{ref: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a__b", err: "not an ECR repository name"},
	} {
		r, err := parseRepository(tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseRepository(%q) error = %v, want one saying %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRepository(%q): %v", tc.ref, err)
			continue
		}
		if r.ecr != tc.ecr || r.region != tc.region || r.account != tc.acc || r.String() != tc.ref {
			t.Errorf("parseRepository(%q) = %+v", tc.ref, r)
		}
	}
}

func TestPurgePlan(t *testing.T) {
	images := map[string][]string{
		"sha256:1": {"extract-f-1"},
		"sha256:2": {"extract-f-2", "release"},
		"sha256:3": {"other"},
		"sha256:4": nil, // untagged
		"sha256:5": {"extract-f-5", "extract-f-5b"},
		"sha256:6": {"extract-fx-6"}, // function "fx", not "f"
	}
	tags, gone, empty := purgePlan(images, imageTagPrefix("f"))
	if diff := cmp.Diff([]string{"extract-f-1", "extract-f-2", "extract-f-5", "extract-f-5b"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sha256:1", "sha256:5"}, gone); diff != "" || empty {
		t.Errorf("gone (empty after %v) (-want +got):\n%s", empty, diff)
	}
	if _, _, empty := purgePlan(map[string][]string{"sha256:1": {"extract-f-1"}}, "extract-f-"); !empty {
		t.Error("a repository with only our image is not empty after the purge")
	}
}

// TestDeployImageRefusalChangesNothing checks that a zip deploy refused
// over an image function leaves the function as it was.
func TestDeployImageRefusalChangesNothing(t *testing.T) {
	e := newImageEnv(t, "inbox", "outbox")
	ci := testContainer(t, testkit.FilesLayer(t, testkit.File{Name: "a", Body: "a"}), "v1", "linux/amd64")
	e.registerECR("extract-momentum", ci, "x")
	e.mustDeployContainer(ci, "imaged", "outbox", WithRepository(e.repo))
	before := e.function("imaged").Configuration
	if _, err := e.deploy(mustZip(t, testManifest("linux/amd64"), nil), "imaged", "outbox", WithFunctionMemory(1024)); !IsRefused(err) {
		t.Fatalf("zip deploy over an image function: %v, want refused", err)
	}
	after, err := e.clients.Lambda.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("imaged")})
	if err != nil {
		t.Fatal(err)
	}
	if deref(after.Configuration.MemorySize) != deref(before.MemorySize) || deref(after.Configuration.LastModified) != deref(before.LastModified) {
		t.Errorf("a refused deploy modified the function: memory %d → %d", deref(before.MemorySize), deref(after.Configuration.MemorySize))
	}
}

// TestDeployImageAuto deploys fixtures with Image and lambda.FormatAuto: Tcl,
// whose library home is a compiled-in path, becomes an image function
// pushed to the registry; the Fortran showcase stays a zip. moto's Lambda
// runs with its default ECR stub here (the image is not looked up).
func TestDeployImageAuto(t *testing.T) {
	fixtures := testkit.Fixtures(t)
	e := newEnv(t, "inbox", "outbox")
	reg := newTestRegistry(t)
	for _, tc := range []struct {
		fixture, function, bucket string
		want                      lambdatypes.PackageType
		reason                    string
	}{
		{"tcl", "tclsh", "inbox", lambdatypes.PackageTypeImage, "a zip would move"},
		{"fortran-merged", "momentum", "outbox", lambdatypes.PackageTypeZip, "no closure file names"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			v1img, err := imagebuild.Fixture(fixtures, tc.fixture)
			if err != nil {
				t.Fatal(err)
			}
			repo := reg.host + "/" + RepositoryName(tc.function)
			res, err := Image(context.Background(), imagetest.Serve(t, v1img), tc.function, tc.bucket, []lambda.PackageOption{lambda.WithBootstrap(testBootstrap)},
				WithClients(e.clients), fastWaits, WithFormat(lambda.FormatAuto), WithRepository(repo))
			if err != nil {
				t.Fatalf("Image(%s, auto): %v", tc.fixture, err)
			}
			fn := e.function(tc.function)
			if res.PackageType != string(tc.want) || fn.Configuration.PackageType != tc.want || !strings.Contains(res.FormatReason, tc.reason) {
				t.Errorf("Image(%s, auto): result %s (reason %q), function %s; want %s, a reason saying %q",
					tc.fixture, res.PackageType, res.FormatReason, fn.Configuration.PackageType, tc.want, tc.reason)
			}
			if tc.want == lambdatypes.PackageTypeImage {
				if !strings.HasPrefix(res.ImageURI, repo+"@sha256:") || deref(fn.Code.ImageUri) != res.ImageURI {
					t.Errorf("ImageURI %q, function's %q; want %s@sha256:…", res.ImageURI, deref(fn.Code.ImageUri), repo)
				}
				ref, err := name.ParseReference(res.ImageURI)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Head(ref); err != nil {
					t.Errorf("registry does not hold %s: %v", res.ImageURI, err)
				}
			}
		})
	}
}

// TestDeployPackagedImage: an image `package --format image` wrote is
// deployed as it is, by its own digest, not packaged again.
func TestDeployPackagedImage(t *testing.T) {
	e := newEnv(t, "inbox")
	reg := newTestRegistry(t)
	ctx := context.Background()
	res, err := lambda.PackageImage(ctx, imagetest.Serve(t, testkit.ProgramImage(t)), lambda.WithBootstrap(testBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := lambda.WriteImage(ctx, res.Image, "oci:"+dir); err != nil {
		t.Fatal(err)
	}
	repo := reg.host + "/" + RepositoryName("packaged")
	got, err := Image(ctx, imagetest.Open(t, "oci:"+dir), "packaged", "inbox", nil,
		WithClients(e.clients), fastWaits, WithFormat(lambda.FormatAuto), WithRepository(repo))
	if err != nil {
		t.Fatalf("Image(an image package): %v", err)
	}
	if got.ImageURI != repo+"@"+res.Digest || got.PackageType != string(lambdatypes.PackageTypeImage) {
		t.Errorf("deployed %s (%s), want the package itself, %s@%s", got.ImageURI, got.PackageType, repo, res.Digest)
	}
	if _, err := Image(ctx, imagetest.Open(t, "oci:"+dir), "packaged", "inbox", nil,
		WithClients(e.clients), fastWaits, WithFormat(lambda.FormatZip), WithRepository(repo)); !errors.As(err, new(*ImagePackageError)) {
		t.Errorf("an image package deployed as a zip: error %v, want an *ImagePackageError", err)
	}
}

func ExampleRepositoryName() {
	fmt.Println(RepositoryName("momentum"))
	fmt.Println(RepositoryName("Momentum_v2")) // ECR names are lower case
	// Output:
	// extract-momentum
	// extract-momentum-v2-2ba9d91b
}
