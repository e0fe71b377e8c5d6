package image

import (
	"errors"
	"fmt"
	"strings"
)

// ErrArchMismatch is wrapped by *ArchError: the program's ELF machine is not
// the image platform's architecture.
var ErrArchMismatch = errors.New("architecture mismatch")

// ArchError says that the program the image runs is built for another
// architecture than the platform the image was selected for.
type ArchError struct {
	// Path is the image path of the ELF file.
	Path string
	// Machine is the file's ELF machine ("aarch64"), Platform the image's
	// platform ("linux/amd64") and Want the ELF machine it implies.
	Machine, Platform, Want string
}

// Error implements error.
func (e *ArchError) Error() string {
	return fmt.Sprintf("%s is built for %s but the image platform is %s (%s)",
		e.Path, e.Machine, e.Platform, e.Want)
}

// Unwrap returns ErrArchMismatch, for errors.Is.
func (e *ArchError) Unwrap() error { return ErrArchMismatch }

// MissingLib is one shared library no search directory holds.
type MissingLib struct {
	// Soname is the DT_NEEDED name (or NSS module name) looked up.
	Soname string
	// NeededBy lists the image paths of the files that need it, sorted.
	NeededBy []string
	// Searched lists every directory looked in, in search order.
	Searched []string
}

// MissingLibraryError lists every shared library of the closure that the
// image does not hold (or holds only for another ELF class or machine), all
// at once.
type MissingLibraryError struct {
	Missing []MissingLib
}

// Error implements error.
func (e *MissingLibraryError) Error() string {
	var b strings.Builder
	if len(e.Missing) == 1 {
		b.WriteString("1 shared library is missing from the image")
	} else {
		fmt.Fprintf(&b, "%d shared libraries are missing from the image", len(e.Missing))
	}
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  %s, needed by %s; searched %s",
			m.Soname, strings.Join(m.NeededBy, ", "), strings.Join(m.Searched, ":"))
	}
	return b.String()
}

// EntrypointError says that the program the image's config names cannot be
// run: it is missing, a directory, not executable, or (for a script) its
// interpreter is missing.
type EntrypointError struct {
	// Config is what the image config (or override) said: ENTRYPOINT/CMD
	// as written.
	Config []string
	// Name is the program name looked up (Args[0], or a "#!" interpreter).
	Name string
	// Problem is "not found", "is a directory", "not executable",
	// "not a regular file" or "symlink loop".
	Problem string
	// Looked lists the image paths tried, in order.
	Looked []string
	// Nearby lists existing image paths with similar names in the
	// directories looked in.
	Nearby []string
	// Script is set when Name is the "#!" interpreter of a script (or the
	// program "#!/usr/bin/env NAME" runs): the script's image path.
	Script string
	// Err is an underlying error, if any.
	Err error
}

// Error implements error.
func (e *EntrypointError) Error() string {
	var b strings.Builder
	if e.Name == "" {
		return "entrypoint: " + e.Problem
	}
	if e.Script != "" {
		fmt.Fprintf(&b, "interpreter %q of %s: %s", e.Name, e.Script, e.Problem)
	} else {
		fmt.Fprintf(&b, "entrypoint %q: %s", e.Name, e.Problem)
	}
	if len(e.Config) > 0 {
		fmt.Fprintf(&b, " (config says %q)", e.Config)
	}
	if len(e.Looked) > 0 {
		fmt.Fprintf(&b, "; looked at %s", strings.Join(e.Looked, ", "))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if len(e.Nearby) > 0 {
		fmt.Fprintf(&b, "; the image has %s", strings.Join(e.Nearby, ", "))
	}
	switch e.Problem {
	case "not found", "is a directory", "not a regular file":
		if e.Script != "" {
			b.WriteString("; add the interpreter to the image or fix the script's #! line")
		}
	case "not executable":
		b.WriteString("; make it executable in the image (chmod +x)")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *EntrypointError) Unwrap() error { return e.Err }

// ExcludeError says that a WithExclude pattern would remove a file the
// program cannot start without (the entrypoint, its loader or a script's
// interpreter).
type ExcludeError struct {
	// Pattern is the exclude glob, Path the file it matched and Kind why the
	// file is needed ("entrypoint", "loader", "interpreter").
	Pattern, Path, Kind string
}

// Error implements error.
func (e *ExcludeError) Error() string {
	return fmt.Sprintf("exclude pattern %q would remove %s, the program's %s: narrow the pattern", e.Pattern, e.Path, e.Kind)
}

// GlobError says that a WithInclude or WithExclude pattern is malformed.
type GlobError struct {
	// Option is "include" or "exclude", Pattern the glob as given.
	Option, Pattern string
	// Err says what is wrong with it.
	Err error
}

// Error implements error.
func (e *GlobError) Error() string {
	return fmt.Sprintf("%s pattern %q: %v", e.Option, e.Pattern, e.Err)
}

// Unwrap returns the underlying error.
func (e *GlobError) Unwrap() error { return e.Err }

// IncludeError says that a WithInclude pattern matches no file of the
// image.
type IncludeError struct {
	Pattern string
}

// Error implements error.
func (e *IncludeError) Error() string {
	return fmt.Sprintf("include pattern %q matches no file in the image", e.Pattern)
}

// DataRuleError says that WithoutData was given a name that is neither a
// DataRule's nor "all".
type DataRuleError struct {
	// Name is the name given; Known lists the data rules' names.
	Name  string
	Known []string
}

// Error implements error.
func (e *DataRuleError) Error() string {
	return fmt.Sprintf("unknown data rule %q: want one of %s or all", e.Name, strings.Join(e.Known, ", "))
}
