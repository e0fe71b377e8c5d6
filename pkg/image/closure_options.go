package image

import (
	"errors"
	"log/slog"
	"strings"
)

// ClosureOption configures Closure.
type ClosureOption func(*closureOptions) error

type closureOptions struct {
	include []string
	exclude []string
	gconv   bool
	logger  *slog.Logger
	// traced are the paths of WithTraced (trace.go).
	traced []string
	// img enables the content and data rules (rule.go).
	img    *Image
	noScan bool
	noData map[string]bool
}

// WithInclude adds the files matching each glob to the closure (reason
// "include"), for data files and programs the entrypoint starts by name.
// A pattern is an absolute image path whose components are matched with
// path.Match; a "**" component matches any number of directories. A
// matched directory brings everything below it. ELF files included get
// their libraries resolved too. A pattern matching nothing is an error.
func WithInclude(globs ...string) ClosureOption {
	return func(o *closureOptions) error {
		for _, g := range globs {
			if err := checkGlob(g); err != nil {
				return &GlobError{Option: "include", Pattern: g, Err: err}
			}
		}
		o.include = append(o.include, globs...)
		return nil
	}
}

// WithExclude removes the files matching each glob (same syntax as
// WithInclude; a matched directory removes what lies below it) from the
// closure. Excluding the entrypoint, its loader or a script's interpreter
// (or a symlink on the way to them) is an *ExcludeError.
func WithExclude(globs ...string) ClosureOption {
	return func(o *closureOptions) error {
		for _, g := range globs {
			if err := checkGlob(g); err != nil {
				return &GlobError{Option: "exclude", Pattern: g, Err: err}
			}
		}
		o.exclude = append(o.exclude, globs...)
		return nil
	}
}

// WithGconv adds glibc's gconv modules directory (the gconv-modules
// configuration and every module .so with its libraries), which iconv(3)
// loads by name at run time. Default false: the directory is about 8 MB on
// Debian, a sixth of Lambda's 50 MB upload limit, and only programs
// converting between character sets need it.
func WithGconv(on bool) ClosureOption {
	return func(o *closureOptions) error {
		o.gconv = on
		return nil
	}
}

// WithClosureLogger sets the logger Closure reports its decisions to
// (libraries found, candidates skipped) at debug level. Default: discard.
func WithClosureLogger(l *slog.Logger) ClosureOption {
	return func(o *closureOptions) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		o.logger = l
		return nil
	}
}

// WithImage gives Closure the image the index was built from, which turns
// on the rules that go beyond ELF (see Closure): the content rules read
// the bodies of scripts, modules and interpreters through Extract, in
// rounds, each reading only the layers that hold the files it needs (at
// most 1 MiB of each script or module, 16 MiB of an interpreter binary),
// and the data rules add well-known files read at run time. Without it
// (the default), Closure follows ELF and "#!" lines only and reads no file
// body.
func WithImage(img *Image) ClosureOption {
	return func(o *closureOptions) error {
		if img == nil {
			return errors.New("image is nil")
		}
		o.img = img
		return nil
	}
}

// WithScan turns the content rules (shell script bodies, Python and Perl
// imports, interpreters' library trees) on or off. Default on; they only
// run with WithImage.
func WithScan(on bool) ClosureOption {
	return func(o *closureOptions) error {
		o.noScan = !on
		return nil
	}
}

// WithoutData turns off data rules by name (see DataRules; "all" turns off
// every one). Default: every data rule is on when WithImage is given.
func WithoutData(names ...string) ClosureOption {
	return func(o *closureOptions) error {
		if o.noData == nil {
			o.noData = map[string]bool{}
		}
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if n == "all" {
				for _, r := range DataRules {
					o.noData[r.Name] = true
				}
				continue
			}
			if !isDataRule(n) {
				return &DataRuleError{Name: n, Known: dataRuleNames()}
			}
			o.noData[n] = true
		}
		return nil
	}
}
