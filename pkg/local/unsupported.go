package local

import (
	"errors"
	"fmt"
)

// UnsupportedError is Invoke's refusal to run a package on a system other
// than Linux.
type UnsupportedError struct {
	// OS is this system (a GOOS: "darwin", "windows").
	OS string
}

// Error says that running a package needs Linux, and why.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("running a package locally needs Linux, and this is %s: a package's bootstrap and programs are Linux executables, "+
		"and the emulator contains them as Lambda does, with Linux namespaces (an image's read-only root in a mount namespace, "+
		"the bootstrap as PID 1 of its own PID namespace)", e.OS)
}

// checkOS refuses to run a package on goos unless it is Linux.
func checkOS(goos string) error {
	if goos != "linux" {
		return &UnsupportedError{OS: goos}
	}
	return nil
}

// ErrImageNeedsRoot is Invoke's refusal to run an image package for a user
// other than root: the image's sandbox is made of mounts in a private mount
// namespace, which need CAP_SYS_ADMIN, and Go cannot get that from a user
// namespace in a running, multithreaded program.
var ErrImageNeedsRoot = errors.New("running an image package needs root: its root filesystem is mounted read-only in a private mount namespace and the program is chrooted there as a non-root user, as Lambda runs images")
