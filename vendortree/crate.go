package vendortree

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
)

// writeCrate writes the crate built in m into dst, a new directory: the
// one way a built crate reaches the disk (vendor trees, source archives).
// m was built under the unpacking rules, so its entries are plain names
// whose symlinks are never followed here; every entry is made through an
// os.Root of its directory, without a path walk. Files get exactly their
// mode, directories 0755 less the umask, as mkdir gives them.
func writeCrate(dst string, m *memCrate) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	return writeDir(root, m.root, make([]byte, 128<<10))
}

func writeDir(dir *os.Root, d *node, buf []byte) error {
	for _, name := range slices.Sorted(maps.Keys(d.kids)) {
		c := d.kids[name]
		var err error
		switch {
		case c.isDir():
			err = writeSubdir(dir, name, c, buf)
		case c.isSymlink():
			err = dir.Symlink(c.target, name)
		default:
			err = writeNodeFile(dir, name, c, buf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeSubdir(dir *os.Root, name string, d *node, buf []byte) error {
	if err := dir.Mkdir(name, 0o755); err != nil {
		return err
	}
	sub, err := dir.OpenRoot(name)
	if err != nil {
		return err
	}
	defer sub.Close()
	return writeDir(sub, d, buf)
}

// writeNodeFile writes the file n as name in dir, with exactly n's mode
// whatever the umask.
func writeNodeFile(dir *os.Root, name string, n *node, buf []byte) (err error) {
	f, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, n.mode.Perm())
	if err != nil {
		return err
	}
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
