//go:build !linux

package local

import (
	"context"
	"log/slog"
	"runtime"
)

// What Invoke needs that only Linux has. Invoke refuses first on other
// systems (checkOS), so these are never reached; they keep the package
// building everywhere, for the CLI's other commands.

func unsupported() error { return &UnsupportedError{OS: runtime.GOOS} }

func (inv *invocation) startBootstrap(env []string) error { return unsupported() }

func (inv *invocation) startImage(sb *imageSandbox) error { return unsupported() }

func (inv *invocation) kill() {}

func imageSandboxSupported() error { return unsupported() }

func lockLinkDir(ctx context.Context, linkDir string, log *slog.Logger) (unlock func(), err error) {
	return nil, unsupported()
}

func pointLinkDir(linkDir, dir string) error { return unsupported() }
