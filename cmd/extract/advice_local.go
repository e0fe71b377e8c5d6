package main

import (
	"errors"

	"github.com/comingout/extract/pkg/local"
)

// adviceLocal advises on the typed errors of pkg/local (see advice.go), or "".
func adviceLocal(err error) string {
	var unsupported *local.UnsupportedError
	switch {
	case errors.As(err, &unsupported):
		return "run extract invoke on a Linux machine (a VM or a container will do; an image package needs root there), or deploy the package and invoke it on Lambda"
	case errors.Is(err, local.ErrImageNeedsRoot):
		return "run extract invoke as root (sudo), or invoke a zip package (extract package --format zip)"
	}
	return ""
}
