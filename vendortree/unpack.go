package vendortree

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// MaxCrateSize is the most a registry crate may unpack to (the sum of the
// declared sizes of its files, sparse files counted at their full size):
// cargo's own limit.
const MaxCrateSize = 512 << 20

// unpackOptions says how a crate tarball is unpacked.
type unpackOptions struct {
	// skip reports whether a path (relative to the crate, '/'-separated)
	// is left out. nil keeps everything.
	skip func(rel string) bool
	// hash asks for the sha256 of every file written (symlinks: of the
	// content they point to), keyed by relative path.
	hash bool
	// limit overrides MaxCrateSize when > 0 (tests).
	limit int64
	// checksum, when set, is the lowercase hex sha256 the .crate file must
	// have (the lock's checksum), checked once the whole file was read.
	checksum string
	// hardLinks writes hard links as copies of the file they name (source
	// archives); crates refuse them.
	hardLinks bool
	// linksOut keeps symlinks that point outside the tree (absolute or
	// through ".."), as tar and Nix do with source archives; crates refuse
	// them. Writing stays inside: every write goes through the root, which
	// never follows a link out.
	linksOut bool
}

// unpackCrate unpacks the .crate (gzip'd tar) at tarball (read through
// open if it is not nil) into m, an empty crate, as `tar xf tarball
// --strip-components=1` would, refusing anything
// that could land or point outside the crate. crate is "NAME-VERSION":
// every entry must sit under "NAME-VERSION/". The whole archive, gzip
// trailer included, is read, so a corrupt or truncated tarball fails even
// when its entries were all extracted.
//
// Refused, each with an error naming the crate: absolute paths, ".."
// components, entries outside the crate prefix, entries below a symlink,
// hard links, devices, FIFOs and other special files, symlinks that are
// absolute or resolve outside the crate, and more than MaxCrateSize bytes.
func unpackCrate(ctx context.Context, tarball string, open func() (io.ReadCloser, error), crate string, m *memCrate, opt unpackOptions) (map[string]string, error) {
	files, err := unpack(ctx, tarball, open, crate, m, opt)
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", crate, err)
	}
	return files, nil
}

func unpack(ctx context.Context, tarball string, open func() (io.ReadCloser, error), crate string, root *memCrate, opt unpackOptions) (map[string]string, error) {
	if open == nil {
		open = func() (io.ReadCloser, error) { return os.Open(tarball) }
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(f, sum))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tarball, err)
	}
	zr.Multistream(false)
	x := newExtractor(root, crate+"/", opt)
	if err := x.extract(ctx, tar.NewReader(zr), tarball); err != nil {
		return nil, err
	}
	// Drain: the gzip trailer (CRC, size) is only checked at its EOF.
	if _, err := io.CopyBuffer(io.Discard, zr, x.buf); err != nil {
		return nil, fmt.Errorf("%s: %w", tarball, err)
	}
	if opt.checksum != "" {
		if _, err := io.CopyBuffer(sum, f, x.buf); err != nil { // bytes after the gzip stream
			return nil, err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != opt.checksum {
			return nil, fmt.Errorf("checksum mismatch\n\t%s: %s\n\tCargo.lock: %s", tarball, got, opt.checksum)
		}
	}
	if err := x.resolveSymlinks(); err != nil {
		return nil, err
	}
	return x.files, nil
}

// entryReader is what extract reads: a *tar.Reader, or a zip archive
// presented as tar headers.
type entryReader interface {
	Next() (*tar.Header, error)
	io.Reader
}

// extractor writes the entries of an archive into root under the rules of
// unpackCrate. prefix is the directory every entry must sit under ("NAME-
// VERSION/" for a crate), stripped from the paths written; "" takes the
// archive as it is.
type extractor struct {
	root     *memCrate
	prefix   string
	opt      unpackOptions
	limit    int64
	total    int64
	files    map[string]string // opt.hash: relative path → sha256
	symlinks map[string]bool   // relative paths of symlinks written
	h        hash.Hash
	buf      []byte
}

func newExtractor(root *memCrate, prefix string, opt unpackOptions) *extractor {
	x := &extractor{root: root, prefix: prefix, opt: opt, limit: opt.limit, symlinks: map[string]bool{},
		h: sha256.New(), buf: make([]byte, 128<<10)}
	if x.limit <= 0 {
		x.limit = MaxCrateSize
	}
	if opt.hash {
		x.files = map[string]string{}
	}
	return x
}

// noun names what is unpacked in errors: "crate" or "archive".
func (x *extractor) noun() string {
	if x.prefix == "" {
		return "archive"
	}
	return "crate"
}

// extract writes every entry of tr; src names the archive in errors.
func (x *extractor) extract(ctx context.Context, tr entryReader, src string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// rel checks an entry's path and returns it relative to the root.
func (x *extractor) rel(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q: absolute path", name)
	}
	if x.prefix != "" && name != strings.TrimSuffix(x.prefix, "/") && !strings.HasPrefix(name, x.prefix) {
		return "", fmt.Errorf("entry %q: outside %s", name, x.prefix)
	}
	rel, err := cleanRel(strings.TrimPrefix(strings.TrimPrefix(name, strings.TrimSuffix(x.prefix, "/")), "/"))
	if err != nil {
		return "", fmt.Errorf("entry %q: %w", name, err)
	}
	return rel, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := hdr.Name
	rel, err := x.rel(name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink:
	case tar.TypeLink:
		if !x.opt.hardLinks {
			return fmt.Errorf("entry %q: hard link refused", name)
		}
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("entry %q: device file refused", name)
	case tar.TypeFifo:
		return fmt.Errorf("entry %q: FIFO refused", name)
	default:
		return fmt.Errorf("entry %q: unsupported entry type %q", name, hdr.Typeflag)
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q: %s root is not a directory", name, x.noun())
		}
		return nil
	}
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if x.symlinks[d] {
			return fmt.Errorf("entry %q: below symlink %q", name, d)
		}
	}
	if x.opt.skip != nil && x.opt.skip(rel) {
		return nil
	}
	root := x.root
	switch hdr.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(rel)
	case tar.TypeSymlink:
		t := hdr.Linkname
		if t == "" {
			return fmt.Errorf("entry %q: symlink to nothing", name)
		}
		if !x.opt.linksOut && strings.HasPrefix(t, "/") {
			return fmt.Errorf("entry %q: symlink to %q leaves the %s", name, t, x.noun())
		}
		if j := path.Join(path.Dir(rel), t); !x.opt.linksOut && (j == ".." || strings.HasPrefix(j, "../")) {
			return fmt.Errorf("entry %q: symlink to %q leaves the %s", name, t, x.noun())
		}
		if err := replaceable(root, rel); err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		if err := mkParent(root, rel); err != nil {
			return err
		}
		if err := root.Symlink(t, rel); err != nil {
			return err
		}
		x.symlinks[rel] = true
		if x.files != nil {
			delete(x.files, rel)
		}
		return nil
	case tar.TypeLink:
		// A hard link is written as a copy of the file it names, which
		// must be a regular file written before it: Nix hashes both as
		// regular files.
		target, err := x.rel(hdr.Linkname)
		if err != nil || target == "" {
			return fmt.Errorf("entry %q: hard link to %q outside the %s", name, hdr.Linkname, x.noun())
		}
		fi, err := root.Lstat(target)
		if err != nil || !fi.Mode().IsRegular() || x.symlinks[target] {
			return fmt.Errorf("entry %q: hard link to %q, not a file written before it", name, hdr.Linkname)
		}
		if target == rel {
			return nil
		}
		src, err := root.Open(target)
		if err != nil {
			return err
		}
		defer src.Close()
		hdr = &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size()}
		r = src
	}
	// A regular file.
	if hdr.Size < 0 || hdr.Size > x.limit-x.total {
		return fmt.Errorf("entry %q: %s unpacks to more than %d bytes", name, x.noun(), x.limit)
	}
	x.total += hdr.Size
	if err := replaceable(root, rel); err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	delete(x.symlinks, rel)
	if err := mkParent(root, rel); err != nil {
		return err
	}
	perm := fs.FileMode(hdr.Mode)&0o755 | 0o600
	w, err := root.Create(rel, perm, hdr.Size)
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	// In memory the bytes are read straight into the file's buffer
	// (memFile.ReadFrom) and hashed there, without a copy between.
	mem, inMem := w.(*memFile)
	var out io.Writer = w
	x.h.Reset()
	if x.files != nil && !inMem {
		out = io.MultiWriter(w, x.h)
	}
	n, err := io.CopyBuffer(out, io.LimitReader(r, hdr.Size+1), x.buf)
	if x.files != nil && inMem {
		x.h.Write(mem.n.data)
	}
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("holds %d bytes, its header says %d", n, hdr.Size)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	if x.files != nil {
		x.files[rel] = hex.EncodeToString(x.h.Sum(nil))
	}
	return nil
}

// resolveSymlinks checks the symlinks written: one may pass the lexical
// test and still resolve outside through another symlink, so each is
// resolved inside the root, in name order so that the error names the same
// link every time. With opt.hash, a link to a file gets that file's hash.
func (x *extractor) resolveSymlinks() error {
	if x.opt.linksOut {
		return nil // kept as they are, never followed
	}
	for _, rel := range slices.Sorted(maps.Keys(x.symlinks)) {
		fi, err := x.root.Stat(rel)
		switch {
		case err == nil:
			if x.files != nil && fi.Mode().IsRegular() {
				sum, err := hashFile(x.root, rel)
				if err != nil {
					return err
				}
				x.files[rel] = sum
			}
		case errors.Is(err, fs.ErrNotExist):
			// dangling but inside: tar would leave it so
		default:
			t, _ := x.root.Readlink(rel)
			return fmt.Errorf("entry %q: symlink to %q leaves the %s: %w", x.prefix+rel, t, x.noun(), err)
		}
	}
	return nil
}

// cleanRel checks a path inside the crate and returns it without "." and
// empty components; ".." is refused.
func cleanRel(p string) (string, error) {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", errors.New(`".." component refused`)
		}
		out = append(out, c)
	}
	return strings.Join(out, "/"), nil
}

// replaceable removes an earlier entry at rel, as tar does when an archive
// holds the same path twice; a directory is not replaced.
func replaceable(root *memCrate, rel string) error {
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("would replace a directory")
	}
	return root.Remove(rel)
}

func mkParent(root *memCrate, rel string) error {
	if d := path.Dir(rel); d != "." {
		return root.MkdirAll(d)
	}
	return nil
}

func hashFile(root *memCrate, rel string) (string, error) {
	f, err := root.Open(rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return sha256Reader(f)
}
