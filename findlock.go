package cargohash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FindLock finds the lock of path as cargo finds a workspace's: path itself
// when it is a file, else the Cargo.lock of the directory path or of the
// nearest of its parents that has one. It returns the file's path: relative
// when path is and the lock is in path, absolute when found in a parent.
// When there is none, the error wraps ErrNoLock, except for a project
// (path holds a Cargo.toml), whose own Cargo.lock is returned for LoadLock
// to say that it has none yet.
func FindLock(path string) (string, error) {
	if path == "" {
		path = "."
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return path, nil // LoadLock names a missing file
	}
	here := filepath.Join(path, "Cargo.lock")
	if _, err := os.Lstat(here); !errors.Is(err, fs.ErrNotExist) {
		return here, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		lock := filepath.Join(dir, "Cargo.lock")
		if _, err := os.Lstat(lock); !errors.Is(err, fs.ErrNotExist) {
			return lock, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if _, err := os.Lstat(filepath.Join(path, "Cargo.toml")); err == nil {
		return here, nil // LoadLock says that the project has no lock yet
	}
	return "", fmt.Errorf("%w in %s or any directory above it; run 'cargo generate-lockfile' in the project to make one", ErrNoLock, abs)
}
