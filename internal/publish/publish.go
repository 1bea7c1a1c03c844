// Package publish writes a file or a directory tree where readers will
// find it only once it is complete: the content is written under a
// temporary name beside the destination (".NAME.cargohash-tmp-RANDOM", same
// directory, so same file system) and renamed into place when the writer
// returns without error. It is the one home of that policy in cargohash
// (cmd/go's renameio and modfetch's "write temp, sync, verify, rename" are
// the model).
//
// The policy, for File and Dir alike:
//   - On any error, and when ctx is cancelled before the rename, the
//     temporary name is removed and the destination is untouched.
//   - A file's bytes are synced before the rename (unless Options.NoSync); a directory tree is not
//     (it is regenerated from its inputs, and syncing thousands of files
//     costs more than it protects).
//   - An existing destination is replaced only when the caller's rule allows
//     it (Options), and never followed: a symlink at the destination, or a
//     file where a directory belongs or the reverse, is refused with a
//     *RefusedError naming what is there. A replaced directory is first
//     renamed aside (".NAME.cargohash-old-RANDOM"), the new one renamed into place,
//     then the old one removed without following its symlinks: a failure
//     midway leaves the old tree or the new one, never neither.
//   - A missing parent directory is refused, not created, unless
//     Options.MakeParents says so.
//
// The package imports only the standard library. It does not know what a
// vendor tree is: the caller's Options.Own recognises its own earlier
// output.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options is what a writer allows at its destination.
type Options struct {
	// Own, for Dir, reports whether the existing non-empty directory dir
	// is the writer's own earlier output, which may be replaced: it returns
	// "" if so, else the first entry (relative to dir, '/'-separated) that
	// the writer would not have written. With Own nil only an empty
	// directory may be replaced. For File, it reports whether the existing
	// regular file is the writer's own earlier output: "" if so, else what
	// the file is ("a file that is not a vendor tarball"). With Own nil any
	// regular file is replaced.
	Own func(dir string) (foreign string, err error)
	// Keep lists paths that must survive the write: the destination may be
	// none of them and no directory holding one (the lock, the input tree).
	// The working directory is always kept.
	Keep []string
	// MakeParents creates missing parent directories (mode 0755) instead of
	// refusing (caches; never a user's --out).
	MakeParents bool
	// What names the destination's kind in refusals ("a vendor tree").
	What string
	// NoSync skips File's sync before the rename: for a cache whose every
	// read re-verifies the bytes (the crate store), where a file a crash
	// left torn is found and fetched again, and a sync per file costs more
	// than it protects.
	NoSync bool
	// Stamp, for Dir, sets the modification time of every directory and
	// regular file of the finished tree to StampTime before the rename (as
	// the Nix store does), so that Own can later tell the writer's own
	// entries from those a user added or edited since (Changed): a marker
	// that adds no file to the tree.
	Stamp bool
}

// RefusedError says why a destination was left alone and what to do.
type RefusedError struct {
	Path   string // the destination as the caller gave it
	Reason string // what is there, e.g. "it holds notes.txt, which is not part of a vendor tree"
	Hint   string // what to do instead
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to write %s: %s; %s", e.Path, e.Reason, e.Hint)
}

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = errors.New("destination refused")

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// File writes the file path: write fills a temporary file beside it, which
// is synced, given mode perm (not masked by the umask) and renamed to path.
// An existing regular file at path is replaced atomically if opts.Own has
// it for the writer's own (or there is no Own); anything else there is
// refused (CheckFile).
func File(ctx context.Context, path string, perm fs.FileMode, opts Options, write func(w io.Writer) error) (err error) {
	abs, err := prepare(path, opts, CheckFile)
	if err != nil {
		return err
	}
	f, err := createTemp(abs)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if !opts.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckFile(path, opts); err != nil { // it may have changed while we wrote
		return err
	}
	return os.Rename(f.Name(), abs)
}

// Dir builds the directory path: build fills an empty temporary directory
// (mode 0755) beside it, which is renamed to path when build returns nil.
// An existing directory at path is replaced only if it is empty or opts.Own
// recognises it; anything else is refused (CheckDir), before build runs
// and again just before the rename.
func Dir(ctx context.Context, path string, opts Options, build func(tmp string) error) (err error) {
	abs, err := prepare(path, opts, CheckDir)
	if err != nil {
		return err
	}
	tmp, release, err := TempDir(abs, "tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
		release()
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := build(tmp); err != nil {
		return err
	}
	if opts.Stamp {
		if err := stamp(ctx, tmp); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckDir(path, opts); err != nil { // it may have changed while we built
		return err
	}
	return swap(tmp, abs)
}

// prepare checks path with check and makes its parents if opts says so; it
// returns path made absolute.
func prepare(path string, opts Options, check func(string, Options) error) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if opts.MakeParents {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return "", err
		}
	}
	return abs, check(path, opts)
}

// swap renames tmp to dst; an existing dst is renamed aside first and
// removed once tmp is in place, or renamed back if that fails.
func swap(tmp, dst string) error {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dst)
	}
	old, release, err := TempDir(dst, "old")
	if err != nil {
		return err
	}
	defer release()
	aside := filepath.Join(old, "previous")
	if err := os.Rename(dst, aside); err != nil {
		os.Remove(old)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if rerr := os.Rename(aside, dst); rerr == nil {
			os.Remove(old)
		}
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing the previous %s: %w", dst, err)
	}
	return nil
}

// CheckDir reports, as a *RefusedError, why Dir would refuse path; nil
// means path does not exist (in an existing directory) or may be replaced.
// Run it before expensive work so that a refusal costs nothing.
func CheckDir(path string, opts Options) error {
	fi, abs, err := checkParent(path, opts, "directory")
	if err != nil || fi == nil {
		return err
	}
	hint := "choose a new or empty directory, or move it away yourself"
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &RefusedError{path, "it is a symbolic link" + linkTarget(abs) + ", not a directory", "give the directory itself, or a new path"}
	case !fi.IsDir():
		return &RefusedError{path, "it is a file, not a directory", hint}
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	foreign := ""
	if len(entries) > 0 {
		foreign = entries[0].Name()
		if opts.Own != nil {
			if foreign, err = opts.Own(abs); err != nil {
				return err
			}
		}
	}
	what := opts.What
	if what == "" {
		what = "this output"
	}
	if reason, child := kept(abs, fi, opts.Keep); reason != "" {
		switch {
		case foreign == "" || foreign == child:
		case child == "":
			reason += fmt.Sprintf(", which holds %s (not part of %s)", foreign, what)
		default:
			reason += fmt.Sprintf(" and %s, which is not part of %s", foreign, what)
		}
		return &RefusedError{path, reason, "choose a new directory, e.g. ./vendor"}
	}
	if foreign != "" {
		return &RefusedError{path, fmt.Sprintf("it holds %s, which is not part of %s", foreign, what), hint}
	}
	return nil
}

// CheckFile reports, as a *RefusedError, why File would refuse path; nil
// means path does not exist (in an existing directory) or is a regular
// file, which File replaces.
func CheckFile(path string, opts Options) error {
	fi, abs, err := checkParent(path, opts, "file")
	if err != nil || fi == nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &RefusedError{path, "it is a symbolic link" + linkTarget(abs) + ", not a file", "give the file's own path, or a new one"}
	case fi.IsDir():
		return &RefusedError{path, "it is a directory, not a file", "give a file name, e.g. " + filepath.Join(path, "vendor.tar.gz")}
	case !fi.Mode().IsRegular():
		return &RefusedError{path, "it is not a regular file", "give a new file name"}
	}
	for _, k := range opts.Keep {
		if kfi, err := os.Stat(k); err == nil && os.SameFile(fi, kfi) {
			return &RefusedError{path, "it is the input " + k, "give a new file name"}
		}
	}
	if opts.Own != nil {
		what, err := opts.Own(abs)
		if err != nil {
			return err
		}
		if what != "" {
			return &RefusedError{path, "it is " + what, "give a new file name, or move it away yourself"}
		}
	}
	return nil
}

// checkParent checks that path's parent is a directory and returns path's
// Lstat (nil if it does not exist) and its absolute form.
func checkParent(path string, opts Options, kind string) (fs.FileInfo, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	if filepath.Dir(abs) == abs {
		return nil, "", &RefusedError{path, "it is the root directory", "choose a new " + kind}
	}
	pfi, err := os.Stat(filepath.Dir(abs))
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.MakeParents:
		return nil, abs, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", &RefusedError{path, "its parent directory " + filepath.Dir(path) + " does not exist", "create it first"}
	case err != nil:
		return nil, "", err
	case !pfi.IsDir():
		return nil, "", &RefusedError{path, "its parent " + filepath.Dir(path) + " is not a directory", "choose a path in a directory"}
	}
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, abs, nil
	} else if err != nil {
		return nil, "", err
	}
	return fi, abs, nil
}

// kept says why the directory abs (whose Lstat is fi) must stay: it is the
// working directory or a kept path, or holds one at any depth (then child
// is its entry on the way there). "" means it may go.
func kept(abs string, fi fs.FileInfo, keep []string) (reason, child string) {
	wd, err := os.Getwd()
	if err != nil {
		return "the working directory is unknown (" + err.Error() + ")", ""
	}
	for i, k := range append([]string{wd}, keep...) {
		kabs, err := filepath.Abs(k)
		if _, lerr := os.Lstat(kabs); err != nil || lerr != nil {
			continue // what does not exist cannot be lost
		}
		if real, err := filepath.EvalSymlinks(kabs); err == nil {
			kabs = real
		}
		name := "the input " + k
		if i == 0 {
			name = "the working directory"
		}
		child := ""
		for p := kabs; ; p = filepath.Dir(p) {
			if pfi, err := os.Stat(p); err == nil && os.SameFile(fi, pfi) {
				if child == "" {
					return "it is " + name, ""
				}
				return "it holds " + name, child
			}
			if filepath.Dir(p) == p {
				break
			}
			child = filepath.Base(p)
		}
	}
	return "", ""
}

func linkTarget(path string) string {
	if t, err := os.Readlink(path); err == nil {
		return " to " + t
	}
	return ""
}
