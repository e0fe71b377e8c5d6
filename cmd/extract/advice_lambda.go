package main

import (
	"errors"
	"fmt"

	"github.com/comingout/extract/pkg/lambda"
)

// adviceLambda advises on the typed errors of pkg/lambda (see advice.go), or "".
func adviceLambda(err error) string {
	var (
		size   *lambda.SizeError
		loader *lambda.LoaderError
	)
	switch {
	case errors.As(err, &size) && size.Image:
		return "build it with --slim or leave files out of the image"
	case errors.As(err, &size) && size.Rule != nil && size.Rule.Exclude != "":
		return fmt.Sprintf("leave files out with --exclude GLOB; to leave rule %s out: %s", size.Rule.Rule, excludeFlags(*size.Rule))
	case errors.As(err, &size):
		return "leave files out with --exclude GLOB"
	case errors.As(err, &loader):
		return "leave those files out with --exclude"
	}
	return ""
}

// adviceWarning is w's message with the CLI's advice for its kind after it.
func adviceWarning(w lambda.Warning) string {
	var a string
	switch w.Kind {
	case lambda.WarnOriginalPaths:
		a = "package it as a container image with --format image (extract inspect lists them all)"
	case lambda.WarnDirectUpload:
		a = "deploy it with --code-bucket BUCKET"
	case lambda.WarnNotExecutable, lambda.WarnNotReadable:
		a = "--slim packages the closure alone"
	}
	if a == "" {
		return w.Message
	}
	return w.Message + ": " + a
}

// advisedWarnings are ws with the CLI's advice, as the --json reports carry
// them.
func advisedWarnings(ws []lambda.Warning) []lambda.Warning {
	out := make([]lambda.Warning, len(ws))
	for i, w := range ws {
		out[i] = lambda.Warning{Kind: w.Kind, Message: adviceWarning(w)}
	}
	return out
}
