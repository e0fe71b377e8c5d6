package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// RoleName is the name of the role deploy creates for function:
// "extract-" + function, shortened with a hash to IAM's 64 characters.
func RoleName(function string) string {
	name := "extract-" + function
	if len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(function))
	return name[:55] + "-" + hex.EncodeToString(sum[:4])
}

// roleARN is the ARN of role name in the deploying account.
func (id identity) roleARN(name string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", id.Partition, id.Account, name)
}

// roleManaged reports whether role name exists and carries the
// managed-by=extract tag.
func roleManaged(ctx context.Context, c IAMAPI, name string) (exists, managed bool, err error) {
	var marker *string
	for {
		out, err := c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: &name, Marker: marker})
		if isCode(err, "NoSuchEntity") {
			return false, false, nil
		}
		if err != nil {
			return false, false, wrapAWS(err, "reading the tags of role %q", name)
		}
		for _, t := range out.Tags {
			if deref(t.Key) == ManagedByTag && deref(t.Value) == ManagedByValue {
				return true, true, nil
			}
		}
		if !out.IsTruncated || out.Marker == nil {
			return true, false, nil
		}
		marker = out.Marker
	}
}

// ensureRole sets the result's role ARN: the one given with WithRoleARN, or
// the role extract-NAME, created or brought up to date.
func (d *deployer) ensureRole(ctx context.Context) error {
	if d.o.role != "" {
		d.res.RoleARN = d.o.role
		return nil
	}
	name := RoleName(d.function)
	d.res.RoleARN = d.id.roleARN(name)
	trust := trustPolicy()
	policy := rolePolicy(d.id, d.function, d.bucket, d.pkg.manifest)

	role, err := d.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
	if isCode(err, "NoSuchEntity") {
		d.change("create role %s (trust lambda.amazonaws.com, inline policy %q)", name, rolePolicyName)
		d.roleCreated = true
		if d.o.dryRun {
			return nil
		}
		out, err := d.c.IAM.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 &name,
			AssumeRolePolicyDocument: &trust,
			Description:              aws.String("Execution role of Lambda function " + d.function + ", managed by extract"),
			Tags:                     []iamtypes.Tag{{Key: aws.String(ManagedByTag), Value: aws.String(ManagedByValue)}},
		})
		if err != nil {
			return wrapAWS(err, "creating role %q", name)
		}
		if out.Role != nil && out.Role.Arn != nil {
			d.res.RoleARN = *out.Role.Arn
		}
		_, err = d.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &name, PolicyName: aws.String(rolePolicyName), PolicyDocument: &policy})
		return wrapAWS(err, "writing the policy of role %q", name)
	}
	if err != nil {
		return wrapAWS(err, "reading role %q", name)
	}
	if role.Role != nil && role.Role.Arn != nil {
		d.res.RoleARN = *role.Role.Arn
	}
	_, managed, err := roleManaged(ctx, d.c.IAM, name)
	if err != nil {
		return err
	}
	if !managed {
		return &NotManagedError{Kind: "role", Name: name}
	}
	if role.Role == nil || !samePolicy(deref(role.Role.AssumeRolePolicyDocument), trust) {
		d.change("update role %s trust policy", name)
		if !d.o.dryRun {
			_, err := d.c.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: &name, PolicyDocument: &trust})
			if err != nil {
				return wrapAWS(err, "updating the trust policy of role %q", name)
			}
		}
	}
	cur, err := d.c.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &name, PolicyName: aws.String(rolePolicyName)})
	if err != nil && !isCode(err, "NoSuchEntity") {
		return wrapAWS(err, "reading the policy of role %q", name)
	}
	if err != nil || !samePolicy(deref(cur.PolicyDocument), policy) {
		d.change("update role %s policy %q", name, rolePolicyName)
		if !d.o.dryRun {
			_, err := d.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &name, PolicyName: aws.String(rolePolicyName), PolicyDocument: &policy})
			if err != nil {
				return wrapAWS(err, "writing the policy of role %q", name)
			}
		}
	}
	return nil
}

// deleteRole deletes role name with its inline and attached policies, only
// when it carries the managed-by=extract tag. It reports what it did with
// change.
func deleteRole(ctx context.Context, c IAMAPI, name string, dryRun bool, change func(string, ...any)) error {
	exists, managed, err := roleManaged(ctx, c, name)
	if err != nil || !exists {
		return err
	}
	if !managed {
		return nil
	}
	var inline []string
	var marker *string
	for {
		out, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: &name, Marker: marker})
		if err != nil {
			return wrapAWS(err, "listing the policies of role %q", name)
		}
		inline = append(inline, out.PolicyNames...)
		if !out.IsTruncated || out.Marker == nil {
			break
		}
		marker = out.Marker
	}
	var attached []string
	marker = nil
	for {
		out, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: &name, Marker: marker})
		if err != nil {
			return wrapAWS(err, "listing the attached policies of role %q", name)
		}
		for _, p := range out.AttachedPolicies {
			attached = append(attached, deref(p.PolicyArn))
		}
		if !out.IsTruncated || out.Marker == nil {
			break
		}
		marker = out.Marker
	}
	what := "delete role " + name
	if len(inline)+len(attached) > 0 {
		what += " (policies: " + strings.Join(append(append([]string{}, inline...), attached...), ", ") + ")"
	}
	change("%s", what)
	if dryRun {
		return nil
	}
	for _, p := range inline {
		if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: &name, PolicyName: &p}); err != nil && !isCode(err, "NoSuchEntity") {
			return wrapAWS(err, "deleting policy %q of role %q", p, name)
		}
	}
	for _, arn := range attached {
		if _, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: &name, PolicyArn: &arn}); err != nil && !isCode(err, "NoSuchEntity") {
			return wrapAWS(err, "detaching policy %q from role %q", arn, name)
		}
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: &name}); err != nil && !isCode(err, "NoSuchEntity") {
		return wrapAWS(err, "deleting role %q", name)
	}
	return nil
}
