package vendortree

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxArchiveSize is the most a source archive may unpack to by default (the
// sum of the sizes of its files, hard links counted again).
const MaxArchiveSize = 4 << 30

// ErrNotArchive is returned, wrapped, when a file is none of the formats
// UnpackArchive reads.
var ErrNotArchive = errors.New("not a tar (.gz, .xz, .bz2, .zst) or zip archive")

// UnpackArchive unpacks the archive at file into dst, which it creates,
// as fetchzip's unpack step (and `nix-prefetch-url --unpack`) would: the
// format is told from the content (tar, compressed with gzip, xz, bzip2 or
// zstd, or zip); exec bits and symlinks are kept, hard links become copies,
// pax global headers are skipped. Nothing is stripped: the caller decides
// about the top directory.
//
// The rules of crate unpacking apply: no absolute paths or ".." components,
// no entries below a symlink, no devices or FIFOs, and at most limit bytes
// of file content (MaxArchiveSize when limit ≤ 0). The archive is built in
// memory (its files past MaxMemCrate in temporary files beside dst) and
// dst made only once all of it passed, every write through an os.Root of
// dst. One difference: a symlink that points outside dst (absolute, or
// up through "..") is kept as it is, because fetchzip and
// nix-prefetch-url keep it and hash its target string; the caller must
// not follow links in the tree. A compressed stream is read to its end, so
// a corrupt trailer fails.
func UnpackArchive(ctx context.Context, file, dst string, limit int64) error {
	if limit <= 0 {
		limit = MaxArchiveSize
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(512)
	// Files past MaxMemCrate wait beside dst, on the same file system.
	m := newMemCrate(MaxMemCrate, filepath.Dir(dst))
	m.reuse = true
	defer m.release()
	x := newExtractor(m, "", unpackOptions{hardLinks: true, linksOut: true, limit: limit})
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := x.extract(ctx, &zipEntries{r: zr, limit: limit}, file); err != nil {
			return err
		}
		if err := x.resolveSymlinks(); err != nil {
			return err
		}
		return writeCrate(dst, m)
	}
	r, closeFn, err := decompressor(br, head)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer closeFn()
	if err := x.extract(ctx, tar.NewReader(r), file); err != nil {
		return err
	}
	// Drain: a compressor's checksum is checked at its end; the bytes
	// after the tar end marker are padding.
	if _, err := io.CopyBuffer(io.Discard, io.LimitReader(r, 1<<20), x.buf); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := x.resolveSymlinks(); err != nil {
		return err
	}
	return writeCrate(dst, m)
}

// decompressor returns the tar stream in br, whose first bytes are head.
func decompressor(br io.Reader, head []byte) (io.Reader, func(), error) {
	nop := func() {}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, nop, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nop, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return br, nop, nil
	}
	if s := strings.TrimLeft(strings.ToLower(string(head)), " \t\r\n\ufeff"); strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html") {
		return nil, nil, fmt.Errorf("%w: an HTML page", ErrNotArchive)
	}
	return nil, nil, ErrNotArchive
}

// zipEntries presents a zip archive as tar headers, in the archive's order.
// Modes come from the Unix attributes when the archive has them (as unzip
// and libarchive read them); a symlink's target is its content.
type zipEntries struct {
	r     *zip.Reader
	i     int
	cur   io.ReadCloser
	limit int64
}

func (z *zipEntries) Next() (*tar.Header, error) {
	if z.cur != nil {
		z.cur.Close()
		z.cur = nil
	}
	if z.i >= len(z.r.File) {
		return nil, io.EOF
	}
	f := z.r.File[z.i]
	z.i++
	mode := f.Mode()
	hdr := &tar.Header{Name: f.Name, Mode: int64(mode.Perm())}
	if f.UncompressedSize64 > uint64(z.limit) {
		return nil, fmt.Errorf("entry %q: archive unpacks to more than %d bytes", f.Name, z.limit)
	}
	size := int64(f.UncompressedSize64)
	switch {
	case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
		hdr.Typeflag = tar.TypeDir
		return hdr, nil
	case mode&fs.ModeSymlink != 0:
		if size > 4096 {
			return nil, fmt.Errorf("entry %q: symlink target of %d bytes", f.Name, size)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", f.Name, err)
		}
		target, err := io.ReadAll(io.LimitReader(rc, 4097))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", f.Name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(target)
		return hdr, nil
	case mode.IsRegular():
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", f.Name, err)
		}
		z.cur = rc
		hdr.Typeflag, hdr.Size = tar.TypeReg, size
		return hdr, nil
	}
	return nil, fmt.Errorf("entry %q: unsupported file type %s", f.Name, mode.Type())
}

func (z *zipEntries) Read(p []byte) (int, error) {
	if z.cur == nil {
		return 0, io.EOF
	}
	return z.cur.Read(p)
}
