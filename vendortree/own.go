package vendortree

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/lockfile"
)

// Where a tree may be written (SPEC §1, output safety): a new path, an
// empty directory, or cargohash's own earlier output of the same kind,
// recognised by its shape alone. No marker file is written: a marker inside
// a staging tree would change its NAR hash (the cargoHash), and one inside
// a vendor tree would be a file nixpkgs and cargo do not write. The shape
// test looks at the top two levels, which is where a user's own files end
// up (`notes.txt` beside the crates, a project's `src/`). Below them, a
// tree is ours only if every directory and regular file still has the
// modification time publish.Stamp gave it when it was written: a file
// edited in place (a patched crate) or added to a crate directory, even
// one cargo itself would overwrite, is the user's, and the tree is refused.
// A cargo-layout crate directory without the stamp (written by `cargo
// vendor`, or checked out from version control) is ours too if it holds
// exactly the files its .cargo-checksum.json lists, with those hashes.

// StagingDest is the publish policy of a staging tree (SPEC §3): an
// existing directory is replaced only if it holds Cargo.lock and nothing
// but tarballs/*.tar.gz files and git/COMMIT directories besides. keep
// lists inputs that must survive (the lock).
func StagingDest(keep ...string) publish.Options {
	return publish.Options{Own: unchanged(ownStaging, false), Keep: keep, What: "a staging tree", Stamp: true}
}

// Dest is the publish policy of a vendor tree in layout: an existing
// directory is replaced only if it has that layout's shape (nixpkgs:
// Cargo.lock, .cargo/config.toml and source-*/CRATE; cargo: CRATE
// directories only), every crate directory holding .cargo-checksum.json.
func Dest(layout Kind, keep ...string) publish.Options {
	shape := func(dir string) (string, error) { return ownVendor(dir, layout) }
	return publish.Options{Own: unchanged(shape, layout == Cargo), Keep: keep, What: "a " + layout.String() + " vendor tree", Stamp: true}
}

// unchanged extends the shape test own with publish.Changed: the first
// entry that changed since cargohash wrote it is foreign. With checksums
// (the cargo layout) a changed crate directory is still ours if it holds
// exactly the files its .cargo-checksum.json lists, with those sha256s;
// if not, the first file that differs is named.
func unchanged(own func(dir string) (string, error), checksums bool) func(string) (string, error) {
	return func(dir string) (string, error) {
		foreign, err := own(dir)
		if foreign != "" || err != nil {
			return foreign, err
		}
		var skip func(string, fs.FileInfo) (bool, error)
		bad := map[string]string{} // crate dir -> the first file not as listed, "" if all are
		if checksums {
			skip = func(rel string, _ fs.FileInfo) (bool, error) {
				crate, _, _ := strings.Cut(rel, "/")
				b, done := bad[crate]
				if !done {
					var err error
					if b, err = unlisted(filepath.Join(dir, crate)); err != nil {
						return false, err
					}
					bad[crate] = b
				}
				return b == "", nil
			}
		}
		changed, err := publish.Changed(dir, skip)
		if changed == "" || err != nil {
			return "", err
		}
		crate, _, _ := strings.Cut(changed, "/")
		if b := bad[crate]; b != "" {
			return crate + "/" + b + " (not as its " + ChecksumFile + " lists)", nil
		}
		return changed + " (changed after cargohash wrote it)", nil
	}
}

// unlisted returns the first file of the crate directory dir that is not
// exactly as its .cargo-checksum.json lists (an extra file, another sha256,
// or a listed file that is missing), or "" if all are.
func unlisted(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ChecksumFile))
	if err != nil {
		return ChecksumFile, nil
	}
	sum, err := ParseChecksum(data)
	if err != nil {
		return ChecksumFile, nil
	}
	seen := 0
	first := ""
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ChecksumFile {
			return nil
		}
		want, listed := sum.Files[rel]
		got := ""
		if listed {
			got, _ = sha256File(p) // a dangling or unreadable entry does not match
		}
		if !listed || got != want {
			first = rel
			return filepath.SkipAll
		}
		seen++
		return nil
	})
	if err != nil || first != "" {
		return first, err
	}
	if seen != len(sum.Files) {
		for _, f := range slices.Sorted(maps.Keys(sum.Files)) {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
				return f + " (missing)", nil
			}
		}
	}
	return "", nil
}

func ownStaging(dir string) (string, error) {
	return ownEntries(dir, true, func(name string, d fs.DirEntry) (string, error) {
		switch {
		case name == "Cargo.lock":
			return isFile(d, name)
		case name == StagingTarballs && d.IsDir():
			return under(name)(ownEntries(filepath.Join(dir, name), false, func(n string, e fs.DirEntry) (string, error) {
				if !strings.HasSuffix(n, ".tar.gz") {
					return n, nil
				}
				return isFile(e, n)
			}))
		case name == StagingGit && d.IsDir():
			return under(name)(ownEntries(filepath.Join(dir, name), false, func(n string, e fs.DirEntry) (string, error) {
				if !e.IsDir() || !lockfile.IsCommitID(n) {
					return n, nil
				}
				return "", nil
			}))
		}
		return name, nil
	})
}

func ownVendor(dir string, layout Kind) (string, error) {
	crates := func(sub string) (string, error) {
		return under(sub)(ownEntries(filepath.Join(dir, sub), false, func(n string, e fs.DirEntry) (string, error) {
			return isCrate(filepath.Join(dir, sub), n, e)
		}))
	}
	if layout == Cargo {
		return ownEntries(dir, false, func(name string, d fs.DirEntry) (string, error) {
			return isCrate(dir, name, d)
		})
	}
	return ownEntries(dir, true, func(name string, d fs.DirEntry) (string, error) {
		switch {
		case name == "Cargo.lock":
			return isFile(d, name)
		case name == ".cargo" && d.IsDir():
			return under(name)(ownEntries(filepath.Join(dir, name), false, func(n string, e fs.DirEntry) (string, error) {
				if n != "config.toml" {
					return n, nil
				}
				return isFile(e, n)
			}))
		case (name == registryDir || strings.HasPrefix(name, gitDirPrefix)) && d.IsDir():
			return crates(name)
		}
		return name, nil
	})
}

// ownEntries calls own for each entry of dir (sorted) and returns the
// first foreign entry it names (a path relative to dir). needLock also
// requires a Cargo.lock.
func ownEntries(dir string, needLock bool, own func(name string, d fs.DirEntry) (string, error)) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	hasLock := false
	for _, e := range entries {
		hasLock = hasLock || e.Name() == "Cargo.lock"
		foreign, err := own(e.Name(), e)
		if err != nil {
			return "", err
		}
		if foreign != "" {
			return foreign, nil
		}
	}
	if needLock && !hasLock && len(entries) > 0 {
		return entries[0].Name() + " (without Cargo.lock)", nil
	}
	return "", nil
}

func isFile(d fs.DirEntry, name string) (string, error) {
	if !d.Type().IsRegular() {
		return name, nil
	}
	return "", nil
}

// isCrate: a crate directory holds a regular .cargo-checksum.json.
func isCrate(parent, name string, d fs.DirEntry) (string, error) {
	if !d.IsDir() || strings.HasPrefix(name, ".") {
		return name, nil
	}
	fi, err := os.Lstat(filepath.Join(parent, name, ChecksumFile))
	if errors.Is(err, fs.ErrNotExist) {
		return name, nil // a directory, not a crate
	} else if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return path.Join(name, ChecksumFile), nil
	}
	return "", nil
}

// under prefixes a foreign entry found in the subdirectory dir with dir/.
func under(dir string) func(string, error) (string, error) {
	return func(foreign string, err error) (string, error) {
		if foreign == "" || err != nil {
			return foreign, err
		}
		return dir + "/" + foreign, nil
	}
}
