// Package cargohash turns a Cargo.lock into what Nix packagers pin: the
// fetchCargoVendor cargoHash, importCargoLock outputHashes, vendor trees and
// vendor tarballs. It is the one place that orchestrates the format packages
// (hash/…), the lock reader (lockfile), the downloaders (fetch, fetch/git),
// the vendorer (vendortree) and the checker (check); the cargohash command
// only parses flags and prints what this package returns.
package cargohash

import (
	"context"
	"errors"

	"github.com/cargohash/cargohash/hash/nar"
	"github.com/cargohash/cargohash/hash/nixhash"
)

// Version is cargohash's version, sent in the User-Agent of every request.
const Version = "0.1.0"

// ErrMismatch marks a failed check: a hash or a lock that is not what was
// expected. The command exits 1 on it.
var ErrMismatch = errors.New("mismatch")

// HashPath returns the NAR hash of the file, symlink or directory at path,
// as `nix hash path --type ALGO path` prints it; it stops with ctx's error
// when ctx ends.
func HashPath(ctx context.Context, path string, algo nixhash.Algorithm) (nixhash.Hash, error) {
	h := algo.New()
	if err := nar.Dump(ctx, h, path); err != nil {
		return nixhash.Hash{}, err
	}
	return nixhash.Sum(algo, h), nil
}
