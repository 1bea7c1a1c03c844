//go:build !linux

package cargohash_test

import (
	"os"
	"testing"
)

// readOnlyDir makes dir read-only for this process until the test ends, by
// its mode (which does not stop root).
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if os.Getuid() == 0 {
		t.Skipf("cannot make %s read-only for root here", dir)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
}
