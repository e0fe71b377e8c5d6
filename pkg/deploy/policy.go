package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// This file holds the pure part of deploy and destroy that concerns
// policies: the role's trust and inline policies, and the statements of
// the function's resource policy. Nothing here calls AWS.

// policyDocument is an IAM policy document.
type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string            `json:"Sid,omitempty"`
	Effect    string            `json:"Effect"`
	Principal map[string]string `json:"Principal,omitempty"`
	Action    any               `json:"Action"`
	Resource  any               `json:"Resource,omitempty"`
	// Condition is operator → key → value.
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// trustPolicy lets Lambda assume the role.
func trustPolicy() string {
	return mustJSON(policyDocument{
		Version: "2012-10-17",
		Statement: []policyStatement{{
			Effect:    "Allow",
			Principal: map[string]string{"Service": "lambda.amazonaws.com"},
			Action:    "sts:AssumeRole",
		}},
	})
}

// identity is who deploys: account and partition, from STS, and region.
type identity struct {
	Account   string
	Partition string
	Region    string
}

// rolePolicy is the least-privilege inline policy of the function's role:
// read the trigger objects (prefix-scoped), write the outputs and abort
// the multipart uploads of failed runs (the output location only) — with
// an output directory, also delete the files a failed run uploaded — and
// write its own CloudWatch logs. README.md and docs/deploying.md show it
// (TestRolePolicyDocumented holds them to it).
func rolePolicy(id identity, function, bucket string, m *xruntime.Manifest) string {
	outBucket := m.Output.Bucket
	if outBucket == "" {
		outBucket = bucket
	}
	logGroup := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:/aws/lambda/%s", id.Partition, id.Region, id.Account, function)
	write := []string{"s3:PutObject", "s3:AbortMultipartUpload"}
	if m.Output.Dir != "" {
		write = append(write, "s3:DeleteObject")
	}
	return mustJSON(policyDocument{
		Version: "2012-10-17",
		Statement: []policyStatement{
			{Sid: "ReadTriggerObjects", Effect: "Allow", Action: "s3:GetObject",
				Resource: fmt.Sprintf("arn:%s:s3:::%s/%s*", id.Partition, bucket, m.Input.Prefix)},
			{Sid: "WriteOutputObjects", Effect: "Allow", Action: write,
				Resource: fmt.Sprintf("arn:%s:s3:::%s/%s*", id.Partition, outBucket, m.Output.Prefix)},
			{Sid: "CreateLogGroup", Effect: "Allow", Action: "logs:CreateLogGroup",
				Resource: logGroup + ":*"},
			{Sid: "WriteLogs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"},
				Resource: logGroup + ":log-stream:*"},
		},
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only fixed struct types reach here; Marshal cannot fail on them.
		return ""
	}
	return string(b)
}

// samePolicy compares two policy documents as JSON values; IAM returns them
// URL-encoded.
func samePolicy(got, want string) bool {
	if s, err := url.PathUnescape(got); err == nil && !strings.Contains(got, "{") {
		got = s
	}
	var a, b any
	if json.Unmarshal([]byte(got), &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(normalizePolicy(a), normalizePolicy(b))
}

// normalizePolicy makes one-element string lists and strings compare equal,
// as IAM treats them.
func normalizePolicy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizePolicy(e)
		}
		return out
	case []any:
		if len(x) == 1 {
			return normalizePolicy(x[0])
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizePolicy(e)
		}
		return out
	}
	return v
}

// staleTrigger is a permission statement deploy added to the function's
// policy for another bucket than the current deploy's: the trace of a
// deploy on another bucket, whose notification rule is still in that
// bucket.
type staleTrigger struct {
	Sid string
	// Bucket is the bucket of the statement's AWS:SourceArn, "" when it
	// names none.
	Bucket string
}

// staleTriggers lists the statements of policy (the JSON GetPolicy
// returns) with extract's statement id prefix, "extract-s3-", other than
// current: those for other buckets.
func staleTriggers(policy, current string) ([]staleTrigger, error) {
	var doc struct {
		Statement []struct {
			Sid       string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, fmt.Errorf("parsing function policy: %w", err)
	}
	var out []staleTrigger
	for _, st := range doc.Statement {
		if !strings.HasPrefix(st.Sid, statementID("")) || st.Sid == current {
			continue
		}
		t := staleTrigger{Sid: st.Sid}
		for k, v := range st.Condition["ArnLike"] {
			arn, _ := normalizePolicy(v).(string)
			if _, bucket, ok := strings.Cut(arn, ":s3:::"); ok && strings.EqualFold(k, "AWS:SourceArn") && strings.HasPrefix(arn, "arn:") {
				t.Bucket = bucket
			}
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b staleTrigger) int { return strings.Compare(a.Sid, b.Sid) })
	return out, nil
}

// permissionStatement is what deploy looks for in the function's resource
// policy.
type permissionStatement struct {
	Sid       string
	SourceARN string
	Account   string
}

// findStatement reports whether policy (the JSON GetPolicy returns) has a
// statement with sid, and whether it grants exactly what want asks: Allow
// lambda:InvokeFunction to s3.amazonaws.com for the bucket ARN and account.
func findStatement(policy string, want permissionStatement) (found, matches bool, err error) {
	var doc struct {
		Statement []struct {
			Sid       string
			Effect    string
			Principal any
			Action    any
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return false, false, fmt.Errorf("parsing function policy: %w", err)
	}
	for _, s := range doc.Statement {
		if s.Sid != want.Sid {
			continue
		}
		principal := ""
		switch p := s.Principal.(type) {
		case string:
			principal = p
		case map[string]any:
			principal, _ = p["Service"].(string)
		}
		action := normalizePolicy(s.Action)
		cond := func(op, key string) string {
			for k, v := range s.Condition[op] {
				if strings.EqualFold(k, key) {
					if str, ok := normalizePolicy(v).(string); ok {
						return str
					}
				}
			}
			return ""
		}
		ok := s.Effect == "Allow" &&
			principal == "s3.amazonaws.com" &&
			action == "lambda:InvokeFunction" &&
			cond("ArnLike", "AWS:SourceArn") == want.SourceARN &&
			cond("StringEquals", "AWS:SourceAccount") == want.Account
		return true, ok, nil
	}
	return false, false, nil
}
