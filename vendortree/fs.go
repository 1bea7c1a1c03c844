package vendortree

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/cargohash/cargohash/lockfile"
)

// FS is a vendor tree presented as a file system without writing it: the
// names, bytes, modes, symlinks, empty directories and checksum files
// Write would write for the same input and options, refused for the
// same reasons with the same errors (each crate is built by the same code
// into the same model, memCrate, which Write then puts on disk). It implements fs.ReadLinkFS, fs.ReadDirFS and fs.StatFS; symlinks
// inside crates are followed by Open and Stat, never out of their crate.
//
// Crates are built lazily, when a path inside one is first reached, and
// kept while the walk stays near them: reaching the crate at position i in
// walk order (depth first, names sorted bytewise) builds crates i to
// i+Jobs-1 in the background (Jobs 0: GOMAXPROCS, at most 4) and drops
// every other one. A sequential walk (gnutar.WriteFS, fs.WalkDir) thus
// builds each crate once and holds at most Jobs crates, each at most
// MaxMemCrate bytes of file content (the rest of a bigger one waits in
// SpillDir until it is dropped), plus the directory entries and the
// open files of the caller. Other access orders work too, rebuilding
// crates as needed. A build error is returned by the operation that reached
// the crate.
//
// Registry crates are read from Staged.Tarball and verified against the
// lock checksum again; git crates are listed from their checkout when
// reached and their files read from it when opened. An FS is safe for
// concurrent use; Close it to stop the background work and remove its
// temporary files.
type FS struct {
	ctx      context.Context
	cancel   context.CancelFunc
	b        *builder
	jobs     []crateJob // in walk order
	ahead    int
	root     *node
	spill    string // parent of the temporary directories; "" means os.TempDir
	memLimit int64

	mu     sync.Mutex
	loads  map[int]*load
	wg     sync.WaitGroup
	closed bool
}

// load is one crate being built or built.
type load struct {
	done    chan struct{}
	img     *node
	tmp     string // its spill directory, if any
	err     error
	dropped bool
}

// NewFS returns the vendor tree of in as Write would write it with
// opts (Absolute is refused: the tree has no path of its own). ctx bounds
// the building of crates, which happens in the calls on the FS and in the
// background until Close.
func NewFS(ctx context.Context, in Staged, opts Options) (*FS, error) {
	if opts.Absolute {
		return nil, errors.New("vendortree: an FS has no absolute path to write into .cargo/config.toml")
	}
	jobs, err := plan(in.Lock.Lockfile, opts)
	if err != nil {
		return nil, err
	}
	b, err := newBuilder(in, jobs, opts)
	if err != nil {
		return nil, err
	}
	// Walk order: component-wise bytewise, as a sorted depth-first walk
	// meets the crate directories.
	slices.SortFunc(jobs, func(a, b crateJob) int {
		return slices.Compare(strings.Split(a.dir, "/"), strings.Split(b.dir, "/"))
	})
	ahead := opts.Jobs
	if ahead <= 0 {
		ahead = min(runtime.GOMAXPROCS(0), 4)
	}
	f := &FS{b: b, jobs: jobs, ahead: ahead, root: newDir(), spill: opts.SpillDir, loads: map[int]*load{},
		memLimit: opts.memLimitOrDefault()}
	f.ctx, f.cancel = context.WithCancel(ctx)
	if opts.Layout == Nixpkgs {
		if err := f.AddFile("Cargo.lock", in.Lock.Data, in.Lock.Mode); err != nil {
			return nil, err
		}
		if err := f.AddFile(".cargo/config.toml", []byte(NixpkgsConfig(in.Lock.Lockfile, VendorPlaceholder)), 0o644); err != nil {
			return nil, err
		}
	}
	for i, j := range jobs {
		d := f.root
		parts := strings.Split(j.dir, "/")
		for _, p := range parts[:len(parts)-1] {
			if d.kids[p] == nil {
				d.kids[p] = newDir()
			}
			d = d.kids[p]
		}
		n := newDir()
		n.crate = i + 1
		d.kids[parts[len(parts)-1]] = n
	}
	return f, nil
}

// AddFile adds a file of data with perm (0644 or 0755) at name (a
// '/'-separated path, its directories made as needed) outside the crates:
// Cargo.lock and .cargo/config.toml in a vendor tarball. Call it before
// using the FS; a name that is taken is an error.
func (f *FS) AddFile(name string, data []byte, perm fs.FileMode) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: "add", Path: name, Err: fs.ErrInvalid}
	}
	parts := strings.Split(name, "/")
	d := f.root
	for _, p := range parts[:len(parts)-1] {
		c := d.kids[p]
		if c == nil {
			c = newDir()
			d.kids[p] = c
		}
		if !c.isDir() || c.crate != 0 {
			return &fs.PathError{Op: "add", Path: name, Err: fs.ErrExist}
		}
		d = c
	}
	last := parts[len(parts)-1]
	if d.kids[last] != nil {
		return &fs.PathError{Op: "add", Path: name, Err: fs.ErrExist}
	}
	d.kids[last] = &node{mode: perm.Perm(), data: data}
	return nil
}

// Close stops the background builds and removes the temporary files.
func (f *FS) Close() error {
	f.cancel()
	f.mu.Lock()
	f.closed = true
	for i, l := range f.loads {
		f.drop(i, l)
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// drop forgets load i; its spill directory goes once it is built. f.mu held.
func (f *FS) drop(i int, l *load) {
	delete(f.loads, i)
	l.dropped = true
	select {
	case <-l.done:
		if l.tmp != "" {
			os.RemoveAll(l.tmp)
		}
	default: // the builder removes it when done
	}
}

// crate returns the image of crate i, building it (and the next ones in
// the background) if needed.
func (f *FS) crate(i int) (*node, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, fs.ErrClosed
	}
	for j, l := range f.loads {
		if j < i || j >= i+f.ahead {
			f.drop(j, l)
		}
	}
	for j := i; j < min(i+f.ahead, len(f.jobs)); j++ {
		if f.loads[j] == nil {
			l := &load{done: make(chan struct{})}
			f.loads[j] = l
			f.wg.Add(1)
			go f.build(j, l)
		}
	}
	l := f.loads[i]
	f.mu.Unlock()
	select {
	case <-l.done:
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
	return l.img, l.err
}

func (f *FS) build(i int, l *load) {
	defer f.wg.Done()
	l.img, l.tmp, l.err = f.buildCrate(f.jobs[i].pkg)
	f.mu.Lock()
	close(l.done)
	if l.dropped && l.tmp != "" {
		os.RemoveAll(l.tmp)
	}
	f.mu.Unlock()
}

// buildCrate builds p; its files past memLimit wait in a spill directory
// (returned) until the crate is dropped.
func (f *FS) buildCrate(p lockfile.Package) (*node, string, error) {
	m := newMemCrate(f.memLimit, f.spill)
	if err := f.b.build(f.ctx, p, m); err != nil {
		m.release()
		return nil, "", err
	}
	return m.root, m.spill, nil
}

// find returns the node at name (following a final symlink if follow) and
// its crate image's writer for resolving inside it.
func (f *FS) find(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n := f.root
	if name == "." {
		return n, nil
	}
	parts := strings.Split(name, "/")
	for k, p := range parts {
		if n.crate != 0 {
			img, err := f.crate(n.crate - 1)
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			m := &memCrate{root: img}
			c, err := m.lookup(strings.Join(parts[k:], "/"), follow)
			if err != nil {
				if errors.Is(err, syscall.ENOENT) {
					err = fs.ErrNotExist
				}
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			return c, nil
		}
		if !n.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		if n = n.kids[p]; n == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	return n, nil
}

// dirNode is find for a directory to list: a crate mount is built.
func (f *FS) dirNode(op, name string) (*node, error) {
	n, err := f.find(op, name, true)
	if err != nil {
		return nil, err
	}
	if n.crate != 0 {
		if n, err = f.crate(n.crate - 1); err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return n, nil
}

func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.find("open", name, true)
	if err != nil {
		return nil, err
	}
	fi := info{path.Base(name), n}
	if n.isDir() {
		d, err := f.dirNode("open", name)
		if err != nil {
			return nil, err
		}
		return &dirFile{fi: fi, entries: dirEntries(d)}, nil
	}
	if n.src != "" {
		r, err := os.Open(n.src)
		if err != nil {
			return nil, err
		}
		return &srcFile{File: r, fi: fi}, nil
	}
	return &dataFile{fi: fi, r: bytes.NewReader(n.data)}, nil
}

func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	d, err := f.dirNode("readdir", name)
	if err != nil {
		return nil, err
	}
	return dirEntries(d), nil
}

func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.find("stat", name, true)
	if err != nil {
		return nil, err
	}
	return info{path.Base(name), n}, nil
}

func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.find("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return info{path.Base(name), n}, nil
}

func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.find("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !n.isSymlink() {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// dirEntries lists a directory node, sorted by name.
func dirEntries(d *node) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(d.kids))
	for name, n := range d.kids {
		out = append(out, fs.FileInfoToDirEntry(info{name, n}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

type dirFile struct {
	fi      info
	entries []fs.DirEntry
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.fi.name, Err: syscall.EISDIR}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		e := d.entries
		d.entries = nil
		return e, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.entries))
	e := d.entries[:k]
	d.entries = d.entries[k:]
	return e, nil
}

type dataFile struct {
	fi info
	r  *bytes.Reader
}

func (f *dataFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *dataFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *dataFile) Close() error               { return nil }

// srcFile is a file served from disk with the node's info (size as built).
type srcFile struct {
	*os.File
	fi info
}

func (f *srcFile) Stat() (fs.FileInfo, error) { return f.fi, nil }

var _ interface {
	fs.ReadLinkFS
	fs.ReadDirFS
	fs.StatFS
} = (*FS)(nil)
