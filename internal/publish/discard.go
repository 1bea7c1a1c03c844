package publish

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Discard removes path, a file or a tree of a cache that was found
// damaged, the way swap removes a replaced tree: one rename moves it aside
// (".BASE.cargohash-old-RANDOM/previous", same directory), then the aside is removed.
// Readers never see it half removed, and a process killed midway leaves
// path free for the next writer. A path that is already gone is no error
// (another process may have discarded it first).
func Discard(path string) error {
	old, release, err := TempDir(path, "old")
	if err != nil {
		return err
	}
	defer release()
	if err := os.Rename(path, filepath.Join(old, "previous")); err != nil {
		os.Remove(old)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.RemoveAll(old)
}

// makeDirMu serializes MakeDir within the process, so that of two callers
// finding the same damage one replaces it and the other finds a directory.
var makeDirMu sync.Mutex

// MakeDir makes the directory dir, and its parents, for a cache that is
// cargohash's alone. Something else in its place (a file or a dangling
// symlink: damage) is removed first and reported to damaged, once. Only
// that is removed: os.Remove never takes a directory with entries, so a
// directory that another process makes meanwhile, and fills, stays.
func MakeDir(dir string, damaged func()) error {
	makeDirMu.Lock()
	defer makeDirMu.Unlock()
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		return nil
	}
	if fi, lerr := os.Lstat(dir); lerr != nil || fi.IsDir() {
		return err
	}
	damaged()
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if fi, lerr := os.Lstat(dir); lerr == nil && fi.IsDir() {
			return nil // another process replaced it first
		}
		return err
	}
	return os.MkdirAll(dir, 0o755)
}
