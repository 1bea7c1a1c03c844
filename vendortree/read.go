package vendortree

// Reading trees back: what the checker reads, a staging dir, a vendor dir
// (either layout) or a vendor tarball, read into the nodes crates are built
// in and resolved by the same resolver, with the layout told from its shape
// and its crates found where the layout puts them.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pelletier/go-toml/v2"
)

// Tree is a staging dir, vendor dir or vendor tarball read back into the
// model crates are built in (node), paths slash-separated and relative to
// the root ("" is the root; a tarball's root is its single top directory if
// it has one). Files on disk keep their bytes there (node.src) and are
// hashed when first asked; a tarball's files are hashed as it streams by
// (node.sum), the small ones the checker reads kept (node.data). Symlinks
// are followed by the resolver crates are built with, never out of the
// tree.
type Tree struct {
	Path    string // as given to Open
	Kind    Kind   // told from the tree's shape (see Open)
	Tarball bool
	// Lock names its Cargo.lock ("" if it has none): PATH/Cargo.lock, or
	// PATH!/TOP/Cargo.lock in a tarball; LockData holds its bytes.
	Lock     string
	LockData []byte

	root *node
}

// maxSmall bounds the files check reads whole (locks, manifests, checksum files).
const maxSmall = 64 << 20

// Open reads the staging dir, vendor dir or vendor tarball (.tar, .tar.gz,
// .tar.zst, told by its first bytes) at path. Its Kind is Nixpkgs if it has
// source-registry/ or source-git-N/ at the top, Staging if it has tarballs/
// or git/ and no crate directory (one with a .cargo-checksum.json) at the
// top, or nothing but Cargo.lock, and Cargo otherwise. A tarball that ends
// early, has no end-of-archive marker or whose compressed stream is damaged
// is an error.
func Open(ctx context.Context, path string) (*Tree, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var v *Tree
	switch {
	case fi.IsDir():
		v, err = readDir(ctx, path)
	case fi.Mode().IsRegular():
		v, err = readTarball(ctx, path)
	default:
		return nil, fmt.Errorf("%s: not a directory or a tarball", path)
	}
	if err != nil {
		return nil, err
	}
	v.Path = path
	v.Kind = v.detect()
	if v.at("Cargo.lock") != nil {
		if v.LockData, err = v.ReadSmall("Cargo.lock"); err != nil {
			return nil, err
		}
		if v.Lock == "" {
			v.Lock = filepath.Join(path, "Cargo.lock")
		}
	} else {
		v.Lock = ""
	}
	return v, nil
}

func readDir(ctx context.Context, root string) (*Tree, error) {
	// A symlink to the tree (a Nix "result") is followed; links inside
	// the tree are resolved within it.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	v := &Tree{root: newDir()}
	dirs := map[string]*node{".": v.root}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		n := &node{mode: fs.ModeIrregular}
		switch t := d.Type(); {
		case t.IsDir():
			n = newDir()
			dirs[rel] = n
		case t.IsRegular():
			n = &node{src: p}
		case t&fs.ModeSymlink != 0:
			n.mode = fs.ModeSymlink | 0o777
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		dirs[filepath.Dir(rel)].kids[d.Name()] = n
		return nil
	})
	return v, err
}

// readTarball lists a tarball (plain, gzip or zstd, told by its first
// bytes), hashing every regular file as it streams by, and takes its single
// top directory, if it has one, as the root. A tarball that ends early, has
// no end-of-archive marker or whose compressed stream is damaged is an
// error.
func readTarball(ctx context.Context, path string) (_ *Tree, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: reading vendor tarball: %w", path, err)
		}
	}()
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	top := newDir() // the archive's own root
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		before := cr.n
		hdr, err := tr.Next()
		if err == io.EOF {
			if cr.n-before < 1024 {
				return nil, fmt.Errorf("truncated: no end-of-archive marker (%w)", io.ErrUnexpectedEOF)
			}
			break
		}
		if err != nil {
			return nil, err
		}
		name, ok := tarName(hdr.Name)
		if !ok {
			return nil, fmt.Errorf("entry %q: not a relative path inside the tarball", hdr.Name)
		}
		if name == "" {
			continue // "./"
		}
		n := &node{mode: fs.ModeIrregular}
		switch hdr.Typeflag {
		case tar.TypeDir:
			n = newDir()
		case tar.TypeReg:
			n.mode = 0
			h := sha256.New()
			var w io.Writer = h
			var keep bytes.Buffer
			switch name[strings.LastIndex(name, "/")+1:] {
			case "Cargo.lock", "Cargo.toml", ".cargo-checksum.json":
				if hdr.Size <= maxSmall {
					w = io.MultiWriter(h, &keep)
					n.data = []byte{}
				}
			}
			if _, err := io.Copy(w, tr); err != nil {
				return nil, fmt.Errorf("%s: %w", hdr.Name, err)
			}
			n.sum = hex.EncodeToString(h.Sum(nil))
			if n.data != nil {
				n.data = keep.Bytes()
			}
		case tar.TypeSymlink:
			n.mode, n.target = fs.ModeSymlink|0o777, hdr.Linkname
		case tar.TypeLink:
			target, _ := tarName(hdr.Linkname)
			t := walk(top, target)
			if t == nil || !t.mode.IsRegular() {
				return nil, fmt.Errorf("%s: hard link to %q, not an earlier file", hdr.Name, hdr.Linkname)
			}
			n = t
		}
		if err := add(top, name, n); err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	// What follows the archive must still decompress cleanly: a damaged or
	// cut compressed stream is caught here.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, err
	}
	// The root: the single top directory, if there is one.
	v := &Tree{root: top, Tarball: true}
	prefix := ""
	if len(top.kids) == 1 {
		for name, n := range top.kids {
			if n.isDir() {
				v.root, prefix = n, name+"/"
			}
		}
	}
	if v.at("Cargo.lock") != nil {
		v.Lock = path + "!/" + prefix + "Cargo.lock"
	}
	return v, nil
}

// add puts n at name in the tree of root, its directories made as
// needed; a directory met again keeps what it holds.
func add(root *node, name string, n *node) error {
	parts := strings.Split(name, "/")
	d := root
	for _, p := range parts[:len(parts)-1] {
		c := d.kids[p]
		if c == nil {
			c = newDir()
			d.kids[p] = c
		}
		if !c.isDir() {
			return fmt.Errorf("below %q, which is not a directory", p)
		}
		d = c
	}
	last := parts[len(parts)-1]
	if old := d.kids[last]; old != nil && old.isDir() && n.isDir() {
		return nil
	}
	d.kids[last] = n
	return nil
}

// walk returns the node at rel ("" the root) without following symlinks,
// nil if there is none.
func walk(root *node, rel string) *node {
	n := root
	if rel == "" {
		return n
	}
	for _, p := range strings.Split(rel, "/") {
		if n = n.kids[p]; n == nil {
			return nil
		}
	}
	return n
}

// tarName cleans a tar entry name: no leading "./", no trailing "/"; false
// for absolute names and names with "..".
func tarName(name string) (string, bool) {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if name == "." || name == "" {
		return "", true
	}
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", false
		}
	}
	return path.Clean(name), true
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// at is the entry at rel, symlinks not followed; nil if there is none.
func (v *Tree) at(rel string) *node { return walk(v.root, rel) }

// Children lists the directory dir (a path without symlinks), sorted.
func (v *Tree) Children(dir string) []string {
	d := v.at(dir)
	if d == nil || !d.isDir() {
		return nil
	}
	return slices.Sorted(maps.Keys(d.kids))
}

// IsDir reports whether rel is a directory (not a symlink to one).
func (v *Tree) IsDir(rel string) bool { n := v.at(rel); return n != nil && n.isDir() }

// detect tells the layout (see Open).
func (v *Tree) detect() Kind {
	top := v.Children("")
	crates := false
	for _, t := range top {
		if !v.IsDir(t) {
			continue
		}
		if t == registryDir || strings.HasPrefix(t, gitDirPrefix) {
			return Nixpkgs
		}
		if v.at(t+"/"+ChecksumFile) != nil {
			crates = true
		}
	}
	if !crates && (v.IsDir(StagingTarballs) || v.IsDir(StagingGit)) || slices.Equal(top, []string{"Cargo.lock"}) {
		return Staging
	}
	return Cargo
}

// CrateDir is where one crate lives in a vendor tree.
type CrateDir struct {
	Dir string // relative to the tree root
	Git bool   // nixpkgs layout: under source-git-N
}

// Crates lists the crate directories of a nixpkgs or cargo layout tree, in
// tree order: source-registry/* and source-git-N/* (nixpkgs), every top
// directory not starting with "." (cargo). A staging dir has none.
func (v *Tree) Crates() []CrateDir {
	var out []CrateDir
	for _, top := range v.Children("") {
		if !v.IsDir(top) {
			continue
		}
		switch {
		case v.Kind == Nixpkgs && (top == registryDir || strings.HasPrefix(top, gitDirPrefix)):
			for _, c := range v.Children(top) {
				if v.IsDir(top + "/" + c) {
					out = append(out, CrateDir{Dir: top + "/" + c, Git: top != registryDir})
				}
			}
		case v.Kind == Cargo && !strings.HasPrefix(top, "."):
			out = append(out, CrateDir{Dir: top})
		}
	}
	return out
}

// resolve returns what rel names, its symlinks followed inside the tree
// by the resolver crates are built with; fs.ErrNotExist if nothing.
func (v *Tree) resolve(rel string) (*node, error) {
	n, err := (&memCrate{root: v.root}).lookup(rel, true)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil, fs.ErrNotExist
	case errors.Is(err, errPathEscapes):
		return nil, fmt.Errorf("%s: a symlink leads outside the tree", rel)
	}
	return nil, fmt.Errorf("%s: %w", rel, err)
}

// FileSum is the sha256 (hex) of the file rel names (symlinks followed
// inside the tree, as cargo hashes them).
func (v *Tree) FileSum(rel string) (string, error) {
	n, err := v.resolve(rel)
	if err != nil {
		return "", err
	}
	if !n.mode.IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	if n.sum == "" {
		if n.sum, err = sha256File(n.src); err != nil {
			return "", err
		}
	}
	return n.sum, nil
}

// ReadSmall returns the contents of the file rel names (at most maxSmall
// bytes): a lock, a manifest, a checksum file.
func (v *Tree) ReadSmall(rel string) ([]byte, error) {
	n, err := v.resolve(rel)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", rel)
	}
	if n.src == "" {
		if n.data == nil {
			return nil, fmt.Errorf("%s: too large", rel)
		}
		return n.data, nil
	}
	f, err := os.Open(n.src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSmall+1))
	if err == nil && len(data) > maxSmall {
		err = fmt.Errorf("%s: too large", rel)
	}
	return data, err
}

// FilesUnder lists the files and symlinks to files below dir, relative to
// dir, sorted.
func (v *Tree) FilesUnder(dir string) []string {
	var out []string
	var list func(d *node, rel string)
	list = func(d *node, rel string) {
		for name, n := range d.kids {
			p := rel + name
			switch {
			case n.isDir():
				list(n, p+"/")
				continue
			case n.isSymlink():
				if t, err := v.resolve(dir + "/" + p); err == nil && t.isDir() {
					continue
				}
			case !n.mode.IsRegular():
				continue
			}
			out = append(out, p)
		}
	}
	if d := v.at(dir); d != nil && d.isDir() {
		list(d, "")
	}
	slices.Sort(out)
	return out
}

// Checksum reads the .cargo-checksum.json of the crate directory dir.
func (v *Tree) Checksum(dir string) (*Checksum, error) {
	data, err := v.ReadSmall(dir + "/" + ChecksumFile)
	if err != nil {
		return nil, err
	}
	return ParseChecksum(data)
}

// Manifest reads [package] name and version from dir/Cargo.toml.
func (v *Tree) Manifest(dir string) (name, version string, err error) {
	data, err := v.ReadSmall(dir + "/Cargo.toml")
	if err != nil {
		return "", "", err
	}
	var m struct {
		Package struct {
			Name    any `toml:"name"`
			Version any `toml:"version"`
		} `toml:"package"`
	}
	if err := toml.Unmarshal(data, &m); err != nil {
		return "", "", fmt.Errorf("reading Cargo.toml: %w", err)
	}
	name, _ = m.Package.Name.(string)
	version, _ = m.Package.Version.(string)
	if name == "" || version == "" {
		return "", "", errors.New("no [package] name and version strings in Cargo.toml")
	}
	return name, version, nil
}
