package lockfile

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse parses a lock of 2000 registry packages, about the size of a
// large workspace's.
func BenchmarkParse(b *testing.B) {
	var s strings.Builder
	s.WriteString("version = 4\n")
	for i := range 2000 {
		fmt.Fprintf(&s, "\n[[package]]\nname = \"crate%d\"\nversion = \"1.0.%d\"\nsource = %q\nchecksum = \"%064x\"\ndependencies = [\n \"a\",\n \"b\",\n]\n", i, i, CratesIORegistry, i)
	}
	data := []byte(s.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("Cargo.lock", data); err != nil {
			b.Fatal(err)
		}
	}
}
