package lambda

import (
	"fmt"
	"strings"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// This file holds the checks package makes when it writes a package and
// deploy makes again before it acts on one: whoever could edit a zip or
// image could edit its extract.json.

// CheckUnzipped returns a *SizeError naming the biggest files when a
// package's unzipped size is over limit, else nil.
func CheckUnzipped(size, limit int64, files []FileSize) error {
	return checkUnzipped(size, limit, files)
}

// HumanSize formats n bytes as extract's messages and logs do: binary
// units written the way Lambda's documentation writes them ("250.0 MB" is
// 262144000 bytes).
func HumanSize(n int64) string { return humanSize(n) }

// RecursionError is returned when objects the function writes would trigger
// the function again: the output goes to the trigger bucket and an output
// key can match the trigger's prefix and suffix. Outputs and trigger are
// kept apart by a trigger prefix and an output prefix neither of which
// starts with the other (DefaultInputPrefix and DefaultOutputPrefix are),
// another output bucket, or (except for an output directory) an output
// suffix that does not end in the trigger suffix.
type RecursionError struct {
	// Bucket is the trigger bucket; empty when package checked the
	// settings, before any bucket is known.
	Bucket        string
	TriggerPrefix string
	TriggerSuffix string
	OutputPrefix  string
	OutputSuffix  string
	// What names the outputs that can match: RecursiveOutputKeys,
	// RecursiveStdoutKeys or RecursiveDirKeys.
	What string
}

// The outputs a RecursionError names (RecursionError.What).
const (
	// RecursiveOutputKeys are the output objects of the program's stdout
	// or output file.
	RecursiveOutputKeys = "output keys"
	// RecursiveStdoutKeys are the stdout objects kept beside a file or
	// directory output (Output.StdoutAlso).
	RecursiveStdoutKeys = "stdout keys"
	// RecursiveDirKeys are the objects of an output directory's files.
	RecursiveDirKeys = "output directory keys"
)

func (e *RecursionError) Error() string {
	where := "the input bucket"
	if e.Bucket != "" {
		where = fmt.Sprintf("bucket %q", e.Bucket)
	}
	switch e.What {
	case RecursiveDirKeys:
		return fmt.Sprintf("output would re-trigger the function: an output directory's files go to %s under %q with any name (%s among them), and the trigger fires on keys under %q, so no suffix keeps them apart",
			where, e.OutputPrefix, xruntime.OutputDirManifest, e.TriggerPrefix)
	case RecursiveStdoutKeys:
		return fmt.Sprintf("output would re-trigger the function: the program's stdout goes to %s as %q + key + %q, and the trigger fires on keys under %q ending in %q",
			where, e.OutputPrefix, e.OutputSuffix+stdoutSuffix, e.TriggerPrefix, e.TriggerSuffix)
	}
	return fmt.Sprintf("output would re-trigger the function: outputs go to %s as %q + key + %q, and the trigger fires on keys under %q ending in %q",
		where, e.OutputPrefix, e.OutputSuffix, e.TriggerPrefix, e.TriggerSuffix)
}

// stdoutSuffix ends the key of the program's stdout kept beside a file or
// directory output (Output.StdoutAlso).
const stdoutSuffix = ".stdout"

// CheckRecursion refuses a manifest whose output, written to bucket, could
// match the trigger filter (see outputsMatchTrigger).
func CheckRecursion(bucket string, m *xruntime.Manifest) error {
	outBucket := m.Output.Bucket
	if outBucket == "" {
		outBucket = bucket
	}
	if outBucket != bucket {
		return nil
	}
	if what := outputsMatchTrigger(m.Input, m.Output); what != "" {
		return &RecursionError{Bucket: bucket, TriggerPrefix: m.Input.Prefix, TriggerSuffix: m.Input.Suffix,
			OutputPrefix: m.Output.Prefix, OutputSuffix: m.Output.Suffix, What: what}
	}
	return nil
}

// outputsMatchTrigger names the keys the function writes, in the trigger's
// bucket, that can match the trigger filter in: RecursiveOutputKeys,
// RecursiveStdoutKeys, RecursiveDirKeys, or "" when none can. An output key is out.Prefix + rest +
// out.Suffix where rest is the input key without in.Prefix, so it ends in
// in.Suffix + out.Suffix; it can start with in.Prefix iff one prefix is a
// prefix of the other. The stdout kept beside a file output (StdoutAlso)
// adds ".stdout" to that key. An output directory's keys are out.Prefix +
// anything: once the prefixes overlap, nothing keeps them out.
func outputsMatchTrigger(in xruntime.Input, out xruntime.Output) string {
	ip, is := in.Prefix, in.Suffix
	op, os := out.Prefix, out.Suffix
	if !strings.HasPrefix(ip, op) && !strings.HasPrefix(op, ip) {
		return ""
	}
	switch {
	case out.Dir != "":
		return RecursiveDirKeys
	case strings.HasSuffix(is+os, is):
		return RecursiveOutputKeys
	case out.StdoutAlso && strings.HasSuffix(is+os+stdoutSuffix, is):
		return RecursiveStdoutKeys
	}
	return ""
}

// ManifestError is returned when a package's extract.json holds input or
// output settings that extract package does not write: an output bucket
// that is not a valid S3 bucket name, an empty output prefix, or a prefix
// or suffix that is too long, holds a control character, or holds "*" or
// "?". The role's policy is made from these settings ("*" and "?" are
// wildcards in its resource ARNs: an output bucket "*" would let the
// function write to every bucket), so deploy refuses an edited manifest
// instead of granting what it asks.
type ManifestError struct {
	// Problems lists each invalid setting.
	Problems []string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("the package's %s has input or output settings extract does not write when it packages (%s): package the image again with the settings you want",
		xruntime.ManifestPath, strings.Join(e.Problems, "; "))
}

// CheckManifest re-checks the settings of m that the role's policy, the
// trigger and the output keys are made from, as package checked them when
// it wrote m; CheckRecursion is the other half.
func CheckManifest(m *xruntime.Manifest) error {
	var problems []string
	if b := m.Output.Bucket; b != "" && !validBucketName(b) {
		problems = append(problems, fmt.Sprintf("output bucket %q is not a valid S3 bucket name (3 to 63 lowercase letters, digits, \".\" and \"-\", starting and ending with a letter or digit)", b))
	}
	if m.Output.Prefix == "" {
		problems = append(problems, "output prefix is empty: outputs could go anywhere in the bucket")
	}
	for _, p := range []struct{ what, s string }{
		{"input prefix", m.Input.Prefix}, {"input suffix", m.Input.Suffix},
		{"output prefix", m.Output.Prefix}, {"output suffix", m.Output.Suffix},
	} {
		if err := checkKeyPart(p.what, p.s); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return &ManifestError{Problems: problems}
	}
	return nil
}

// validBucketName reports whether b follows S3's rules for new bucket
// names, the ones extract package checks an output bucket against.
func validBucketName(b string) bool {
	return bucketName.MatchString(b) && !strings.Contains(b, "..")
}
