package publish

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StampTime is the modification time Options.Stamp gives a tree's
// directories and regular files: one second after the epoch, as in the Nix
// store. Editing a file, or adding, removing or renaming an entry of a
// directory, moves that file's or directory's time to the present, so an
// entry still at StampTime is as the writer left it. Symlinks are not
// stamped (their own time cannot be set portably, and following them
// could touch a file outside the tree): one cannot be changed in place,
// only replaced, which moves its directory's time.
var StampTime = time.Unix(1, 0)

// Stamped reports whether fi (from Lstat) is a directory or regular file
// with the stamp, or a symlink.
func Stamped(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return true
	}
	return fi.ModTime().Equal(StampTime)
}

// stamp sets the time of every directory and regular file below root, and
// of root itself, to StampTime.
func stamp(ctx context.Context, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		return os.Chtimes(p, StampTime, StampTime)
	})
}

// Changed returns the first entry below dir (relative to it,
// '/'-separated, in lexical walk order) that is not as a Stamp tree left
// it, or "" if there is none. For a changed directory it names the changed
// file inside it (an added or edited one) if there is one. skip, if not
// nil, is asked about each changed entry first: a true answer accepts it,
// and for a directory everything below it (the caller verified it another
// way).
func Changed(dir string, skip func(rel string, fi fs.FileInfo) (bool, error)) (string, error) {
	first := "" // a changed directory, while its entries are looked at
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if first != "" && !strings.HasPrefix(rel, first+"/") {
			return filepath.SkipAll // nothing changed inside it was found
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if Stamped(fi) {
			return nil
		}
		if skip != nil {
			ok, err := skip(rel, fi)
			if err != nil {
				return err
			}
			if ok {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		first = rel
		if d.IsDir() {
			return nil
		}
		return filepath.SkipAll
	})
	return first, err
}
