package cargohash

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// rememberLock stores lock under its cargoHash h in the known-locks store,
// atomically (temp file, rename). Without a cache it does nothing; a failure
// is a warning, never an error of the command.
func (s *Session) rememberLock(ctx context.Context, h nixhash.Hash, lock *lockfile.File) {
	if s.cacheDir == "" {
		return
	}
	if err := writeKnownLock(ctx, knownLocksDir(s.cacheDir), h, lock.Data); err != nil {
		fmt.Fprintf(s.log, "warning: remembering %s: %v\n", lock.Path, err)
	}
}

func writeKnownLock(ctx context.Context, dir string, h nixhash.Hash, data []byte) error {
	path := filepath.Join(dir, hex.EncodeToString(h.Digest())+".lock")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return publish.File(ctx, path, 0o644, publish.Options{MakeParents: true}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
