package publish

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
