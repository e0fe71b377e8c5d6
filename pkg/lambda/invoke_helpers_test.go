package lambda

import (
	"testing"

	"github.com/comingout/extract/internal/testkit"
)

// Helpers of the tests that run packages with local.Invoke.

// mustInvBuilt writes the real bootstrap (./cmd/bootstrap) and the static
// test program, built once per test binary, to the test's directory.
func mustInvBuilt(t testing.TB) (bootstrap, testProg string) {
	t.Helper()
	return testkit.GoBuildFile(t, testkit.Bootstrap, ""), testkit.GoBuildFile(t, testkit.TestProg, "")
}
