package nar

import (
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// tree is what the dumper reads: an fs.FS, or the disk through plain system
// calls. Names are slash-separated and relative to the tree's root.
type tree interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
	ReadDir(name string) ([]dirEntry, error) // sorted by name, bytewise
	// Open opens a regular file without following a symlink.
	Open(name string) (fs.File, error)
}

// dirEntry is a directory entry: its name and its type bits.
type dirEntry struct {
	name string
	typ  fs.FileMode
}

func entries(des []fs.DirEntry) []dirEntry {
	es := make([]dirEntry, len(des))
	for i, de := range des {
		es[i] = dirEntry{de.Name(), de.Type()}
	}
	return es
}

type fsTree struct{ fsys fs.FS }

func (t fsTree) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(t.fsys, name) }
func (t fsTree) ReadLink(name string) (string, error)   { return fs.ReadLink(t.fsys, name) }
func (t fsTree) ReadDir(name string) ([]dirEntry, error) {
	des, err := fs.ReadDir(t.fsys, name)
	return entries(des), err
}
func (t fsTree) Open(name string) (fs.File, error) { return t.fsys.Open(name) }

// diskTree is a directory on disk. Its files are opened with open(2) and
// read with read(2) directly: os.Open would also register each one with the
// runtime's poller, a wasted system call per file. Its methods may run
// concurrently, except ReadDir with itself: it reuses one buffer.
type diskTree struct {
	dir    string
	dirBuf []byte // ReadDir's
}

func newDiskTree(dir string) *diskTree { return &diskTree{dir: dir} }

func (t *diskTree) path(name string) string { return t.dir + "/" + name } // names are clean

func (t *diskTree) Lstat(name string) (fs.FileInfo, error) {
	fi, err := os.Lstat(t.path(name))
	return fi, relative(err, name)
}

func (t *diskTree) ReadLink(name string) (string, error) {
	s, err := os.Readlink(t.path(name))
	return s, relative(err, name)
}

func (t *diskTree) ReadDir(name string) ([]dirEntry, error) { return t.readDir(name) }

// open opens name without following a symlink, without the poller.
func (t *diskTree) open(name string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(t.path(name), syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|flags, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

func (t *diskTree) Open(name string) (fs.File, error) {
	fd, err := t.open(name, syscall.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &rawFile{fd: fd, name: name}, nil
}

// join is path.Join for a clean name and an entry name.
func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// relative makes an error name the path relative to the tree, as fs.FS does.
func relative(err error, name string) error {
	if pe, ok := err.(*fs.PathError); ok {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// rawFile is an open file descriptor, read without the poller.
type rawFile struct {
	fd   int
	name string
}

func (f *rawFile) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(f.fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *rawFile) Close() error { return syscall.Close(f.fd) }

func (f *rawFile) Stat() (fs.FileInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.name, Err: err}
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	default:
		mode |= fs.ModeIrregular
	}
	return rawInfo{name: f.name, size: st.Size, mode: mode}, nil
}

type rawInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i rawInfo) Name() string       { return i.name }
func (i rawInfo) Size() int64        { return i.size }
func (i rawInfo) Mode() fs.FileMode  { return i.mode }
func (i rawInfo) ModTime() time.Time { return time.Time{} }
func (i rawInfo) IsDir() bool        { return i.mode.IsDir() }
func (i rawInfo) Sys() any           { return nil }
