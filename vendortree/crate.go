package vendortree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// crateWriter is where a crate is built: a directory on disk (diskCrate,
// for FromStaging) or an image in memory (memCrate, for FS). Unpacking,
// the git copy rules and the checksum files are written once, against this
// interface. Paths are relative to the crate, '/'-separated; every method
// behaves as the os.Root method of the same name does, errors included, so
// both targets accept and refuse the same crates with the same messages.
type crateWriter interface {
	MkdirAll(rel string) error
	Lstat(rel string) (fs.FileInfo, error)
	// Stat follows symlinks, never out of the crate.
	Stat(rel string) (fs.FileInfo, error)
	Readlink(rel string) (string, error)
	Remove(rel string) error
	Symlink(target, rel string) error
	// Create makes a new file (O_EXCL) of exactly perm that will hold
	// size bytes.
	Create(rel string, perm fs.FileMode, size int64) (io.WriteCloser, error)
	Open(rel string) (io.ReadCloser, error)
	// Link adds the file src from disk (a git checkout) at rel with perm:
	// copied on disk, referenced in memory. It returns the sha256 of the
	// content when hash is set.
	Link(rel, src string, perm fs.FileMode, hash bool) (string, error)
}

// diskCrate writes a crate into a directory through an os.Root.
type diskCrate struct {
	root *os.Root
	buf  []byte
	// made and dirs spare most files of a crate the path walk os.Root
	// does per call (an openat per component, a mkdirat per parent):
	// directories already made, and directories already opened as roots.
	made map[string]bool
	dirs map[string]*os.Root
}

// createDiskCrate makes the empty directory dst and a crate writer into it;
// close it when done.
func createDiskCrate(dst string) (*diskCrate, error) {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return nil, err
	}
	return &diskCrate{root: root, made: map[string]bool{}, dirs: map[string]*os.Root{}}, nil
}

// close releases the crate's root and the directories opened under it.
func (d *diskCrate) close() {
	for _, r := range d.dirs {
		r.Close()
	}
	d.root.Close()
}

func (d *diskCrate) MkdirAll(rel string) error {
	if d.made[rel] {
		return nil
	}
	if err := d.root.MkdirAll(rel, 0o755); err != nil {
		return err
	}
	d.made[rel] = true
	return nil
}
func (d *diskCrate) Lstat(rel string) (fs.FileInfo, error) {
	r, name, err := d.at(rel)
	if err != nil {
		return d.root.Lstat(rel) // os.Root's own error for the path
	}
	return r.Lstat(name)
}
func (d *diskCrate) Stat(rel string) (fs.FileInfo, error) { return d.root.Stat(rel) }
func (d *diskCrate) Readlink(rel string) (string, error)  { return d.root.Readlink(rel) }
func (d *diskCrate) Remove(rel string) error {
	r, name, err := d.at(rel)
	if err != nil {
		return d.root.Remove(rel)
	}
	return r.Remove(name)
}
func (d *diskCrate) Symlink(target, rel string) error       { return d.root.Symlink(target, rel) }
func (d *diskCrate) Open(rel string) (io.ReadCloser, error) { return d.root.Open(rel) }

// at returns the root of rel's directory, opened once per crate, and rel's
// last component. On error callers fall back to the crate's root, whose
// errors name the path as the in-memory crate's do. Directories are never removed or replaced while a crate
// is written (replaceable refuses it), so a cached root stays valid.
func (d *diskCrate) at(rel string) (*os.Root, string, error) {
	dir, name := path.Split(rel)
	if dir == "" {
		return d.root, name, nil
	}
	dir = strings.TrimSuffix(dir, "/")
	if r := d.dirs[dir]; r != nil {
		return r, name, nil
	}
	r, err := d.root.OpenRoot(dir)
	if err != nil {
		return nil, "", err
	}
	d.dirs[dir] = r
	return r, name, nil
}

func (d *diskCrate) Create(rel string, perm fs.FileMode, _ int64) (io.WriteCloser, error) {
	r, name, err := d.at(rel)
	if err != nil {
		r, name = d.root, rel // os.Root's own error for the path
	}
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &diskFile{f, perm}, nil
}

// diskFile sets its exact mode, whatever the umask, when closed.
type diskFile struct {
	*os.File
	perm fs.FileMode
}

func (f *diskFile) Close() error {
	err := f.Chmod(f.perm)
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *diskCrate) Link(rel, src string, perm fs.FileMode, hash bool) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := d.Create(rel, perm, 0)
	if err != nil {
		return "", err
	}
	if d.buf == nil {
		d.buf = make([]byte, 128<<10)
	}
	var w io.Writer = out
	h := sha256.New()
	if hash {
		w = io.MultiWriter(out, h)
	}
	_, err = io.CopyBuffer(w, in, d.buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || !hash {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeCrateFile writes a whole small file (a checksum file, a rewritten
// manifest) into the crate.
func writeCrateFile(w crateWriter, rel string, data []byte, perm fs.FileMode) error {
	f, err := w.Create(rel, perm, int64(len(data)))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readCrateFile(w crateWriter, rel string) ([]byte, error) {
	f, err := w.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// removeIfExists removes rel unless it does not exist.
func removeIfExists(w crateWriter, rel string) error {
	if err := w.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
