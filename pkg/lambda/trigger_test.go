package lambda

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"
)

// TestPermissionDriftIsReplaced changes the statement deploy made so it
// grants another account, and checks the next deploy replaces it (and only
// it), then leaves it alone.
func TestPermissionDriftIsReplaced(t *testing.T) {
	e := newEnv(t, "inbox")
	zip := mustZip(t, testManifest("linux/amd64"), nil)
	e.mustDeploy(zip, "momentum", "inbox")

	ctx := context.Background()
	sid := "extract-s3-inbox"
	if _, err := e.clients.Lambda.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: aws.String("momentum"), StatementId: &sid}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct{ sid, account string }{{sid, "999999999999"}, {"someone-else", "123456789012"}} {
		_, err := e.clients.Lambda.AddPermission(ctx, &awslambda.AddPermissionInput{
			FunctionName: aws.String("momentum"), StatementId: aws.String(st.sid), Action: aws.String("lambda:InvokeFunction"),
			Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::inbox"), SourceAccount: aws.String(st.account),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	res := e.mustDeploy(zip, "momentum", "inbox")
	want := []string{"replace permission extract-s3-inbox (s3.amazonaws.com may invoke momentum for arn:aws:s3:::inbox in account 123456789012)"}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("Deploy changes (-want +got):\n%s", diff)
	}
	found, ok, err := readPermission(ctx, e.clients.Lambda, "momentum", permissionStatement{Sid: sid, SourceARN: "arn:aws:s3:::inbox", Account: "123456789012"})
	if err != nil || !found || !ok {
		t.Errorf("after Deploy: statement found=%v matches=%v err=%v", found, ok, err)
	}
	if found, _, _ := readPermission(ctx, e.clients.Lambda, "momentum", permissionStatement{Sid: "someone-else"}); !found {
		t.Error("Deploy removed a statement it does not own")
	}
	if res = e.mustDeploy(zip, "momentum", "inbox"); len(res.Changes) != 0 {
		t.Errorf("next Deploy changes = %q, want none", res.Changes)
	}
	dres := e.destroy("momentum", "inbox", WithDryRun(true))
	if !slices.Contains(dres.Changes, "remove permission extract-s3-inbox from function momentum") || e.function("momentum") == nil {
		t.Errorf("Destroy dry run: changes %q, function kept %v", dres.Changes, e.function("momentum") != nil)
	}
}
