package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"
)

func TestRoleDriftIsRepaired(t *testing.T) {
	e := newEnv(t, "inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	e.mustDeploy(zip, "momentum", "inbox")

	ctx := context.Background()
	role := aws.String("extract-momentum")
	wide := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`
	if _, err := e.clients.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("extract"), PolicyDocument: &wide}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := e.clients.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: role, PolicyDocument: &trust}); err != nil {
		t.Fatal(err)
	}
	res := e.mustDeploy(zip, "momentum", "inbox")
	want := []string{"update role extract-momentum trust policy", `update role extract-momentum policy "extract"`}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("Deploy changes (-want +got):\n%s", diff)
	}
	pol, err := e.clients.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("extract")})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := url.PathUnescape(aws.ToString(pol.PolicyDocument))
	if strings.Contains(doc, "s3:*") || !strings.Contains(doc, "inbox/input/*") {
		t.Errorf("policy after Deploy = %s, want the least-privilege one", doc)
	}
	if res = e.mustDeploy(zip, "momentum", "inbox"); len(res.Changes) != 0 {
		t.Errorf("next Deploy changes = %q, want none", res.Changes)
	}
}

func TestForeignRoleIsRefused(t *testing.T) {
	e := newEnv(t, "inbox")
	e.mustUserRole("extract-momentum") // same name, no managed-by tag
	_, err := e.deploy(mustZip(t, testManifest("linux/amd64"), nil), "momentum", "inbox")
	var ne *NotManagedError
	if !errors.As(err, &ne) || ne.Kind != "role" || ne.Name != "extract-momentum" || !IsRefused(err) {
		t.Fatalf("Deploy error = %v, want a refused role *NotManagedError for extract-momentum", err)
	}
	if e.function("momentum") != nil {
		t.Error("function created despite the refusal")
	}
	// Destroy leaves a role it did not make alone.
	if res := e.destroy("momentum", "inbox"); len(res.Changes) != 0 || !e.roleExists("extract-momentum") {
		t.Errorf("Destroy changes = %q, role kept %v; want none and kept", res.Changes, e.roleExists("extract-momentum"))
	}
}

// TestDestroyKeepsAnotherFunctionsRole deploys b with --role pointing at
// a's extract role: destroying b must not delete a's role.
func TestDestroyKeepsAnotherFunctionsRole(t *testing.T) {
	e := newEnv(t, "bucket-a", "bucket-b")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	a := e.mustDeploy(zip, "a", "bucket-a")
	e.mustDeploy(zip, "b", "bucket-b", WithRoleARN(a.RoleARN))
	res := e.destroy("b", "bucket-b")
	if !e.roleExists("extract-a") {
		t.Fatalf("Destroy of b (changes %q) deleted a's role", res.Changes)
	}
	if e.function("a") == nil {
		t.Error("Destroy of b deleted function a")
	}
}

func ExampleRoleName() {
	fmt.Println(RoleName("momentum"))
	fmt.Println(len(RoleName(strings.Repeat("x", 64))))
	// Output:
	// extract-momentum
	// 64
}
