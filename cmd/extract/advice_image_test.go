package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
)

// TestAdviceImage: the CLI adds to pkg/image's typed errors the flag that
// gets past them, so the user reads what the library said and what to
// pass, as before the library stopped naming flags.
func TestAdviceImage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"arch", &image.ArchError{Path: "/usr/bin/x", Machine: "aarch64", Platform: "linux/amd64", Want: "x86_64"},
			"/usr/bin/x is built for aarch64 but the image platform is linux/amd64 (x86_64); select the matching image with --platform"},
		{"missing library, wrapped", fmt.Errorf("closure: %w", &image.MissingLibraryError{Missing: []image.MissingLib{{Soname: "libx.so.1", NeededBy: []string{"/app"}, Searched: []string{"/lib"}}}}),
			"closure: 1 shared library is missing from the image\n  libx.so.1, needed by /app; searched /lib; add the libraries to the image, or pass --include with their image paths"},
		{"no entrypoint", &image.EntrypointError{Problem: "the image config has no ENTRYPOINT or CMD"},
			"entrypoint: the image config has no ENTRYPOINT or CMD; pass --entrypoint with the program's path in the image"},
		{"entrypoint not found", &image.EntrypointError{Name: "/app", Problem: "not found"},
			`entrypoint "/app": not found; pass --entrypoint with the program's path in the image`},
		{"entrypoint not executable", &image.EntrypointError{Name: "/app", Problem: "not executable"},
			`entrypoint "/app": not executable; make it executable in the image (chmod +x); or pass --entrypoint with the path of an executable`},
		{"interpreter not found", &image.EntrypointError{Name: "/bin/zsh", Problem: "not found", Script: "/app"},
			`interpreter "/bin/zsh" of /app: not found; add the interpreter to the image or fix the script's #! line`},
		{"include matches nothing", &image.IncludeError{Pattern: "/opt/**"},
			`include pattern "/opt/**" matches no file in the image; fix the --include pattern or drop it`},
		{"relative exclude", &image.GlobError{Option: "exclude", Pattern: "usr", Err: errors.New("must be an absolute image path")},
			`exclude pattern "usr": must be an absolute image path; --exclude takes an absolute image path, each component matched with path.Match ("**" matches any number of directories)`},
		{"unknown data rule", &image.DataRuleError{Name: "bogus", Known: []string{"tz", "certs"}},
			`unknown data rule "bogus": want one of tz, certs or all; fix the --no-data names`},
		{"one other platform", &image.PlatformError{Want: "linux/amd64", Available: []string{"linux/arm64"}},
			"image is linux/arm64, not linux/amd64; pass --platform linux/arm64"},
		{"exclude protects the loader", &image.ExcludeError{Pattern: "/lib/**", Path: "/lib/ld.so", Kind: "loader"},
			`exclude pattern "/lib/**" would remove /lib/ld.so, the program's loader: narrow the pattern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := advised(tt.err).Error(); got != tt.want {
				t.Errorf("advised(%#v) =\n%q\nwant\n%q", tt.err, got, tt.want)
			}
		})
	}
}

// TestInspectAdvisesImageErrors runs inspect into pkg/image's typed errors
// and checks the message main prints names the flag to use, with the exit
// code of the typed error.
func TestInspectAdvisesImageErrors(t *testing.T) {
	archive := hostTrueArchive(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"missing entrypoint", []string{"--entrypoint", "/usr/bin/ture"}, exitNotFound,
			`entrypoint "/usr/bin/ture": not found`},
		{"include matching nothing", []string{"--include", "/nowhere/**"}, exitFailure,
			`include pattern "/nowhere/**" matches no file in the image; fix the --include pattern or drop it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runApp(t, append([]string{"inspect", "docker-archive:" + archive}, tt.args...)...)
			if err == nil {
				t.Fatalf("inspect %q succeeded, want an error", tt.args)
			}
			msg := advised(err).Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("inspect %q: %q, want it to contain %q", tt.args, msg, tt.want)
			}
			if code := exitCode(advised(err)); code != tt.wantCode {
				t.Errorf("inspect %q: exit code %d, want %d", tt.args, code, tt.wantCode)
			}
		})
	}
	_, _, err := runApp(t, "inspect", "docker-archive:"+archive, "--entrypoint", "/usr/bin/ture")
	if msg := advised(err).Error(); !strings.HasSuffix(msg, "; pass --entrypoint with the program's path in the image") {
		t.Errorf("inspect --entrypoint /usr/bin/ture: %q, want the --entrypoint advice at its end", msg)
	}
}

// TestInspectRulesNameFlags: inspect shows how to leave each rule's files
// out as flags, in the text and the JSON output.
func TestInspectRulesNameFlags(t *testing.T) {
	archive := hostTrueArchive(t)
	out, stderr, err := runApp(t, "inspect", "docker-archive:"+archive, "--entrypoint", "/usr/bin/true", "--json")
	if err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, stderr)
	}
	var doc struct {
		Closure struct {
			Rules []image.RuleSize `json:"rules"`
		} `json:"closure"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, out)
	}
	if len(doc.Closure.Rules) == 0 {
		t.Fatalf("inspect --json: no closure rules in\n%s", out)
	}
	for _, r := range doc.Closure.Rules {
		if want := excludeFlags(r); r.Exclude != want || !strings.Contains(r.Exclude, "--") {
			t.Errorf("rule %s: exclude %q, want %q", r.Rule, r.Exclude, want)
		}
	}
	text, _, err := runApp(t, "inspect", "docker-archive:"+archive, "--entrypoint", "/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "(the program and what it loads) --exclude only files it never opens") {
		t.Errorf("inspect: RULES section does not name --exclude:\n%s", text)
	}
}

func TestExcludeFlags(t *testing.T) {
	for _, tt := range []struct {
		r    image.RuleSize
		want string
	}{
		{image.RuleSize{Rule: "data:tz", Largest: "/usr/share"}, "--no-data tz"},
		{image.RuleSize{Rule: "python", Largest: "/usr/lib/python3.11"}, "--no-scan (all content rules), or --exclude '/usr/lib/python3.11/**'"},
		{image.RuleSize{Rule: "include", Largest: "/opt"}, "drop the --include that matched, or --exclude '/opt/**'"},
		{image.RuleSize{Rule: "traced", Largest: "/usr/share"}, "--exclude '/usr/share/**'"},
	} {
		if got := excludeFlags(tt.r); got != tt.want {
			t.Errorf("excludeFlags(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// TestAdviceSizeErrorRuleFlags: a package over the limit is advised with
// the flags that leave the biggest rule out, though pkg/image describes
// them in its own terms.
func TestAdviceSizeErrorRuleFlags(t *testing.T) {
	rule := image.RuleSize{Rule: "python", Files: 3, Size: 9 << 20, Largest: "/usr/lib/python3.11",
		Exclude: "turn off the content rules, or exclude '/usr/lib/python3.11/**'"}
	err := &lambda.SizeError{Size: 300 << 20, Limit: 250 << 20, Rule: &rule}
	want := "to leave rule python out: --no-scan (all content rules), or --exclude '/usr/lib/python3.11/**'"
	if got := advice(err); !strings.Contains(got, want) {
		t.Errorf("advice(%v) = %q, want it to contain %q", err, got, want)
	}
}
