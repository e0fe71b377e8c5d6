package lambda

import (
	"errors"
	"strings"
	"testing"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

func TestCheckRecursion(t *testing.T) {
	tests := []struct {
		name           string
		in             xruntime.Input
		out            xruntime.Output
		wantRecursion  bool
		exampleOutput  string // an output key of input/x.csv (or x.csv) the trigger would match
		triggerMatches func(string) bool
	}{
		{name: "defaults: input/ and output/", in: xruntime.Input{Prefix: "input/", Suffix: ".csv"}, out: xruntime.Output{Prefix: "output/"}},
		{name: "no trigger prefix", in: xruntime.Input{Suffix: ".csv"}, out: xruntime.Output{Prefix: "output/"}, wantRecursion: true},
		{name: "output under the trigger prefix", in: xruntime.Input{Prefix: "data/", Suffix: ".csv"}, out: xruntime.Output{Prefix: "data/out/"}, wantRecursion: true},
		{name: "no trigger prefix, output suffix .out", in: xruntime.Input{Suffix: ".csv"}, out: xruntime.Output{Prefix: "output/", Suffix: ".out"}},
		{name: "output suffix keeps .csv", in: xruntime.Input{Suffix: ".csv"}, out: xruntime.Output{Prefix: "output/", Suffix: ".result.csv"}, wantRecursion: true},
		{name: "no filters at all", in: xruntime.Input{}, out: xruntime.Output{Prefix: "output/", Suffix: ".out"}, wantRecursion: true},
		{name: "output in another bucket", in: xruntime.Input{Suffix: ".csv"}, out: xruntime.Output{Bucket: "results", Prefix: "output/"}},
		{name: "output bucket named as the trigger", in: xruntime.Input{Suffix: ".csv"}, out: xruntime.Output{Bucket: "uploads", Prefix: "output/"}, wantRecursion: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &xruntime.Manifest{Input: tc.in, Output: tc.out}
			err := CheckRecursion("uploads", m)
			var re *RecursionError
			if got := errors.As(err, &re); got != tc.wantRecursion {
				t.Fatalf("CheckRecursion(%+v, %+v) = %v, want recursion %v", tc.in, tc.out, err, tc.wantRecursion)
			}
			// Cross-check against the keys themselves: an output key for
			// an input key the trigger accepts.
			inKey := tc.in.Prefix + "some/day" + tc.in.Suffix
			outKey := tc.out.Prefix + strings.TrimPrefix(inKey, tc.in.Prefix) + tc.out.Suffix
			sameBucket := tc.out.Bucket == "" || tc.out.Bucket == "uploads"
			matches := sameBucket && strings.HasPrefix(outKey, tc.in.Prefix) && strings.HasSuffix(outKey, tc.in.Suffix)
			if matches && !tc.wantRecursion {
				t.Errorf("output key %q matches the trigger but CheckRecursion allowed it", outKey)
			}
		})
	}
}

// TestCheckManifest: the check deploy makes of a manifest's settings
// agrees with the package options that write them.
func TestCheckManifest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     xruntime.Input
		out    xruntime.Output
		opts   []PackageOption
		refuse bool
	}{
		{"defaults", xruntime.Input{Prefix: "input/", Suffix: ".csv"}, xruntime.Output{Prefix: "output/"}, nil, false},
		{"other output bucket, no suffix", xruntime.Input{Prefix: ""}, xruntime.Output{Bucket: "results.example-1", Prefix: "out/"},
			[]PackageOption{WithPrefix(""), WithSuffix(""), WithOutput("results.example-1", "out/", "")}, false},
		{"output bucket *", xruntime.Input{Prefix: "input/"}, xruntime.Output{Bucket: "*", Prefix: "output/"},
			[]PackageOption{WithOutput("*", "output/", "")}, true},
		{"output bucket ..", xruntime.Input{Prefix: "input/"}, xruntime.Output{Bucket: "a..b", Prefix: "output/"},
			[]PackageOption{WithOutput("a..b", "output/", "")}, true},
		{"input prefix *", xruntime.Input{Prefix: "in*"}, xruntime.Output{Prefix: "output/"}, []PackageOption{WithPrefix("in*")}, true},
		{"input suffix ?", xruntime.Input{Prefix: "input/", Suffix: ".cs?"}, xruntime.Output{Prefix: "output/"}, []PackageOption{WithSuffix(".cs?")}, true},
		{"output suffix *", xruntime.Input{Prefix: "input/"}, xruntime.Output{Prefix: "output/", Suffix: "*"},
			[]PackageOption{WithOutput("", "output/", "*")}, true},
		{"empty output prefix", xruntime.Input{Prefix: "input/"}, xruntime.Output{Bucket: "outbox"},
			[]PackageOption{WithOutput("outbox", "", "")}, true},
		{"control character", xruntime.Input{Prefix: "in\nput/"}, xruntime.Output{Prefix: "output/"}, []PackageOption{WithPrefix("in\nput/")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckManifest(&xruntime.Manifest{Input: tc.in, Output: tc.out})
			var me *ManifestError
			if tc.refuse != errors.As(err, &me) {
				t.Errorf("CheckManifest(%+v, %+v) = %v, want refused %v", tc.in, tc.out, err, tc.refuse)
			}
			if _, perr := makePackageOptions(tc.opts...); (perr != nil) != tc.refuse {
				t.Errorf("package options: error %v, want refused %v as deploy", perr, tc.refuse)
			}
		})
	}
}
