package vendortree

import (
	"archive/tar"
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
}

// unpackCrate unpacks the .crate (gzip'd tar) at tarball into dst, which it
// creates, as `tar xf tarball -C dst --strip-components=1` would, refusing
// anything that could land or point outside dst. crate is "NAME-VERSION":
// every entry must sit under "NAME-VERSION/". The whole archive, gzip
// trailer included, is read, so a corrupt or truncated tarball fails even
// when its entries were all extracted.
//
// Refused, each with an error naming the crate: absolute paths, ".."
// components, entries outside the crate prefix, entries below a symlink,
// hard links, devices, FIFOs and other special files, symlinks that are
// absolute or resolve outside dst, and more than MaxCrateSize bytes.
func unpackCrate(ctx context.Context, tarball, crate, dst string, opt unpackOptions) (map[string]string, error) {
	dc, err := createDiskCrate(dst)
	if err != nil {
		return nil, err
	}
	defer dc.close()
	return unpackInto(ctx, tarball, crate, dc, opt)
}

// unpackInto is unpackCrate into w, an empty crate (on disk or in memory).
func unpackInto(ctx context.Context, tarball, crate string, w crateWriter, opt unpackOptions) (map[string]string, error) {
	files, err := unpack(ctx, tarball, crate, w, opt)
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", crate, err)
	}
	return files, nil
}

func unpack(ctx context.Context, tarball, crate string, root crateWriter, opt unpackOptions) (map[string]string, error) {
	limit := opt.limit
	if limit <= 0 {
		limit = MaxCrateSize
	}
	f, err := os.Open(tarball)
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

	var files map[string]string
	if opt.hash {
		files = map[string]string{}
	}
	symlinks := map[string]bool{} // relative paths of symlinks written
	var total int64
	prefix := crate + "/"
	tr := tar.NewReader(zr)
	h := sha256.New()
	buf := make([]byte, 128<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tarball, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := hdr.Name
		if strings.HasPrefix(name, "/") {
			return nil, fmt.Errorf("entry %q: absolute path", name)
		}
		if name != crate && !strings.HasPrefix(name, prefix) {
			return nil, fmt.Errorf("entry %q: outside %s/", name, crate)
		}
		rel, err := cleanRel(strings.TrimPrefix(strings.TrimPrefix(name, crate), "/"))
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			return nil, fmt.Errorf("entry %q: hard link refused", name)
		case tar.TypeChar, tar.TypeBlock:
			return nil, fmt.Errorf("entry %q: device file refused", name)
		case tar.TypeFifo:
			return nil, fmt.Errorf("entry %q: FIFO refused", name)
		default:
			return nil, fmt.Errorf("entry %q: unsupported entry type %q", name, hdr.Typeflag)
		}
		if rel == "" {
			if hdr.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("entry %q: crate root is not a directory", name)
			}
			continue
		}
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if symlinks[d] {
				return nil, fmt.Errorf("entry %q: below symlink %q", name, d)
			}
		}
		if opt.skip != nil && opt.skip(rel) {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(rel); err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			t := hdr.Linkname
			if t == "" || strings.HasPrefix(t, "/") {
				return nil, fmt.Errorf("entry %q: symlink to %q leaves the crate", name, t)
			}
			if j := path.Join(path.Dir(rel), t); j == ".." || strings.HasPrefix(j, "../") {
				return nil, fmt.Errorf("entry %q: symlink to %q leaves the crate", name, t)
			}
			if err := replaceable(root, rel); err != nil {
				return nil, fmt.Errorf("entry %q: %w", name, err)
			}
			if err := mkParent(root, rel); err != nil {
				return nil, err
			}
			if err := root.Symlink(t, rel); err != nil {
				return nil, err
			}
			symlinks[rel] = true
			if files != nil {
				delete(files, rel)
			}
		default: // regular file
			if hdr.Size < 0 || hdr.Size > limit-total {
				return nil, fmt.Errorf("entry %q: crate unpacks to more than %d bytes", name, limit)
			}
			total += hdr.Size
			if err := replaceable(root, rel); err != nil {
				return nil, fmt.Errorf("entry %q: %w", name, err)
			}
			delete(symlinks, rel)
			if err := mkParent(root, rel); err != nil {
				return nil, err
			}
			perm := fs.FileMode(hdr.Mode)&0o755 | 0o600
			w, err := root.Create(rel, perm, hdr.Size)
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", name, err)
			}
			var out io.Writer = w
			if files != nil {
				h.Reset()
				out = io.MultiWriter(w, h)
			}
			_, err = io.CopyBuffer(out, tr, buf)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", name, err)
			}
			if files != nil {
				files[rel] = hex.EncodeToString(h.Sum(nil))
			}
		}
	}
	// Drain: the gzip trailer (CRC, size) is only checked at its EOF.
	if _, err := io.CopyBuffer(io.Discard, zr, buf); err != nil {
		return nil, fmt.Errorf("%s: %w", tarball, err)
	}
	if opt.checksum != "" {
		if _, err := io.CopyBuffer(sum, f, buf); err != nil { // bytes after the gzip stream
			return nil, err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != opt.checksum {
			return nil, fmt.Errorf("checksum mismatch\n\t%s: %s\n\tCargo.lock: %s", tarball, got, opt.checksum)
		}
	}
	// A symlink may pass the lexical test and still resolve outside
	// through another symlink: resolve each one inside the root.
	// In name order, so that the error names the same link every time.
	for _, rel := range slices.Sorted(maps.Keys(symlinks)) {
		fi, err := root.Stat(rel)
		switch {
		case err == nil:
			if files != nil && fi.Mode().IsRegular() {
				sum, err := hashFile(root, rel)
				if err != nil {
					return nil, err
				}
				files[rel] = sum
			}
		case errors.Is(err, fs.ErrNotExist):
			// dangling but inside: tar would leave it so
		default:
			t, _ := root.Readlink(rel)
			return nil, fmt.Errorf("entry %q: symlink to %q leaves the crate: %w", prefix+rel, t, err)
		}
	}
	return files, nil
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
func replaceable(root crateWriter, rel string) error {
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

func mkParent(root crateWriter, rel string) error {
	if d := path.Dir(rel); d != "." {
		return root.MkdirAll(d)
	}
	return nil
}

func hashFile(root crateWriter, rel string) (string, error) {
	f, err := root.Open(rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
