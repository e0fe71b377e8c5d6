package lambda

// testBootstrap is a bootstrap provider for tests that need no real one: a
// recognizable body per architecture.
func testBootstrap(arch string) ([]byte, error) {
	return []byte("bootstrap for " + arch + "\n"), nil
}
