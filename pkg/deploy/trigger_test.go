package deploy

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
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

// TestPermissionAlreadyExists simulates another deploy adding the statement
// between our read and our AddPermission: "already exists" is accepted when
// the statement read back is ours, and an error when it is not.
func TestPermissionAlreadyExists(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		account string // of the statement the "other deploy" adds
		wantErr bool
	}{
		{"same statement", "123456789012", false},
		{"different statement", "999999999999", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bucket := fmt.Sprintf("race%d", i)
			e.mustBucket(bucket)
			calls := 0
			fake := &fakeLambda{}
			fake.addPermission = func(ctx context.Context, in *awslambda.AddPermissionInput, opts ...func(*awslambda.Options)) (*awslambda.AddPermissionOutput, error) {
				calls++
				other := *in
				other.SourceAccount = aws.String(tc.account)
				if _, err := fake.LambdaAPI.AddPermission(ctx, &other, opts...); err != nil {
					return nil, err
				}
				return nil, &lambdatypes.ResourceConflictException{Message: aws.String("The statement id (" + aws.ToString(in.StatementId) + ") provided already exists. Please provide a new statement id, or remove the existing statement.")}
			}
			name := fmt.Sprintf("race%d", i)
			zip := mustZip(t, testManifest("linux/amd64"), nil)
			_, err := Zip(context.Background(), bytes.NewReader(zip), int64(len(zip)), name, bucket, WithClients(e.withFake(fake)), fastWaits)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Deploy error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "different statement") {
				t.Errorf("error %q does not explain the conflict", err)
			}
			if calls != 1 {
				t.Errorf("AddPermission called %d times, want 1 (no blind retry)", calls)
			}
		})
	}
}
