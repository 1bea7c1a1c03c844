package vendortree

// Reading trees back: what the checker reads, a staging dir, a vendor dir
// (either layout) or a vendor tarball, indexed in memory (names, kinds;
// file contents are hashed on demand on disk and while streaming a
// tarball), with the layout told from its shape and its crates found where
// the layout puts them.

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
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pelletier/go-toml/v2"
)

// entry is one entry of a Tree.
type entry struct {
	kind   byte   // 'f' regular file, 'd' directory, 'l' symlink, 'o' anything else
	sum    string // sha256 hex of a regular file; on disk computed when first asked
	target string // symlink target
	data   []byte // tarballs: kept for Cargo.lock, Cargo.toml and .cargo-checksum.json
}

// Tree is a staging dir, vendor dir or vendor tarball read back: every
// entry by its slash-separated path relative to the root ("" is the root;
// a tarball's root is its single top directory if it has one).
type Tree struct {
	Path    string // as given to Open
	Kind    Kind   // told from the tree's shape (see Open)
	Tarball bool
	// Lock names its Cargo.lock ("" if it has none): PATH/Cargo.lock, or
	// PATH!/TOP/Cargo.lock in a tarball; LockData holds its bytes.
	Lock     string
	LockData []byte

	root  string // the directory on disk; "" for a tarball
	nodes map[string]*entry
	kids  map[string][]string // directory → sorted child names
	paths []string            // all paths, sorted
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
	v.index()
	v.Path = path
	v.Kind = v.detect()
	if n := v.nodes["Cargo.lock"]; n != nil {
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
	v := &Tree{root: root, nodes: map[string]*entry{}}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		n := &entry{kind: 'o'}
		switch t := d.Type(); {
		case t.IsDir():
			n.kind = 'd'
		case t.IsRegular():
			n.kind = 'f'
		case t&fs.ModeSymlink != 0:
			n.kind = 'l'
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		v.nodes[rel] = n
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
	all := map[string]*entry{}
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
		n := &entry{kind: 'o'}
		switch hdr.Typeflag {
		case tar.TypeDir:
			n.kind = 'd'
		case tar.TypeReg:
			n.kind = 'f'
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
			n.kind, n.target = 'l', hdr.Linkname
		case tar.TypeLink:
			target, _ := tarName(hdr.Linkname)
			t := all[target]
			if t == nil || t.kind != 'f' {
				return nil, fmt.Errorf("%s: hard link to %q, not an earlier file", hdr.Name, hdr.Linkname)
			}
			n = t
		}
		all[name] = n
		for d := name; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			if all[d] == nil {
				all[d] = &entry{kind: 'd'}
			}
		}
	}
	// What follows the archive must still decompress cleanly: a damaged or
	// cut compressed stream is caught here.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, err
	}
	// The root: the single top directory, if there is one.
	prefix := ""
	tops := map[string]bool{}
	for name := range all {
		top, _, _ := strings.Cut(name, "/")
		tops[top] = true
	}
	if len(tops) == 1 {
		for top := range tops {
			if all[top].kind == 'd' {
				prefix = top + "/"
			}
		}
	}
	v := &Tree{nodes: map[string]*entry{"": {kind: 'd'}}}
	for name, n := range all {
		if rel, ok := strings.CutPrefix(name, prefix); ok && name+"/" != prefix {
			v.nodes[rel] = n
		}
	}
	if v.nodes["Cargo.lock"] != nil {
		v.Lock = path + "!/" + prefix + "Cargo.lock"
	}
	v.Tarball = true
	return v, nil
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

// index builds the child lists and the sorted path list.
func (v *Tree) index() {
	v.kids = map[string][]string{}
	v.paths = make([]string, 0, len(v.nodes))
	for p := range v.nodes {
		v.paths = append(v.paths, p)
		if p == "" {
			continue
		}
		dir, base := "", p
		if i := strings.LastIndex(p, "/"); i >= 0 {
			dir, base = p[:i], p[i+1:]
		}
		v.kids[dir] = append(v.kids[dir], base)
	}
	slices.Sort(v.paths)
	for _, k := range v.kids {
		slices.Sort(k)
	}
}

// Children lists the directory dir, sorted.
func (v *Tree) Children(dir string) []string { return v.kids[dir] }

// IsDir reports whether rel is a directory (not a symlink to one).
func (v *Tree) IsDir(rel string) bool { n := v.nodes[rel]; return n != nil && n.kind == 'd' }

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
		if v.nodes[t+"/"+ChecksumFile] != nil {
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

// resolve follows the symlinks of rel inside the tree and returns the path
// of what it names; fs.ErrNotExist if nothing, an error if a link leaves
// the tree.
func (v *Tree) resolve(rel string) (string, *entry, error) {
	todo := strings.Split(rel, "/")
	cur := ""
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		next := c
		if cur != "" {
			next = cur + "/" + c
		}
		n := v.nodes[next]
		if n == nil || c == "" || c == "." || c == ".." {
			return "", nil, fs.ErrNotExist
		}
		if n.kind != 'l' {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", nil, fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target := path.Join(cur, n.target) // cur: the link's directory
		if path.IsAbs(n.target) || target == ".." || strings.HasPrefix(target, "../") {
			return "", nil, fmt.Errorf("symlink %s points outside the tree (%s)", next, n.target)
		}
		cur = ""
		if target != "." {
			todo = append(strings.Split(target, "/"), todo...)
		}
	}
	return cur, v.nodes[cur], nil
}

// FileSum is the sha256 (hex) of the file rel names (symlinks followed
// inside the tree, as cargo hashes them).
func (v *Tree) FileSum(rel string) (string, error) {
	p, n, err := v.resolve(rel)
	if err != nil {
		return "", err
	}
	if n.kind != 'f' {
		return "", fmt.Errorf("not a regular file")
	}
	if n.sum == "" {
		if n.sum, err = sha256File(filepath.Join(v.root, filepath.FromSlash(p))); err != nil {
			return "", err
		}
	}
	return n.sum, nil
}

// ReadSmall returns the contents of the file rel names (at most maxSmall
// bytes): a lock, a manifest, a checksum file.
func (v *Tree) ReadSmall(rel string) ([]byte, error) {
	p, n, err := v.resolve(rel)
	if err != nil {
		return nil, err
	}
	if n.kind != 'f' {
		return nil, fmt.Errorf("%s: not a regular file", rel)
	}
	if v.root == "" {
		if n.data == nil {
			return nil, fmt.Errorf("%s: too large", rel)
		}
		return n.data, nil
	}
	f, err := os.Open(filepath.Join(v.root, filepath.FromSlash(p)))
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
	i, _ := slices.BinarySearch(v.paths, dir+"/")
	for ; i < len(v.paths) && strings.HasPrefix(v.paths[i], dir+"/"); i++ {
		p := v.paths[i]
		switch v.nodes[p].kind {
		case 'f':
		case 'l':
			if _, n, err := v.resolve(p); err == nil && n.kind == 'd' {
				continue
			}
		default:
			continue
		}
		out = append(out, p[len(dir)+1:])
	}
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
