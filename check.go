package cargohash

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cargohash/cargohash/check"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/lockfile"
)

// CheckHash runs `check LOCK --hash HASH`: it recomputes lock's cargoHash
// (Prefetch) and compares it with want (fake: "" or lib.fakeHash was given).
// On a mismatch, if the lock that produced want is in the known-locks store
// (see KnownLock), the changes from it to lock are listed.
func (s *Session) CheckHash(ctx context.Context, lock *lockfile.File, want nixhash.Hash, fake bool) (*check.Result, error) {
	res, err := s.Prefetch(ctx, lock)
	if err != nil {
		return nil, err
	}
	var known *lockfile.File
	if !fake && !want.Equal(res.CargoHash) {
		if known, err = s.KnownLock(want); err != nil {
			fmt.Fprintf(s.log, "warning: known locks: %v\n", err)
		}
	}
	r := check.Hash(lock, want, res.CargoHash, fake, known)
	r.Crates = res.Crates + res.GitSources
	return r, nil
}

// knownLocksDir is where Prefetch and Staging keep the locks they hashed,
// so that check can say what changed since: <cache>/locks/<hex of the
// cargoHash digest>.lock holds the bytes of the Cargo.lock it came from.
func knownLocksDir(cacheDir string) string { return filepath.Join(cacheDir, "locks") }

// KnownLock returns the Cargo.lock whose cargoHash was h, if this session's
// cache remembers one; nil and no error if not.
func (s *Session) KnownLock(h nixhash.Hash) (*lockfile.File, error) {
	if s.cacheDir == "" || h.IsZero() {
		return nil, nil
	}
	path := filepath.Join(knownLocksDir(s.cacheDir), hex.EncodeToString(h.Digest())+".lock")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	lf, err := lockfile.Parse(path, data)
	if err != nil {
		return nil, err
	}
	return &lockfile.File{Lockfile: lf, Path: path, Data: data, Mode: 0o644}, nil
}

// rememberLock starts storing lock in the known-locks store, where check
// finds it by its cargoHash (KnownLock); name, called once the command is
// over, names the entry after h, or drops it when h is zero (no result).
// The bytes are written and synced beside the store while the crates
// download, so that a rename is all that is left once the hash is known:
// the sync was the last 2 ms of a cold prefetch on ext4, more on slower
// disks. An entry already there is left as it is. Without a cache it does
// nothing; a store that cannot be written is a warning, only when there is
// something new to remember, and never an error of the command.
func (s *Session) rememberLock(lock *lockfile.File) (name func(h nixhash.Hash)) {
	if s.cacheDir == "" {
		return func(nixhash.Hash) {}
	}
	dir := knownLocksDir(s.cacheDir)
	var tmp *publish.Temp
	var err error
	written := make(chan struct{})
	go func() {
		defer close(written)
		tmp, err = writeKnownLock(dir, lock.Data)
	}()
	return func(h nixhash.Hash) {
		<-written
		if h.IsZero() {
			// The command failed: there is nothing to remember, and
			// nothing to say of a store that could not be written.
			if err == nil {
				tmp.Abort()
			}
			return
		}
		dst := filepath.Join(dir, hex.EncodeToString(h.Digest())+".lock")
		if err == nil {
			err = tmp.CommitNew(dst, 0o644)
		} else if _, serr := os.Lstat(dst); serr == nil {
			err = nil // already remembered, in a store that is read-only now
		}
		if err != nil {
			fmt.Fprintf(s.log, "warning: remembering %s: %v\n", lock.Path, err)
		}
	}
}

// writeKnownLock writes data to a temporary file of the known-locks store
// dir, synced, for rememberLock to name.
func writeKnownLock(dir string, data []byte) (*publish.Temp, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := publish.CreateTemp(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.Abort()
		return nil, err
	}
	return tmp, nil
}
