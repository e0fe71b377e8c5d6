package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/comingout/extract/pkg/image"
)

// adviceImage advises on the typed errors of pkg/image (see advice.go), or "".
func adviceImage(err error) string {
	var (
		arch    *image.ArchError
		missing *image.MissingLibraryError
		entry   *image.EntrypointError
		glob    *image.GlobError
		include *image.IncludeError
		data    *image.DataRuleError
		plat    *image.PlatformError
	)
	switch {
	case errors.As(err, &arch):
		return "select the matching image with --platform"
	case errors.As(err, &missing):
		return "add the libraries to the image, or pass --include with their image paths"
	case errors.As(err, &entry):
		return entrypointAdvice(entry)
	case errors.As(err, &glob):
		return fmt.Sprintf("--%s takes an absolute image path, each component matched with path.Match (\"**\" matches any number of directories)", glob.Option)
	case errors.As(err, &include):
		return "fix the --include pattern or drop it"
	case errors.As(err, &data):
		return "fix the --no-data names"
	case errors.As(err, &plat) && len(plat.Available) == 1:
		return "pass --platform " + plat.Available[0]
	}
	return ""
}

// entrypointAdvice names --entrypoint when another program path gets past
// e: not for a script's missing interpreter, which the image must fix.
func entrypointAdvice(e *image.EntrypointError) string {
	switch {
	case e.Name == "":
		return "pass --entrypoint with the program's path in the image"
	case e.Problem == "not executable":
		return "or pass --entrypoint with the path of an executable"
	case e.Script != "":
		return ""
	case e.Problem == "not found", e.Problem == "is a directory", e.Problem == "not a regular file":
		return "pass --entrypoint with the program's path in the image"
	}
	return ""
}

// adviseRules rewrites the closure's RuleSize.Exclude hints (in the
// closure options' terms) as the flags that leave each rule's files out.
func adviseRules(res *image.ClosureResult) {
	if res == nil {
		return
	}
	for i := range res.Rules {
		res.Rules[i].Exclude = excludeFlags(res.Rules[i])
	}
}

// excludeFlags says which flags leave out the files of rule r.
func excludeFlags(r image.RuleSize) string {
	switch {
	case strings.HasPrefix(r.Rule, "data:"):
		return "--no-data " + strings.TrimPrefix(r.Rule, "data:")
	case r.Rule == "scripts" || r.Rule == "python" || r.Rule == "perl" || r.Rule == "interpreter":
		return fmt.Sprintf("--no-scan (all content rules), or --exclude '%s/**'", r.Largest)
	case r.Rule == "elf":
		return fmt.Sprintf("(the program and what it loads) --exclude only files it never opens, e.g. under '%s/**'", r.Largest)
	case r.Rule == "include":
		return "drop the --include that matched, or --exclude '" + r.Largest + "/**'"
	}
	return fmt.Sprintf("--exclude '%s/**'", r.Largest)
}
