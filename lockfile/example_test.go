package lockfile_test

import (
	"fmt"

	"github.com/cargohash/cargohash/lockfile"
)

func ExampleParse() {
	lock := []byte(`version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde"]

[[package]]
name = "serde"
version = "1.0.197"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3fb1c873e1b9b056a4dc4c0c198b24c3ffa059243875552b2bd0933b1aee4ce2"

[[package]]
name = "gdep"
version = "0.1.0"
source = "git+https://github.com/o/gdep?branch=feature%2Fx#aee9f83e2312ab2d27ce8bd66969a5d1f27f073f"
`)
	l, err := lockfile.Parse("Cargo.lock", lock)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range l.Fetchable() {
		fmt.Printf("%s line %d: %s %s %q\n", p.ID(), p.Line, p.Source.URL, p.Source.Ref.Kind, p.Source.Ref.Value)
	}
	// Output:
	// serde@1.0.197 line 8: https://github.com/rust-lang/crates.io-index  ""
	// gdep@0.1.0 line 14: https://github.com/o/gdep branch "feature/x"
}

func ExampleDiff() {
	old, _ := lockfile.Parse("old/Cargo.lock", []byte(`version = 4
[[package]]
name = "serde"
version = "1.0.196"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "bar"
version = "0.1.0"
`))
	new, _ := lockfile.Parse("new/Cargo.lock", []byte(`version = 4
[[package]]
name = "serde"
version = "1.0.197"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "foo"
version = "1.0.0"
source = "sparse+https://index.crates.io/"
`))
	for _, c := range lockfile.Diff(old, new) {
		fmt.Println(c)
	}
	// Output:
	// - bar 0.1.0
	// + foo 1.0.0 (sparse+https://index.crates.io/)
	// ~ serde 1.0.196 -> 1.0.197
}

func ExampleError() {
	_, err := lockfile.Parse("Cargo.lock", []byte(`version = 4

[[package]]
name = "serde"
version = "1.0.197"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "not-hex"
`))
	fmt.Println(err)
	// Output:
	// Cargo.lock:3: package serde@1.0.197: checksum "not-hex" is not 64 lowercase hex digits
}
