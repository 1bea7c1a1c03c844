package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// symlink: damage) is removed first and reported to damaged, once, but only
// in a cache directory (dir's parent) that is recognisably cargohash's
// (see ownCacheRoot); anywhere else it may be a user's file, and is an
// error. Only that is removed: os.Remove never takes a directory with
// entries, so a directory that another process makes meanwhile, and fills,
// stays. A cache directory that may be tagged is tagged on the way.
func MakeDir(dir string, damaged func()) error {
	makeDirMu.Lock()
	defer makeDirMu.Unlock()
	root := filepath.Dir(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o755)
	if err == nil || errors.Is(err, fs.ErrExist) && isDir(dir) {
		ownCacheRoot(root)
		return nil
	}
	if fi, lerr := os.Lstat(dir); lerr != nil || fi.IsDir() {
		return err
	}
	if !ownCacheRoot(root) {
		return fmt.Errorf("%s is not a directory, and %s is not only cargohash's cache (no %s of its own): move it away, or choose another cache directory", dir, root, CacheTag)
	}
	damaged()
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if isDir(dir) {
			return nil // another process replaced it first
		}
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// isDir reports whether path is a directory or a symlink to one (a cache
// directory moved to another disk), as os.MkdirAll takes it.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// CacheTag is the file that marks a cache directory as cargohash's
// (https://bford.info/cachedir/: backup tools skip the directory too).
const CacheTag = "CACHEDIR.TAG"

const cacheTagText = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file is a cache directory tag created by cargohash.\n" +
	"# For information about cache directory tags, see https://bford.info/cachedir/\n"

// cacheNames are the entries cargohash makes in a cache directory.
var cacheNames = map[string]bool{"crates": true, "packs": true, "locks": true, "git": true, CacheTag: true}

// ownCacheRoot reports whether root is recognisably cargohash's cache
// directory: it holds cargohash's CacheTag, or it is tagged now because it
// holds nothing but cargohash's directories and temporary names (a cache
// made before the tag, or a new one). A directory that also holds other
// things, or a file where cargohash keeps a directory, is not: what is in
// it may be a user's.
func ownCacheRoot(root string) bool {
	tag := filepath.Join(root, CacheTag)
	if b, err := os.ReadFile(tag); err == nil {
		return string(b) == cacheTagText
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range entries {
		name := e.Name()
		if !(cacheNames[name] && e.IsDir()) && !IsTemp(name) {
			return false
		}
	}
	return File(context.Background(), tag, 0o644, Options{}, func(w io.Writer) error {
		_, err := io.WriteString(w, cacheTagText)
		return err
	}) == nil
}
