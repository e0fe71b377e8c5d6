package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/comingout/extract/pkg/lambda"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// This file holds the function's part of a deploy: its code and
// configuration, the retries and waits Lambda needs, and the published
// version and alias.

// spec is the function's wanted configuration.
func (d *deployer) spec() functionSpec {
	return functionSpec{
		Name:             d.function,
		Role:             d.res.RoleARN,
		Architecture:     d.pkg.arch,
		MemorySize:       d.o.memory,
		Timeout:          d.o.timeout,
		EphemeralStorage: d.o.ephemeral,
		Env:              d.o.env,
		LogFormat:        d.o.logFormat,
		Image:            d.pkg.image != nil,
	}
}

// code returns the FunctionCode for the package, uploading it to the code
// bucket first when useS3 (unless the object is already there); for a
// container image, its URI (pushed already).
func (d *deployer) code(ctx context.Context, useS3 bool) (*lambdatypes.FunctionCode, error) {
	if d.pkg.image != nil {
		return &lambdatypes.FunctionCode{ImageUri: aws.String(d.imageURI)}, nil
	}
	if !useS3 {
		b := make([]byte, d.pkg.size)
		if n, err := d.pkg.r.ReadAt(b, 0); int64(n) != d.pkg.size {
			return nil, fmt.Errorf("reading package zip: read %d of %d bytes: %w", n, d.pkg.size, err)
		}
		return &lambdatypes.FunctionCode{ZipFile: b}, nil
	}
	key := fmt.Sprintf("extract/%s/%s.zip", d.function, d.pkg.shaHex())
	d.res.CodeLocation = "s3://" + d.o.codeBucket + "/" + key
	code := &lambdatypes.FunctionCode{S3Bucket: &d.o.codeBucket, S3Key: &key}
	head, err := d.c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.o.codeBucket, Key: &key})
	if err == nil && deref(head.ContentLength) == d.pkg.size {
		d.log.Debug("code already in the code bucket", "url", d.res.CodeLocation)
		return code, nil
	}
	if err != nil && !isCode(err, "NotFound", "NoSuchKey") {
		return nil, wrapAWS(err, "checking %s", d.res.CodeLocation)
	}
	d.change("upload code to %s", d.res.CodeLocation)
	if d.o.dryRun {
		return code, nil
	}
	d.log.Info("uploading code", "url", d.res.CodeLocation, "size", lambda.HumanSize(d.pkg.size))
	_, err = d.c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &d.o.codeBucket,
		Key:           &key,
		Body:          io.NewSectionReader(d.pkg.r, 0, d.pkg.size),
		ContentLength: aws.Int64(d.pkg.size),
		ContentType:   aws.String("application/zip"),
	})
	if err != nil {
		return nil, wrapAWS(err, "uploading code to %s", d.res.CodeLocation)
	}
	return code, nil
}

// ensureFunction creates the function, or updates its code when it differs
// (or the architecture does) and its configuration when that differs.
func (d *deployer) ensureFunction(ctx context.Context, useS3 bool) error {
	if d.cur == nil {
		return d.createFunction(ctx, useS3)
	}
	if err := d.updateCode(ctx, useS3); err != nil {
		return err
	}
	return d.updateConfiguration(ctx)
}

// createFunction creates the function and waits until it is Active.
func (d *deployer) createFunction(ctx context.Context, useS3 bool) error {
	spec := d.spec()
	code, err := d.code(ctx, useS3)
	if err != nil {
		return err
	}
	logs := ""
	if spec.LogFormat != lambdatypes.LogFormatText {
		logs = ", log format " + string(spec.LogFormat)
	}
	if spec.Image {
		d.change("create function %s (image %s, %s, %d MB, %ds%s)", d.function, d.imageURI, spec.Architecture, spec.MemorySize, spec.Timeout, logs)
	} else {
		d.change("create function %s (%s, %d MB, %ds%s)", d.function, spec.Architecture, spec.MemorySize, spec.Timeout, logs)
	}
	d.codeChanged = true
	if d.o.dryRun {
		return nil
	}
	in := &awslambda.CreateFunctionInput{
		FunctionName:     &d.function,
		Role:             &spec.Role,
		Architectures:    []lambdatypes.Architecture{spec.Architecture},
		Code:             code,
		MemorySize:       &spec.MemorySize,
		Timeout:          &spec.Timeout,
		EphemeralStorage: &lambdatypes.EphemeralStorage{Size: &spec.EphemeralStorage},
		PackageType:      d.pkg.packageType(),
		LoggingConfig:    &lambdatypes.LoggingConfig{LogFormat: spec.LogFormat},
		Description:      aws.String(description(d.pkg.manifest)),
		Tags:             map[string]string{ManagedByTag: ManagedByValue},
	}
	if !spec.Image { // an image's ENTRYPOINT is the bootstrap
		in.Runtime, in.Handler = lambdatypes.RuntimeProvidedal2023, aws.String("bootstrap")
	}
	if len(spec.Env) > 0 {
		in.Environment = &lambdatypes.Environment{Variables: spec.Env}
	}
	var out *awslambda.CreateFunctionOutput
	err = d.retryRole(ctx, func() error {
		var err error
		out, err = d.c.Lambda.CreateFunction(ctx, in)
		return err
	})
	if err != nil {
		return wrapAWS(err, "creating function %q", d.function)
	}
	d.res.FunctionARN = deref(out.FunctionArn)
	return d.waitActive(ctx)
}

// updateCode updates the function's code when it differs from the
// package's (for an image, when its ImageUri does) or the architecture
// differs, and waits for the update to succeed.
func (d *deployer) updateCode(ctx context.Context, useS3 bool) error {
	spec := d.spec()
	cur := d.cur.Configuration
	curArch := lambdatypes.ArchitectureX8664
	if len(cur.Architectures) > 0 {
		curArch = cur.Architectures[0]
	}
	codeDiffers := deref(cur.CodeSha256) != d.pkg.codeSha64
	what := fmt.Sprintf("CodeSha256 %s → %s", orNone(deref(cur.CodeSha256)), d.pkg.codeSha64)
	if spec.Image {
		// The ImageUri deploy set pins the digest: compare that. (Lambda's
		// CodeSha256 of an image is its digest, but emulators differ.)
		var curURI string
		if d.cur.Code != nil {
			curURI = deref(d.cur.Code.ImageUri)
		}
		codeDiffers = curURI != d.imageURI
		what = fmt.Sprintf("image %s → %s", orNone(curURI), d.imageURI)
	}
	if !codeDiffers && curArch == spec.Architecture {
		return nil
	}
	code, err := d.code(ctx, useS3)
	if err != nil {
		return err
	}
	if curArch != spec.Architecture {
		what += fmt.Sprintf(", architecture %s → %s", curArch, spec.Architecture)
	}
	d.change("update function code (%s)", what)
	d.codeChanged = true
	if d.o.dryRun {
		return nil
	}
	in := &awslambda.UpdateFunctionCodeInput{
		FunctionName:  &d.function,
		ZipFile:       code.ZipFile,
		S3Bucket:      code.S3Bucket,
		S3Key:         code.S3Key,
		ImageUri:      code.ImageUri,
		Architectures: []lambdatypes.Architecture{spec.Architecture},
	}
	err = d.retryConflict(ctx, func() error {
		_, err := d.c.Lambda.UpdateFunctionCode(ctx, in)
		return err
	})
	if err != nil {
		return wrapAWS(err, "updating the code of function %q", d.function)
	}
	return d.waitUpdated(ctx)
}

// updateConfiguration updates the function's configuration when it differs
// from the wanted one, and waits for the update to succeed.
func (d *deployer) updateConfiguration(ctx context.Context) error {
	spec := d.spec()
	diffs := configChanges(d.cur.Configuration, spec)
	if len(diffs) == 0 {
		return nil
	}
	d.change("update function configuration: %s", strings.Join(diffs, ", "))
	d.codeChanged = true
	if d.o.dryRun {
		return nil
	}
	env := spec.Env
	if env == nil {
		env = map[string]string{}
	}
	in := &awslambda.UpdateFunctionConfigurationInput{
		FunctionName:     &d.function,
		Role:             &spec.Role,
		MemorySize:       &spec.MemorySize,
		Timeout:          &spec.Timeout,
		EphemeralStorage: &lambdatypes.EphemeralStorage{Size: &spec.EphemeralStorage},
		Environment:      &lambdatypes.Environment{Variables: env},
		LoggingConfig:    &lambdatypes.LoggingConfig{LogFormat: spec.LogFormat},
	}
	if !spec.Image {
		in.Runtime, in.Handler = lambdatypes.RuntimeProvidedal2023, aws.String("bootstrap")
	}
	err := d.retryConflict(ctx, func() error {
		return d.retryRole(ctx, func() error {
			_, err := d.c.Lambda.UpdateFunctionConfiguration(ctx, in)
			return err
		})
	})
	if err != nil {
		return wrapAWS(err, "updating the configuration of function %q", d.function)
	}
	return d.waitUpdated(ctx)
}

// description is the function's description: where it came from.
func description(m *xruntime.Manifest) string {
	s := "extract: " + m.Image
	if m.Digest != "" {
		s += "@" + m.Digest
	}
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// isRoleNotAssumable reports whether err is Lambda saying a (fresh) role
// cannot be assumed yet: IAM is eventually consistent.
func isRoleNotAssumable(err error) bool {
	return isCode(err, "InvalidParameterValueException") &&
		strings.Contains(strings.ToLower(errorMessage(err)), "cannot be assumed")
}

// retryRole runs call, retrying with bounded backoff only while it fails
// because the role cannot be assumed yet.
func (d *deployer) retryRole(ctx context.Context, call func() error) error {
	err := call()
	for _, delay := range d.o.roleRetryDelays {
		if !isRoleNotAssumable(err) {
			return err
		}
		d.log.Info("role not assumable by Lambda yet (IAM is eventually consistent); retrying", "in", delay)
		if err := d.o.sleep(ctx, delay); err != nil {
			return err
		}
		err = call()
	}
	if isRoleNotAssumable(err) {
		return fmt.Errorf("role %q still cannot be assumed by Lambda after %d retries; check its trust policy allows lambda.amazonaws.com: %w",
			d.res.RoleARN, len(d.o.roleRetryDelays), err)
	}
	return err
}

// isUpdateInProgress reports whether err is Lambda refusing a change while
// another update of the function is in progress.
func isUpdateInProgress(err error) bool {
	return isCode(err, "ResourceConflictException") &&
		!strings.Contains(strings.ToLower(errorMessage(err)), "already exists")
}

// retryConflict runs call; while it fails because an update is in progress,
// it waits for the function's update to finish and tries again, at most
// conflictRetries times.
func (d *deployer) retryConflict(ctx context.Context, call func() error) error {
	err := call()
	for i := 0; i < d.o.conflictRetries && isUpdateInProgress(err); i++ {
		d.log.Info("another update of the function is in progress; waiting for it", "function", d.function)
		if werr := d.waitUpdated(ctx); werr != nil {
			return werr
		}
		err = call()
	}
	return err
}

func (d *deployer) waitActive(ctx context.Context) error {
	w := awslambda.NewFunctionActiveV2Waiter(d.c.Lambda, func(wo *awslambda.FunctionActiveV2WaiterOptions) {
		if d.o.waitMinDelay > 0 {
			wo.MinDelay = d.o.waitMinDelay
		}
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function}, d.o.waitTimeout); err != nil {
		return wrapAWS(err, "waiting for function %q to become Active", d.function)
	}
	return nil
}

func (d *deployer) waitUpdated(ctx context.Context) error {
	w := awslambda.NewFunctionUpdatedV2Waiter(d.c.Lambda, func(wo *awslambda.FunctionUpdatedV2WaiterOptions) {
		if d.o.waitMinDelay > 0 {
			wo.MinDelay = d.o.waitMinDelay
		}
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function}, d.o.waitTimeout); err != nil {
		return wrapAWS(err, "waiting for the update of function %q to succeed", d.function)
	}
	return nil
}

// ensureVersionAndAlias publishes a version (WithPublish) when no published
// version has the current code and configuration, and points the alias
// (WithAlias) at it.
func (d *deployer) ensureVersionAndAlias(ctx context.Context) error {
	if d.o.publish {
		if err := d.ensureVersion(ctx); err != nil {
			return err
		}
	}
	if d.o.alias == "" {
		return nil
	}
	target := d.res.Version
	if d.o.dryRun && d.cur == nil {
		d.change("create alias %s → %s", d.o.alias, target)
		return nil
	}
	cur, err := d.c.Lambda.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: &d.function, Name: &d.o.alias})
	switch {
	case isCode(err, "ResourceNotFoundException"):
		d.change("create alias %s → %s", d.o.alias, target)
		if d.o.dryRun {
			return nil
		}
		_, err = d.c.Lambda.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: &d.function, Name: &d.o.alias, FunctionVersion: &target})
		return wrapAWS(err, "creating alias %q", d.o.alias)
	case err != nil:
		return wrapAWS(err, "reading alias %q", d.o.alias)
	case deref(cur.FunctionVersion) != target:
		d.change("update alias %s: %s → %s", d.o.alias, deref(cur.FunctionVersion), target)
		if d.o.dryRun {
			return nil
		}
		_, err = d.c.Lambda.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: &d.function, Name: &d.o.alias, FunctionVersion: &target})
		return wrapAWS(err, "updating alias %q", d.o.alias)
	}
	return nil
}

func (d *deployer) ensureVersion(ctx context.Context) error {
	if d.o.dryRun && d.codeChanged {
		d.change("publish a new version")
		d.res.Version = "(new version)"
		return nil
	}
	latest, err := d.c.Lambda.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: &d.function})
	if err != nil {
		return wrapAWS(err, "reading function %q", d.function)
	}
	// The newest published version that matches $LATEST, if any.
	var newest *lambdatypes.FunctionConfiguration
	var newestN int64 = -1
	var marker *string
	for {
		out, err := d.c.Lambda.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: &d.function, Marker: marker})
		if err != nil {
			return wrapAWS(err, "listing the versions of function %q", d.function)
		}
		for i := range out.Versions {
			v := &out.Versions[i]
			var n int64
			if _, err := fmt.Sscanf(deref(v.Version), "%d", &n); err != nil {
				continue // $LATEST
			}
			if n > newestN {
				newest, newestN = v, n
			}
		}
		if out.NextMarker == nil || *out.NextMarker == "" {
			break
		}
		marker = out.NextMarker
	}
	if newest != nil && !d.codeChanged && deref(newest.CodeSha256) == deref(latest.Configuration.CodeSha256) &&
		len(configChanges(newest, d.spec())) == 0 {
		d.res.Version = deref(newest.Version)
		return nil
	}
	d.change("publish a new version")
	if d.o.dryRun {
		d.res.Version = "(new version)"
		return nil
	}
	var out *awslambda.PublishVersionOutput
	err = d.retryConflict(ctx, func() error {
		var err error
		out, err = d.c.Lambda.PublishVersion(ctx, &awslambda.PublishVersionInput{
			FunctionName: &d.function,
			CodeSha256:   latest.Configuration.CodeSha256,
		})
		return err
	})
	if err != nil {
		return wrapAWS(err, "publishing a version of function %q", d.function)
	}
	d.res.Version = deref(out.Version)
	d.res.Changes[len(d.res.Changes)-1] = "publish version " + d.res.Version
	return nil
}
