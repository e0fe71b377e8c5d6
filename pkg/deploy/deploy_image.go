package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// ContainerImage is a Lambda container image to deploy, as lambda.PackageImage
// makes it: one platform, extract's bootstrap as ENTRYPOINT, Manifest as its
// extract.json.
type ContainerImage struct {
	Image v1.Image
	// Arch is the Lambda architecture, "x86_64" or "arm64"; it must agree
	// with the image config's architecture and the manifest's platform.
	Arch string
	// Manifest is the image's extract.json: the trigger filter and output
	// location deploy wires come from it.
	Manifest xruntime.Manifest
}

// imageInfo is what deploy needs to know about a container image.
type imageInfo struct {
	img    v1.Image
	digest v1.Hash
	// size is the manifest's, config's and layers' sizes as stored
	// (compressed).
	size int64
}

// readContainerImage checks ci and reads its digest and size.
func readContainerImage(ci ContainerImage) (*pkgInfo, error) {
	if ci.Image == nil {
		return nil, errors.New("container image: no image")
	}
	arch, err := architecture(ci.Manifest.Platform)
	if err != nil {
		return nil, err
	}
	if string(arch) != ci.Arch {
		return nil, fmt.Errorf("container image: architecture %q does not match the manifest's platform %q (%s)", ci.Arch, ci.Manifest.Platform, arch)
	}
	cf, err := ci.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("container image: reading its config: %w", err)
	}
	if cf.OS != "linux" || cf.Architecture != lambdaPlatform(arch) {
		return nil, fmt.Errorf("container image: its config says %s/%s, Lambda architecture %s needs linux/%s", cf.OS, cf.Architecture, arch, lambdaPlatform(arch))
	}
	digest, err := ci.Image.Digest()
	if err != nil {
		return nil, fmt.Errorf("container image: computing its digest: %w", err)
	}
	m, err := ci.Image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("container image: reading its manifest: %w", err)
	}
	raw, err := ci.Image.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("container image: reading its manifest: %w", err)
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	manifest := ci.Manifest
	return &pkgInfo{
		image:    &imageInfo{img: ci.Image, digest: digest, size: size},
		manifest: &manifest,
		arch:     arch,
	}, nil
}

// lambdaPlatform is the image architecture of a Lambda architecture.
func lambdaPlatform(a lambdatypes.Architecture) string {
	if a == lambdatypes.ArchitectureArm64 {
		return "arm64"
	}
	return "amd64"
}

// Container makes the Lambda function named function run the
// container image ci for every object created in bucket that matches the
// manifest's input filter, as Zip does for a zip, and changes nothing
// that is already as wanted:
//
//   - the repository: WithRepository, else the ECR repository
//     extract-NAME of the deploying account and region, created when
//     missing (scan on push, tag managed-by=extract, a policy letting
//     Lambda pull);
//   - the image, pushed there with the tag extract-NAME-<digest prefix>
//     unless the tag already names it (registries keep layers they have:
//     a changed image uploads only its new layers);
//   - the function with PackageType Image, ImageUri REPOSITORY@DIGEST and
//     the image's architecture, its code updated only when the ImageUri
//     differs;
//   - the role, versions, alias, permission and notification rule exactly
//     as for a zip.
//
// Container refuses (see IsRefused), before changing anything, what
// Zip refuses, a function of that name that is a zip (*PackageTypeError)
// and an ECR repository in another region (*RepositoryRegionError).
func Container(ctx context.Context, ci ContainerImage, function, bucket string, opts ...Option) (*Result, error) {
	o, err := makeDeployOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNames(function, bucket); err != nil {
		return nil, err
	}
	pkg, err := readContainerImage(ci)
	if err != nil {
		return nil, err
	}
	return deployPackage(ctx, o, function, bucket, pkg)
}

// resolveRepository sets where the image goes and the function's ImageUri,
// refusing an ECR repository in another region.
func (d *deployer) resolveRepository() error {
	var err error
	if d.o.repository != "" {
		d.repo, err = parseRepository(d.o.repository)
	} else {
		d.repo, err = defaultRepository(d.id, d.function)
	}
	if err != nil {
		return err
	}
	if d.repo.ecr && d.repo.region != d.id.Region {
		return &RepositoryRegionError{Repository: d.repo.String(), RepositoryRegion: d.repo.region, Region: d.id.Region}
	}
	if d.repo.ecr && d.c.ECR == nil {
		return fmt.Errorf("repository %s is in ECR, and the clients have no ECR client", d.repo)
	}
	d.imageURI = d.repo.String() + "@" + d.pkg.image.digest.String()
	d.res.ImageURI = d.imageURI
	d.res.CodeLocation = d.imageURI
	return nil
}

// keychain is the registry keychain Open uses, its ECR tokens from the
// deploy's ECR client.
func keychain(c *Clients, log *slog.Logger) authn.Keychain {
	var g image.ECRTokenGetter
	if c.ECR != nil {
		g = c.ECR
	}
	return image.Keychain(g, log)
}

// pushImage pushes the image with its tag unless the tag already names it,
// and checks the registry then holds it by its digest.
func (d *deployer) pushImage(ctx context.Context) error {
	img := d.pkg.image
	tag := d.repo.ref.Tag(imageTag(d.function, img.digest.String()))
	opts := remoteOptions(ctx, keychain(d.c, d.log))
	if !d.repoCreated { // a repository still to be created holds nothing
		desc, err := remote.Head(tag, opts...)
		switch {
		case err == nil && desc.Digest == img.digest:
			d.log.Debug("image already in the repository", "image", tag.Name(), "digest", img.digest)
			return nil
		case err != nil && !isNotFound(err):
			return fmt.Errorf("looking for %s: %w", tag.Name(), err)
		}
	}
	d.change("push image %s (%s, tag %s)", d.imageURI, lambda.HumanSize(img.size), tag.TagStr())
	if d.o.dryRun {
		return nil
	}
	d.log.Info("pushing image", "image", tag.Name(), "size", lambda.HumanSize(img.size))
	if err := remote.Write(tag, img.img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", tag.Name(), err)
	}
	desc, err := remote.Head(d.repo.ref.Digest(img.digest.String()), opts...)
	if err != nil {
		return fmt.Errorf("checking the pushed image %s: %w", d.imageURI, err)
	}
	if desc.Digest != img.digest {
		return fmt.Errorf("checking the pushed image %s: the registry answers with digest %s", d.imageURI, desc.Digest)
	}
	return nil
}
