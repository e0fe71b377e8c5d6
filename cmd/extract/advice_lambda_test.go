package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

// TestAdviceLambda: the errors of pkg/lambda say what went wrong without
// naming a flag; the CLI's message (advised) adds the flag that gets past
// them.
func TestAdviceLambda(t *testing.T) {
	rule := &image.RuleSize{Rule: "python", Files: 3, Size: 9 << 20, Largest: "/usr/lib/python3.11", Exclude: "--no-scan (all content rules), or --exclude '/usr/lib/python3.11/**'"}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"zip too big", fmt.Errorf("packaging: %w", &lambda.SizeError{Size: 300 << 20, Limit: lambda.MaxUnzippedSize, Biggest: []lambda.FileSize{{Path: "/big", Size: 200 << 20}}}),
			[]string{"over Lambda's limit", "/big (200.0 MB)", "; leave files out with --exclude GLOB"}},
		{"zip too big, by rule", &lambda.SizeError{Size: 300 << 20, Limit: lambda.MaxUnzippedSize, Rule: rule},
			[]string{"rule python added the most", "--exclude GLOB", "to leave rule python out: --no-scan"}},
		{"image too big", &lambda.SizeError{Size: 11 << 30, Limit: lambda.MaxImageSize, Image: true},
			[]string{"for container images; build it with --slim or leave files out of the image"}},
		{"loaders missing", errors.Join(&lambda.LoaderError{Loader: "/lib/ld-musl-x86_64.so.1", Users: []string{"/bin/busybox"}}, &lambda.LoaderError{Loader: "/lib/ld.so", Users: []string{"/x"}}),
			[]string{`loader "/lib/ld-musl-x86_64.so.1" of ["/bin/busybox"] is not in the image's closure`, "; leave those files out with --exclude"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.err.Error(), "--") {
				t.Errorf("%T error %q names a flag", tt.err, tt.err)
			}
			got := advised(tt.err).Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("advised(%v) = %q, want it to contain %q", tt.err, got, w)
				}
			}
		})
	}
}

// TestAdviceWarning: each kind of packaging warning gets the flag that
// avoids it; a warning of no kind is left as it is.
func TestAdviceWarning(t *testing.T) {
	tests := []struct {
		kind lambda.WarningKind
		want string
	}{
		{lambda.WarnOriginalPaths, "msg: package it as a container image with --format image (extract inspect lists them all)"},
		{lambda.WarnDirectUpload, "msg: deploy it with --code-bucket BUCKET"},
		{lambda.WarnNotExecutable, "msg: --slim packages the closure alone"},
		{lambda.WarnNotReadable, "msg: --slim packages the closure alone"},
		{"", "msg"},
	}
	for _, tt := range tests {
		if got := adviceWarning(lambda.Warning{Kind: tt.kind, Message: "msg"}); got != tt.want {
			t.Errorf("adviceWarning(%q) = %q, want %q", tt.kind, got, tt.want)
		}
	}
	ws := advisedWarnings([]lambda.Warning{{Kind: lambda.WarnDirectUpload, Message: "big"}})
	if len(ws) != 1 || ws[0].Kind != lambda.WarnDirectUpload || ws[0].Message != "big: deploy it with --code-bucket BUCKET" {
		t.Errorf("advisedWarnings = %+v", ws)
	}
}
