package vendortree

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one entry of a tree held in memory, built (memCrate) or read
// back (Tree): a directory, a symlink, a regular file whose bytes are in
// data or in the file src on disk, or (read back) anything else, with
// fs.ModeIrregular.
type node struct {
	mode   fs.FileMode // type bits and permissions
	kids   map[string]*node
	target string // symlink
	data   []byte
	src    string // file content on disk (git checkouts, spilled crates, trees read back)
	size   int64  // of src
	sum    string // Tree: sha256 hex of the content, once known
	crate  int    // FS skeleton only: 1 + index of the crate mounted here
}

func newDir() *node { return &node{mode: fs.ModeDir | 0o755, kids: map[string]*node{}} }

func (n *node) isDir() bool     { return n.mode.IsDir() }
func (n *node) isSymlink() bool { return n.mode&fs.ModeSymlink != 0 }

// fileSize is a file's size, or a symlink's: its target's length, as
// Lstat says on Linux.
func (n *node) fileSize() int64 {
	if n.isSymlink() {
		return int64(len(n.target))
	}
	if n.src != "" {
		return n.size
	}
	return int64(len(n.data))
}

// child is the entry name of the directory n; "." is n itself.
func (n *node) child(name string) *node {
	if name == "." {
		return n
	}
	return n.kids[name]
}

// info is a node's fs.FileInfo.
type info struct {
	name string
	n    *node
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.n.fileSize() }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.n.isDir() }
func (i info) Sys() any           { return nil }

// MaxMemCrate is the most file content a crate holds in memory while it
// is built, written or archived; the files it makes past that wait in
// temporary files (Options.SpillDir).
const MaxMemCrate = 64 << 20

// memCrate is the one model of a crate being built: an image in memory
// that the extractor, the git copier and the checksum writers build
// once, then writeCrate puts on disk or FS serves to the tar writer. Its
// methods follow os.Root's path resolution (os/root_openat.go, doInRoot)
// step by step, so that symlinks, "..", missing and non-directory
// components fail or succeed as they would on disk, with the same errors.
//
// File content is held in memory up to limit bytes per crate; the files
// created past that are written to temporary files in a directory made
// under spillParent ("" means os.TempDir()), removed by release. Git
// files are never copied: they are referenced in their checkout.
//
// A crate that is written and then released (writeCrate) carves its small
// files from slabs it returns to a pool when released, so that crate after
// crate reuses the same memory instead of zeroing and collecting new
// buffers; a crate FS serves allocates its own, which the open files may
// still read after the crate was dropped.
type memCrate struct {
	root        *node
	used        int64
	limit       int64
	spillParent string
	spill       string // the directory of spilled files, once made

	reuse bool      // carve small files from pooled slabs
	slabs []*[]byte // taken from slabPool, returned by release
	free  []byte    // the unused tail of the last slab
}

func newMemCrate(limit int64, spillParent string) *memCrate {
	return &memCrate{root: newDir(), limit: limit, spillParent: spillParent}
}

// release removes the crate's spilled files and returns its slabs: call
// it when the crate is no longer written or served; its nodes are not to
// be used after.
func (m *memCrate) release() {
	if m.spill != "" {
		os.RemoveAll(m.spill)
		m.spill = ""
	}
	for _, s := range m.slabs {
		slabPool.Put(s)
	}
	m.slabs, m.free, m.root = nil, nil, nil
}

// slabSize is the size of a pooled slab; files of more than a quarter of
// it get their own buffer.
const slabSize = 1 << 20

var slabPool = sync.Pool{New: func() any { b := make([]byte, slabSize); return &b }}

// buffer returns an empty buffer of capacity size for a file's content.
func (m *memCrate) buffer(size int64) []byte {
	if !m.reuse || size > slabSize/4 {
		return make([]byte, 0, size)
	}
	if int64(len(m.free)) < size {
		s := slabPool.Get().(*[]byte)
		m.slabs = append(m.slabs, s)
		m.free = *s
	}
	b := m.free[:0:size]
	m.free = m.free[size:]
	return b
}

var errPathEscapes = errors.New("path escapes from parent") // os.Root's words

// maxSymlinks is os.Root's limit on symlinks followed in one path.
const maxSymlinks = 8

// errLink asks resolve to follow a symlink to this target.
type errLink string

func (errLink) Error() string { return "symlink" }

// resolve walks name from the root as os.Root does and calls last on the
// directory holding the final component. Intermediate symlinks are followed
// (at most maxSymlinks, relative to the directory holding them); ".."
// rewinds the resolved path and may not rise above the root. With mkdirs,
// missing intermediate directories are created (MkdirAll). last may return
// an errLink to have the final component followed too.
func (m *memCrate) resolve(name string, mkdirs bool, last func(dir *node, name string, endsInSlash bool) (*node, error)) (*node, error) {
	parts, endsInSlash, err := splitInRoot(name, nil, nil)
	if err != nil {
		return nil, err
	}
	dir, i, links := m.root, 0, 0
	for {
		if parts[i] == ".." {
			end := i + 1
			for end < len(parts) && parts[end] == ".." {
				end++
			}
			count := end - i
			if count > i {
				return nil, errPathEscapes
			}
			parts = slices.Delete(parts, i-count, end)
			if len(parts) == 0 {
				parts = []string{"."}
			}
			dir, i = m.root, 0
			continue
		}
		var link string
		if i == len(parts)-1 {
			c := dir.child(parts[i])
			var err error
			if endsInSlash && !mkdirs { // mkdir does not follow "symlink/" on Linux
				switch {
				case c == nil:
					return nil, syscall.ENOENT
				case c.isDir():
				case c.isSymlink():
					err = errLink(c.target)
				default:
					return nil, syscall.ENOTDIR
				}
			}
			if err == nil {
				n, err2 := last(dir, parts[i], endsInSlash)
				if err2 == nil {
					return n, nil
				}
				err = err2
			}
			l, ok := err.(errLink)
			if !ok {
				if pe, ok := err.(*fs.PathError); ok {
					pe.Path = strings.Join(parts[:i+1], "/")
				}
				return nil, err
			}
			link = string(l)
		} else {
			c := dir.child(parts[i])
			if c == nil && mkdirs {
				c = newDir()
				dir.kids[parts[i]] = c
			}
			switch {
			case c == nil:
				return nil, syscall.ENOENT
			case c.isDir():
				dir = c
				i++
				continue
			case c.isSymlink():
				link = c.target
			case mkdirs:
				return nil, &fs.PathError{Op: "openat", Path: strings.Join(parts[:i+1], "/"), Err: syscall.ENOTDIR}
			default:
				return nil, syscall.ENOTDIR
			}
		}
		links++
		if links > maxSymlinks {
			return nil, syscall.ELOOP
		}
		lastPart := i == len(parts)-1
		newparts, newSlash, err := splitInRoot(link, parts[:i], parts[i+1:])
		if err != nil {
			return nil, err
		}
		if lastPart && newSlash {
			endsInSlash = true
		}
		if len(newparts) < i || !slices.Equal(parts[:i], newparts[:i]) {
			dir, i = m.root, 0
		}
		parts = newparts
	}
}

// splitInRoot is os.splitPathInRoot on '/': s split into components with
// "." removed except at the end, between prefix and suffix.
func splitInRoot(s string, prefix, suffix []string) ([]string, bool, error) {
	if s == "" {
		return nil, false, errors.New("empty path")
	}
	if s[0] == '/' {
		return nil, false, errPathEscapes
	}
	parts := slices.Clone(prefix)
	endsInSlash := false
	i, j := 0, 1
	for {
		if j < len(s) && s[j] != '/' {
			j++
			continue
		}
		parts = append(parts, s[i:j])
		partEnd := j
		for j < len(s) && s[j] == '/' {
			j++
		}
		if j == len(s) {
			endsInSlash = len(s[partEnd:]) > 0
			break
		}
		if parts[len(parts)-1] == "." {
			parts = parts[:len(parts)-1]
		}
		i = j
	}
	if len(suffix) > 0 && len(parts) > 0 && parts[len(parts)-1] == "." {
		parts = parts[:len(parts)-1]
	}
	return append(parts, suffix...), endsInSlash, nil
}

func (m *memCrate) lookup(name string, follow bool) (*node, error) {
	return m.resolve(name, false, func(dir *node, n string, _ bool) (*node, error) {
		c := dir.child(n)
		switch {
		case c == nil:
			return nil, syscall.ENOENT
		case follow && c.isSymlink():
			return nil, errLink(c.target)
		}
		return c, nil
	})
}

func (m *memCrate) Stat(rel string) (fs.FileInfo, error) {
	n, err := m.lookup(rel, true)
	if err != nil {
		return nil, &fs.PathError{Op: "statat", Path: rel, Err: err}
	}
	return info{filepath.Base(rel), n}, nil
}

func (m *memCrate) Lstat(rel string) (fs.FileInfo, error) {
	n, err := m.lookup(rel, false)
	if err != nil {
		return nil, &fs.PathError{Op: "statat", Path: rel, Err: err}
	}
	return info{filepath.Base(rel), n}, nil
}

func (m *memCrate) Readlink(rel string) (string, error) {
	n, err := m.lookup(rel, false)
	if err == nil && !n.isSymlink() {
		err = syscall.EINVAL
	}
	if err != nil {
		return "", &fs.PathError{Op: "readlinkat", Path: rel, Err: err}
	}
	return n.target, nil
}

func (m *memCrate) MkdirAll(rel string) error {
	_, err := m.resolve(rel, true, func(dir *node, n string, _ bool) (*node, error) {
		c := dir.child(n)
		var err error
		switch {
		case c == nil:
			c = newDir()
			dir.kids[n] = c
		case c.isDir():
		case c.isSymlink(): // succeed if it resolves to a directory, as os.Root
			err = syscall.EEXIST
			fi, e := m.Stat(rel)
			switch {
			case e == nil && fi.IsDir():
				err = nil
			case e == nil:
				err = syscall.ENOTDIR
			case !errors.Is(e, fs.ErrNotExist):
				err = e
			}
		default:
			err = syscall.EEXIST
		}
		if err != nil {
			return nil, &fs.PathError{Op: "mkdirat", Err: err}
		}
		return c, nil
	})
	if _, ok := err.(*fs.PathError); err != nil && !ok {
		err = &fs.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	return err
}

// create adds the new entry n at rel, failing if something is there.
func (m *memCrate) create(rel string, n *node) error {
	_, err := m.resolve(rel, false, func(dir *node, name string, _ bool) (*node, error) {
		if name == "." || dir.kids[name] != nil {
			return nil, syscall.EEXIST
		}
		dir.kids[name] = n
		return n, nil
	})
	return err
}

func (m *memCrate) Symlink(target, rel string) error {
	if err := m.create(rel, &node{mode: fs.ModeSymlink | 0o777, target: target}); err != nil {
		return &os.LinkError{Op: "symlinkat", Old: target, New: rel, Err: err}
	}
	return nil
}

func (m *memCrate) Remove(rel string) error {
	_, err := m.resolve(rel, false, func(dir *node, name string, _ bool) (*node, error) {
		c := dir.child(name)
		switch {
		case name == ".":
			return nil, syscall.EINVAL
		case c == nil:
			return nil, syscall.ENOENT
		case c.isDir() && len(c.kids) > 0:
			return nil, syscall.ENOTEMPTY
		}
		delete(dir.kids, name)
		return c, nil
	})
	if err != nil {
		return &fs.PathError{Op: "removeat", Path: rel, Err: err}
	}
	return nil
}

// Create makes a new file (O_EXCL) of exactly perm that will hold size
// bytes: in memory while the crate's limit allows, else in a spill file.
func (m *memCrate) Create(rel string, perm fs.FileMode, size int64) (io.WriteCloser, error) {
	n := &node{mode: perm}
	var f *os.File
	if size > m.limit-m.used {
		var err error
		if f, err = m.spillFile(); err != nil {
			return nil, err
		}
		n.src = f.Name()
	} else {
		m.used += size
		n.data = m.buffer(size)
	}
	if err := m.create(rel, n); err != nil {
		if f != nil {
			f.Close()
		}
		return nil, &fs.PathError{Op: "openat", Path: rel, Err: err}
	}
	if f != nil {
		return &spillFile{f: f, n: n}, nil
	}
	return &memFile{n: n, m: m}, nil
}

// spillFile makes a new temporary file for a crate too big for memory.
func (m *memCrate) spillFile() (*os.File, error) {
	if m.spill == "" {
		dir, err := os.MkdirTemp(m.spillParent, "cargohash-crate-")
		if err != nil {
			return nil, err
		}
		m.spill = dir
	}
	return os.CreateTemp(m.spill, "f")
}

// memFile appends to a node's data, sized when created.
type memFile struct {
	n *node
	m *memCrate
}

func (f *memFile) Write(p []byte) (int, error) {
	f.m.used += max(int64(len(f.n.data)+len(p)-cap(f.n.data)), 0)
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

// ReadFrom reads r to its end into the node's buffer directly; bytes
// beyond the size the file was made for (which the extractor refuses) are
// appended through Write.
func (f *memFile) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	var extra [512]byte
	for {
		d := f.n.data
		var k int
		var err error
		if len(d) < cap(d) {
			k, err = r.Read(d[len(d):cap(d)])
			f.n.data = d[:len(d)+k]
		} else if k, err = r.Read(extra[:]); k > 0 {
			f.Write(extra[:k])
		}
		total += int64(k)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (f *memFile) Close() error { return nil }

// spillFile writes a node's content to its file on disk.
type spillFile struct {
	f *os.File
	n *node
}

func (s *spillFile) Write(p []byte) (int, error) {
	k, err := s.f.Write(p)
	s.n.size += int64(k)
	return k, err
}

func (s *spillFile) Close() error { return s.f.Close() }

func (m *memCrate) Open(rel string) (io.ReadCloser, error) {
	n, err := m.lookup(rel, true)
	if err == nil && n.isDir() {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: rel, Err: err}
	}
	if n.src != "" {
		return os.Open(n.src)
	}
	return io.NopCloser(bytes.NewReader(n.data)), nil
}

// Link references src: its bytes stay on disk and are read again when
// served (git checkouts do not change while we run).
func (m *memCrate) Link(rel, src string, perm fs.FileMode, hash bool) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var size int64
	var sum string
	if hash {
		h := sha256.New()
		if size, err = io.Copy(h, f); err != nil {
			return "", err
		}
		sum = hex.EncodeToString(h.Sum(nil))
	} else {
		fi, err := f.Stat()
		if err != nil {
			return "", err
		}
		size = fi.Size()
	}
	if err := m.create(rel, &node{mode: perm, src: src, size: size}); err != nil {
		return "", &fs.PathError{Op: "openat", Path: rel, Err: err}
	}
	return sum, nil
}
