package image

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// LambdaUnzippedLimit is Lambda's limit on a function's unpacked code,
// "250 MB" as Lambda counts it (262144000 bytes). Closure notes which
// rule added the most when the closure's files exceed it.
const LambdaUnzippedLimit int64 = 262144000

// RuleSize is what one rule added to a closure: its regular files, counted
// under the first reason each file was added for.
type RuleSize struct {
	// Rule is "elf" (the program, its loader, libraries, interpreters, NSS
	// and gconv modules), "scripts" (programs and files shell scripts run
	// and source), "python", "perl", "interpreter" (the generic library
	// tree rule), "data:NAME" (a DataRule), "include" or "traced".
	Rule  string `json:"rule"`
	Files int    `json:"files"`
	Size  int64  `json:"size"`
	// Largest is the directory holding most of the rule's bytes.
	Largest string `json:"largest,omitempty"`
	// Exclude says how to leave the rule's files out, in the terms of the
	// closure options: "turn off data rule tz" (WithoutData), "turn off
	// the content rules" (WithScan(false)), "exclude '/usr/share/**'"
	// (WithExclude).
	Exclude string `json:"exclude"`
}

// ruleOf names the rule behind a reason.
func ruleOf(r Reason) string {
	switch r.Kind {
	case "command", "script":
		return "scripts"
	case "module", "library":
		switch {
		case strings.HasPrefix(r.Detail, "import ") || strings.HasPrefix(r.Detail, "python") || strings.HasPrefix(r.Detail, "site .pth"):
			return "python"
		case strings.HasPrefix(r.Detail, "use ") || strings.HasPrefix(r.Detail, "XS part of "):
			return "perl"
		}
		return "interpreter"
	case "data":
		name, _, _ := strings.Cut(r.Detail, ":")
		return "data:" + name
	case "include", "traced":
		return r.Kind
	}
	return "elf"
}

// ruleSizes sums files by rule, largest first. A file added as a library,
// loader or symlink of another file counts for the rule that added that
// file (libssl for the Python module that needs it), following first
// reasons.
func ruleSizes(files []File) []RuleSize {
	byPath := make(map[string]*File, len(files))
	for i := range files {
		byPath[files[i].Path] = &files[i]
	}
	memo := map[string]string{}
	var ruleFor func(f *File, depth int) string
	ruleFor = func(f *File, depth int) string {
		if r, ok := memo[f.Path]; ok {
			return r
		}
		r := f.Why[0]
		rule := ruleOf(r)
		switch r.Kind {
		case "needed", "loader", "symlink", "runtime", "interpreter":
			if by, ok := byPath[r.By]; ok && by != f && len(by.Why) > 0 && depth < 64 {
				rule = ruleFor(by, depth+1)
			}
		}
		memo[f.Path] = rule
		return rule
	}
	byRule := map[string]*RuleSize{}
	dirs := map[string]map[string]int64{}
	for i := range files {
		f := &files[i]
		if f.Kind != Regular || len(f.Why) == 0 {
			continue
		}
		rule := ruleFor(f, 0)
		rs, ok := byRule[rule]
		if !ok {
			rs = &RuleSize{Rule: rule}
			byRule[rule] = rs
			dirs[rule] = map[string]int64{}
		}
		rs.Files++
		rs.Size += f.Size
		dirs[rule][topDir(f.Path, 3)] += f.Size
	}
	var out []RuleSize
	for rule, rs := range byRule {
		var best string
		var bestSize int64
		for d, s := range dirs[rule] {
			if s > bestSize || (s == bestSize && d < best) {
				best, bestSize = d, s
			}
		}
		rs.Largest = best
		rs.Exclude = excludeHint(rule, best)
		out = append(out, *rs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// topDir returns the first n components of p's directory.
func topDir(p string, n int) string {
	parts := splitClean(path.Dir(p))
	if len(parts) > n {
		parts = parts[:n]
	}
	return "/" + strings.Join(parts, "/")
}

// excludeHint says how to leave out a rule's files, in the terms of the
// closure options (WithoutData, WithScan, WithExclude, WithInclude).
func excludeHint(rule, largest string) string {
	switch {
	case strings.HasPrefix(rule, "data:"):
		return "turn off data rule " + strings.TrimPrefix(rule, "data:")
	case rule == "scripts" || rule == "python" || rule == "perl" || rule == "interpreter":
		return fmt.Sprintf("turn off the content rules, or exclude '%s/**'", largest)
	case rule == "elf":
		return fmt.Sprintf("(the program and what it loads) exclude only files it never opens, e.g. under '%s/**'", largest)
	case rule == "include":
		return "drop the include pattern that matched, or exclude '" + largest + "/**'"
	}
	return fmt.Sprintf("exclude '%s/**'", largest)
}

// budgetNote returns the note for a closure over LambdaUnzippedLimit, or
// "".
func budgetNote(rules []RuleSize) string {
	var total int64
	for _, r := range rules {
		total += r.Size
	}
	if total <= LambdaUnzippedLimit || len(rules) == 0 {
		return ""
	}
	top := rules[0]
	return fmt.Sprintf("closure is %.1f MB, over Lambda's 250 MB unzipped limit: rule %s added the most (%.1f MB in %d files, mostly %s); to leave it out, %s",
		float64(total)/(1<<20), top.Rule, float64(top.Size)/(1<<20), top.Files, top.Largest, top.Exclude)
}
