//go:build !linux

package local

import (
	"fmt"
	"runtime"
)

// imageSandboxSupported says whether this system can run an image package:
// only Linux can (mount namespaces, chroot).
func imageSandboxSupported() error {
	return fmt.Errorf("running an image package needs Linux (a read-only chroot in a mount namespace), this is %s; invoke a zip package", runtime.GOOS)
}

// startImage is never reached: imageSandboxSupported refuses first.
func (inv *invocation) startImage(sb *imageSandbox) error {
	return imageSandboxSupported()
}
