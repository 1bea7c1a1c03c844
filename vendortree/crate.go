package vendortree

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// writeCrate writes the crate built in m into dst, a new directory: the
// one way a built crate reaches the disk (vendor trees, source archives).
// m was built under the unpacking rules, so its entries are plain names
// whose symlinks are never followed here; every entry is made relative to
// a descriptor of its directory (openat, mkdirat, symlinkat, with
// O_NOFOLLOW and O_EXCL), without a path walk. Files get exactly their
// mode, directories 0755 less the umask, as mkdir gives them.
//
// Not through os.Root, which did the same but registered every file it
// created with the network poller: five wasted syscalls per file, 40 % of
// the syscalls of a vendor tree (see internal/osfile).
func writeCrate(dst string, m *memCrate) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	dir, err := openDir(unix.AT_FDCWD, dst, dst)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return writeDir(dir, dst, m.root, make([]byte, 128<<10))
}

// openDir opens the directory name in dir (a descriptor, or AT_FDCWD),
// not following a symlink; path names it in errors.
func openDir(dir int, name, path string) (int, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// writeDir writes the entries of d into the directory dir (a descriptor;
// path names it in errors).
func writeDir(dir int, path string, d *node, buf []byte) error {
	for _, name := range slices.Sorted(maps.Keys(d.kids)) {
		c := d.kids[name]
		p := filepath.Join(path, name)
		var err error
		switch {
		case c.isDir():
			err = writeSubdir(dir, name, p, c, buf)
		case c.isSymlink():
			if err = unix.Symlinkat(c.target, dir, name); err != nil {
				err = &os.LinkError{Op: "symlink", Old: c.target, New: p, Err: err}
			}
		default:
			err = writeNodeFile(dir, name, p, c, buf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeSubdir(dir int, name, path string, d *node, buf []byte) error {
	if err := unix.Mkdirat(dir, name, 0o755); err != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: err}
	}
	sub, err := openDir(dir, name, path)
	if err != nil {
		return err
	}
	defer unix.Close(sub)
	return writeDir(sub, path, d, buf)
}

// writeNodeFile writes the file n as name in dir, with exactly n's mode
// whatever the umask.
func writeNodeFile(dir int, name, path string, n *node, buf []byte) (err error) {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(n.mode.Perm()))
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if n.src == "" {
		_, err = f.Write(n.data)
	} else {
		err = copySrc(f, n, buf)
	}
	if err != nil {
		return err
	}
	return f.Chmod(n.mode.Perm())
}

// copySrc copies the content of n from its file on disk, which must
// still have the size it had when the crate was built.
func copySrc(w io.Writer, n *node, buf []byte) error {
	in, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer in.Close()
	got, err := io.CopyBuffer(w, io.LimitReader(in, n.size+1), buf)
	if err == nil && got != n.size {
		err = &fs.PathError{Op: "copy", Path: n.src, Err: errors.New("changed size while the crate was written")}
	}
	return err
}

// writeCrateFile writes a whole small file (a checksum file, a rewritten
// manifest) into the crate.
func writeCrateFile(m *memCrate, rel string, data []byte, perm fs.FileMode) error {
	f, err := m.Create(rel, perm, int64(len(data)))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readCrateFile(m *memCrate, rel string) ([]byte, error) {
	f, err := m.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// removeIfExists removes rel unless it does not exist.
func removeIfExists(m *memCrate, rel string) error {
	if err := m.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
