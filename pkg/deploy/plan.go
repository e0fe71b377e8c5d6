package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// This file and policy.go hold the pure part of deploy and destroy: what
// the function, role, permission and notification should look like, and
// how the current state differs from it. Nothing here calls AWS.

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
