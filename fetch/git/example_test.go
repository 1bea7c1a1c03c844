package git_test

import (
	"context"
	"fmt"
	"os"

	"github.com/cargohash/cargohash/fetch/git"
)

// Checking out the commit a Cargo.lock pins, with a cache shared by later
// runs: the tree at dest is what nix-prefetch-git --fetch-submodules leaves,
// ready to be NAR-hashed.
func ExampleFetcher_Checkout() {
	f := &git.Fetcher{CacheDir: os.ExpandEnv("$HOME/.cache/cargohash/git"), Log: os.Stderr, Jobs: 4}
	err := f.Checkout(context.Background(),
		"https://github.com/rust-lang/cargo",
		"0123456789abcdef0123456789abcdef01234567",
		"vendor-staging/git/0123456789abcdef0123456789abcdef01234567")
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // git https://github.com/rust-lang/cargo @ 0123…: commit not found after full fetch
	}
}

// A git-index registry's config.json, from the index's HEAD.
func ExampleFetcher_ReadFile() {
	f := &git.Fetcher{}
	data, err := f.ReadFile(context.Background(), "https://example.com/my-index.git", "config.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("%s\n", data)
}
