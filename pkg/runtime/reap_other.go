//go:build !linux

package runtime

import "errors"

// BecomeSubreaper makes the calling process a child subreaper, on Linux
// only: elsewhere it returns an error.
func BecomeSubreaper() error { return errors.New("child subreapers are Linux-only") }

func setSubreaper(bool) error { return BecomeSubreaper() }

func programStart(int) uint64 { return 0 }

func killLeftovers(int, uint64) int { return 0 }
