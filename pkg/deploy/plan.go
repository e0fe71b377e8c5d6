package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// This file holds the pure part of deploy and destroy: what the function,
// role, permission and notification should look like, and how the current
// state differs from it. Nothing here calls AWS.

// ManagedByTag is the tag key extract puts on the roles and functions it
// creates, with the value ManagedByValue. Destroy deletes a role only when it
// carries it, and deploy refuses to take over a function without it.
const (
	ManagedByTag   = "managed-by"
	ManagedByValue = "extract"
)

// triggerEvent is the S3 event the trigger listens to.
const triggerEvent = "s3:ObjectCreated:*"

// rolePolicyName is the name of the inline policy extract puts on its role.
const rolePolicyName = "extract"

// functionSpec is the wanted configuration of the function.
type functionSpec struct {
	Name             string
	Role             string
	Architecture     lambdatypes.Architecture
	MemorySize       int32
	Timeout          int32
	EphemeralStorage int32
	Env              map[string]string
	LogFormat        lambdatypes.LogFormat
	// Image is set for a container image: no runtime, no handler.
	Image bool
}

// currentLogFormat is the function's log format: Text when its
// configuration has none (Lambda's default; emulators such as moto keep
// none).
func currentLogFormat(cur *lambdatypes.FunctionConfiguration) lambdatypes.LogFormat {
	if cur.LoggingConfig == nil || cur.LoggingConfig.LogFormat == "" {
		return lambdatypes.LogFormatText
	}
	return cur.LoggingConfig.LogFormat
}

// configChanges lists, in a fixed order, how the function's current
// configuration differs from spec, architecture and code excepted (those
// change through UpdateFunctionCode). Each entry reads "memory 512 → 1024".
func configChanges(cur *lambdatypes.FunctionConfiguration, spec functionSpec) []string {
	var out []string
	if got := deref(cur.Role); got != spec.Role {
		out = append(out, fmt.Sprintf("role %s → %s", orNone(got), spec.Role))
	}
	if !spec.Image && cur.Runtime != lambdatypes.RuntimeProvidedal2023 {
		out = append(out, fmt.Sprintf("runtime %s → %s", orNone(string(cur.Runtime)), lambdatypes.RuntimeProvidedal2023))
	}
	if got := deref(cur.Handler); !spec.Image && got != "bootstrap" {
		out = append(out, fmt.Sprintf("handler %s → bootstrap", orNone(got)))
	}
	if got := deref(cur.MemorySize); got != spec.MemorySize {
		out = append(out, fmt.Sprintf("memory %d MB → %d MB", got, spec.MemorySize))
	}
	if got := deref(cur.Timeout); got != spec.Timeout {
		out = append(out, fmt.Sprintf("timeout %ds → %ds", got, spec.Timeout))
	}
	var eph int32 = 512
	if cur.EphemeralStorage != nil && cur.EphemeralStorage.Size != nil {
		eph = *cur.EphemeralStorage.Size
	}
	if eph != spec.EphemeralStorage {
		out = append(out, fmt.Sprintf("ephemeral storage %d MB → %d MB", eph, spec.EphemeralStorage))
	}
	if got := currentLogFormat(cur); got != spec.LogFormat {
		out = append(out, fmt.Sprintf("log format %s → %s", got, spec.LogFormat))
	}
	var env map[string]string
	if cur.Environment != nil {
		env = cur.Environment.Variables
	}
	if !maps.Equal(env, spec.Env) && !(len(env) == 0 && len(spec.Env) == 0) {
		out = append(out, fmt.Sprintf("environment %s → %s", envKeys(env), envKeys(spec.Env)))
	}
	return out
}

// envKeys shows an environment by its sorted keys only: values may be
// secrets and the summary is printed.
func envKeys(env map[string]string) string {
	if len(env) == 0 {
		return "(none)"
	}
	return "[" + strings.Join(slices.Sorted(maps.Keys(env)), " ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// architecture maps a manifest platform ("linux/arm64", "linux/amd64") to a
// Lambda architecture.
func architecture(platform string) (lambdatypes.Architecture, error) {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || parts[0] != "linux" {
		return "", fmt.Errorf("package platform %q is not linux/amd64 or linux/arm64", platform)
	}
	switch parts[1] {
	case "amd64":
		return lambdatypes.ArchitectureX8664, nil
	case "arm64":
		return lambdatypes.ArchitectureArm64, nil
	}
	return "", fmt.Errorf("package platform %q has no Lambda architecture: Lambda runs linux/amd64 (x86_64) and linux/arm64", platform)
}

// Trigger is the S3 notification rule deploy wires: objects created in
// Bucket under Prefix with keys ending in Suffix invoke the function.
type Trigger struct {
	// ID is the rule's Id in the bucket's notification configuration:
	// "extract-" + the function name.
	ID     string `json:"id"`
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	Suffix string `json:"suffix"`
	// Events is always ["s3:ObjectCreated:*"].
	Events []string `json:"events"`
	// StatementID is the Sid of the function policy statement that lets
	// s3.amazonaws.com invoke the function for this bucket.
	StatementID string `json:"statement_id"`
}

// newTrigger is the trigger for function on bucket with the manifest's
// input filter.
func newTrigger(function, bucket string, in xruntime.Input) Trigger {
	return Trigger{
		ID:          ruleID(function),
		Bucket:      bucket,
		Prefix:      in.Prefix,
		Suffix:      in.Suffix,
		Events:      []string{triggerEvent},
		StatementID: statementID(bucket),
	}
}

// ruleID is the Id of the function's rule in the bucket's notification
// configuration.
func ruleID(function string) string { return "extract-" + function }

// statementID is the function policy statement id for bucket:
// "extract-s3-" + the bucket name with every character outside
// [A-Za-z0-9-_.] replaced by "-", at most 100 characters (Lambda's limits).
func statementID(bucket string) string {
	var b strings.Builder
	b.WriteString("extract-s3-")
	for _, r := range bucket {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// rule is one notification rule of any kind, reduced to what overlap and
// equality need.
type rule struct {
	Kind   string // "Lambda", "Queue" or "Topic"
	ID     string
	Target string // function, queue or topic ARN
	Events []string
	Prefix string
	Suffix string
}

func (r rule) String() string {
	id := r.ID
	if id == "" {
		id = "(no id)"
	}
	return fmt.Sprintf("%s rule %s → %s (events %s, prefix %q, suffix %q)",
		strings.ToLower(r.Kind), id, r.Target, strings.Join(r.Events, ","), r.Prefix, r.Suffix)
}

func filterOf(f *s3types.NotificationConfigurationFilter) (prefix, suffix string) {
	if f == nil || f.Key == nil {
		return "", ""
	}
	for _, fr := range f.Key.FilterRules {
		switch strings.ToLower(string(fr.Name)) {
		case "prefix":
			prefix = deref(fr.Value)
		case "suffix":
			suffix = deref(fr.Value)
		}
	}
	return prefix, suffix
}

func eventStrings(evs []s3types.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e)
	}
	return out
}

// rules flattens a notification configuration, EventBridge excepted (it has
// no filter and never conflicts).
func rules(nc *s3types.NotificationConfiguration) []rule {
	var out []rule
	for _, c := range nc.LambdaFunctionConfigurations {
		p, s := filterOf(c.Filter)
		out = append(out, rule{Kind: "Lambda", ID: deref(c.Id), Target: deref(c.LambdaFunctionArn), Events: eventStrings(c.Events), Prefix: p, Suffix: s})
	}
	for _, c := range nc.QueueConfigurations {
		p, s := filterOf(c.Filter)
		out = append(out, rule{Kind: "Queue", ID: deref(c.Id), Target: deref(c.QueueArn), Events: eventStrings(c.Events), Prefix: p, Suffix: s})
	}
	for _, c := range nc.TopicConfigurations {
		p, s := filterOf(c.Filter)
		out = append(out, rule{Kind: "Topic", ID: deref(c.Id), Target: deref(c.TopicArn), Events: eventStrings(c.Events), Prefix: p, Suffix: s})
	}
	return out
}

// eventsOverlap reports whether two S3 event types can match the same event:
// equal, or one is a wildcard ("s3:ObjectCreated:*") covering the other.
func eventsOverlap(a, b string) bool {
	covers := func(w, e string) bool {
		return strings.HasSuffix(w, "*") && strings.HasPrefix(e, strings.TrimSuffix(w, "*"))
	}
	return a == b || covers(a, b) || covers(b, a)
}

// overlaps reports whether S3 would consider two rules overlapping: an event
// type in common, prefixes where one is a prefix of the other and suffixes
// where one is a suffix of the other.
func overlaps(a, b rule) bool {
	ev := false
	for _, x := range a.Events {
		for _, y := range b.Events {
			if eventsOverlap(x, y) {
				ev = true
			}
		}
	}
	return ev &&
		(strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)) &&
		(strings.HasSuffix(a.Suffix, b.Suffix) || strings.HasSuffix(b.Suffix, a.Suffix))
}

// OverlapError is returned when the trigger would overlap rules already in
// the bucket's notification configuration; S3 rejects such configurations
// and extract never edits rules it does not own.
type OverlapError struct {
	Bucket string
	// Trigger is the rule deploy wanted to add and Conflicts the existing
	// rules it overlaps, each described with its target and filter.
	Trigger   string
	Conflicts []string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("trigger %s would overlap %d existing notification rule(s) of bucket %q: %s; S3 rejects overlapping rules for the same event type (one prefix a prefix of the other and one suffix a suffix of the other): deploy with a --prefix or --suffix disjoint from them, or remove the other rules",
		e.Trigger, len(e.Conflicts), e.Bucket, strings.Join(e.Conflicts, "; "))
}

// lambdaRule is our rule in the S3 API's shape.
func lambdaRule(t Trigger, functionARN string) s3types.LambdaFunctionConfiguration {
	c := s3types.LambdaFunctionConfiguration{
		Id:                &t.ID,
		LambdaFunctionArn: &functionARN,
		Events:            []s3types.Event{triggerEvent},
	}
	var frs []s3types.FilterRule
	if t.Prefix != "" {
		frs = append(frs, s3types.FilterRule{Name: s3types.FilterRuleNamePrefix, Value: &t.Prefix})
	}
	if t.Suffix != "" {
		frs = append(frs, s3types.FilterRule{Name: s3types.FilterRuleNameSuffix, Value: &t.Suffix})
	}
	if len(frs) > 0 {
		c.Filter = &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: frs}}
	}
	return c
}

// mergeNotification returns nc with our rule for t added or replaced, every
// other rule (Topic, Queue, Lambda, EventBridge) kept as it was, and whether
// that differs from nc. Rules that overlap ours give an *OverlapError.
func mergeNotification(nc *s3types.NotificationConfiguration, t Trigger, functionARN string) (*s3types.NotificationConfiguration, bool, error) {
	want := lambdaRule(t, functionARN)
	wantRule := rule{Kind: "Lambda", ID: t.ID, Target: functionARN, Events: []string{triggerEvent}, Prefix: t.Prefix, Suffix: t.Suffix}

	var conflicts []string
	for _, r := range rules(nc) {
		if r.Kind == "Lambda" && r.ID == t.ID {
			continue
		}
		if overlaps(wantRule, r) {
			desc := r.String()
			if r.Target == functionARN {
				desc += " (already targets this function under another id)"
			}
			conflicts = append(conflicts, desc)
		}
	}
	if len(conflicts) > 0 {
		return nil, false, &OverlapError{Bucket: t.Bucket, Trigger: wantRule.String(), Conflicts: conflicts}
	}

	out := &s3types.NotificationConfiguration{
		TopicConfigurations:      nc.TopicConfigurations,
		QueueConfigurations:      nc.QueueConfigurations,
		EventBridgeConfiguration: nc.EventBridgeConfiguration,
	}
	found, changed := false, false
	for _, c := range nc.LambdaFunctionConfigurations {
		if deref(c.Id) != t.ID {
			out.LambdaFunctionConfigurations = append(out.LambdaFunctionConfigurations, c)
			continue
		}
		if found { // a duplicate of our id: drop it
			changed = true
			continue
		}
		found = true
		if !sameLambdaRule(c, want) {
			changed = true
		}
		out.LambdaFunctionConfigurations = append(out.LambdaFunctionConfigurations, want)
	}
	if !found {
		changed = true
		out.LambdaFunctionConfigurations = append(out.LambdaFunctionConfigurations, want)
	}
	return out, changed, nil
}

// removeNotification returns nc without the Lambda rule with id, and
// whether there was one.
func removeNotification(nc *s3types.NotificationConfiguration, id string) (*s3types.NotificationConfiguration, bool) {
	out := &s3types.NotificationConfiguration{
		TopicConfigurations:      nc.TopicConfigurations,
		QueueConfigurations:      nc.QueueConfigurations,
		EventBridgeConfiguration: nc.EventBridgeConfiguration,
	}
	removed := false
	for _, c := range nc.LambdaFunctionConfigurations {
		if deref(c.Id) == id {
			removed = true
			continue
		}
		out.LambdaFunctionConfigurations = append(out.LambdaFunctionConfigurations, c)
	}
	return out, removed
}

// removeOurRule returns nc without the Lambda rules with id that target
// functionARN (or one of its versions or aliases), and whether there was
// one. A rule of that id for another function is kept: it is not ours.
func removeOurRule(nc *s3types.NotificationConfiguration, id, functionARN string) (*s3types.NotificationConfiguration, bool) {
	out := &s3types.NotificationConfiguration{
		TopicConfigurations:      nc.TopicConfigurations,
		QueueConfigurations:      nc.QueueConfigurations,
		EventBridgeConfiguration: nc.EventBridgeConfiguration,
	}
	removed := false
	for _, c := range nc.LambdaFunctionConfigurations {
		target := deref(c.LambdaFunctionArn)
		if deref(c.Id) == id && (target == functionARN || strings.HasPrefix(target, functionARN+":")) {
			removed = true
			continue
		}
		out.LambdaFunctionConfigurations = append(out.LambdaFunctionConfigurations, c)
	}
	return out, removed
}

func sameLambdaRule(a, b s3types.LambdaFunctionConfiguration) bool {
	ap, as := filterOf(a.Filter)
	bp, bs := filterOf(b.Filter)
	ae, be := eventStrings(a.Events), eventStrings(b.Events)
	slices.Sort(ae)
	slices.Sort(be)
	return deref(a.LambdaFunctionArn) == deref(b.LambdaFunctionArn) && ap == bp && as == bs && slices.Equal(ae, be)
}

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
// deploy with another --bucket, whose notification rule is still in that
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
