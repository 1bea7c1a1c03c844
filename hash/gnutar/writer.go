// Package gnutar writes deterministic tar streams byte-identical to what GNU
// tar 1.34 writes for
//
//	TZ=UTC LC_ALL=C tar --format=gnu --sort=name --owner=0 --group=0 \
//	    --numeric-owner --mtime=@1 -cf - DIR
//
// on a tree whose modes are normalised: directories 0755, regular files 0755
// when any executable bit is set and 0644 otherwise, symbolic links 0777 (the
// only mode Linux gives them) with their target.
//
// Every header is a 512-byte GNU header:
//
//	name      [0:100]    the path, truncated to 100 bytes; directories end in "/"
//	mode      [100:108]  "%07o\0": 0755, 0644 or 0777
//	uid, gid  [108:124]  "0000000\0" each
//	size      [124:136]  "%011o\0", or base-256 (0x80 then 11 big-endian
//	                     bytes) from 8 GiB on
//	mtime     [136:148]  "00000000001\0"
//	chksum    [148:156]  "%06o\0 ", the unsigned byte sum of the header with
//	                     this field read as eight spaces
//	typeflag  [156]      '0' file, '2' symlink, '5' directory
//	linkname  [157:257]  the symlink target, truncated to 100 bytes
//	magic     [257:265]  "ustar  \0" (GNU: "ustar " and version " \0")
//	rest      [265:512]  zero: uname and gname are empty with --numeric-owner,
//	                     devmajor/devminor, atime, ctime are zero
//
// A name longer than 100 bytes is preceded by a "././@LongLink" entry of type
// 'L', a target longer than 100 bytes by one of type 'K' (K before L). Their
// header is the one above with mode 0644, mtime 0 and size len+1; their data
// is the full string and a NUL, padded to 512 bytes. Data blocks are padded
// with zeros to 512 bytes. Close writes two zero blocks and pads the stream
// with zeros to a multiple of the 10240-byte record.
//
// The package does not compress, does not read archives, does not write hard
// links (a hard-linked file is archived as a regular file each time, as
// GNU tar does with --hard-dereference), and writes no owners, times or
// extended attributes. Entries must be written in --sort=name order (each
// directory's entries sorted by name bytewise, a directory before its
// children) for the stream to match GNU tar: WriteFS does that.
package gnutar

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Typeflag values, as in archive/tar.
const (
	TypeReg     = '0'
	TypeSymlink = '2'
	TypeDir     = '5'
)

const (
	blockSize  = 512
	recordSize = 20 * blockSize // GNU tar's default blocking factor 20

	nameSize = 100
	longName = "././@LongLink"

	typeLongName = 'L'
	typeLongLink = 'K'

	maxOctalSize = 1<<33 - 1 // 077777777777, the largest 11-digit octal size
)

var (
	// ErrWriteTooLong is returned when more bytes are written than the
	// Size of the current entry.
	ErrWriteTooLong = errors.New("gnutar: write too long")
	// ErrWriteAfterClose is returned by every call after Close.
	ErrWriteAfterClose = errors.New("gnutar: write after close")
)

// Header describes one entry.
//
// Only the executable bits of Mode are used: the writer normalises modes
// itself (directories 0755, regular files 0755 if Mode&0111 != 0 else 0644,
// symlinks 0777), so callers may pass fs.FileMode.Perm() as it is.
type Header struct {
	// Name is a relative slash-separated path: no empty, "." or ".."
	// elements, no NUL; any other bytes, UTF-8 or not, are stored as they
	// are. Directories may be named with or without the trailing slash GNU
	// tar gives them.
	Name     string
	Typeflag byte  // TypeReg, TypeDir or TypeSymlink
	Mode     int64 // permission bits; only the executable bits matter
	Size     int64 // data length of a regular file; 0 otherwise
	Linkname string
}

// Writer writes a GNU tar stream to an underlying writer. It does not buffer:
// give it a buffered writer when writing many small entries.
//
// Errors are sticky: after the first error (an invalid header, a short or too
// long entry, a failed write of the underlying writer) every call returns it
// and nothing more is written.
type Writer struct {
	w       io.Writer
	err     error
	name    string // current entry, for errors
	nb      int64  // data bytes still owed for the current entry
	pad     int64  // zero bytes to write after the current entry's data
	written int64  // bytes written to w
	blk     [blockSize]byte
	zero    [blockSize]byte
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteHeader finishes the current entry and writes the header of the next,
// preceded by the LongLink entries it needs. Exactly hdr.Size bytes must then
// be written with Write.
func (tw *Writer) WriteHeader(hdr *Header) error {
	if err := tw.finishEntry(); err != nil {
		return err
	}
	name, err := checkHeader(hdr)
	if err != nil {
		tw.err = err
		return err
	}
	var mode int64
	switch hdr.Typeflag {
	case TypeDir:
		mode = 0o755
	case TypeSymlink:
		mode = 0o777
	default:
		mode = 0o644
		if hdr.Mode&0o111 != 0 {
			mode = 0o755
		}
	}
	if len(hdr.Linkname) > nameSize {
		if err := tw.writeLong(typeLongLink, hdr.Linkname); err != nil {
			return err
		}
	}
	if len(name) > nameSize {
		if err := tw.writeLong(typeLongName, name); err != nil {
			return err
		}
	}
	tw.header(name, hdr.Typeflag, mode, hdr.Size, 1, hdr.Linkname)
	if err := tw.write(tw.blk[:]); err != nil {
		return err
	}
	tw.name = name
	tw.nb = hdr.Size
	tw.pad = padding(hdr.Size)
	return nil
}

// Write writes data of the current entry. Writing more than the Size given
// to WriteHeader writes what fits and returns ErrWriteTooLong.
func (tw *Writer) Write(p []byte) (int, error) {
	if tw.err != nil {
		return 0, tw.err
	}
	tooLong := int64(len(p)) > tw.nb
	if tooLong {
		p = p[:tw.nb]
	}
	n, err := tw.w.Write(p)
	tw.written += int64(n)
	tw.nb -= int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		tw.err = err
		return n, err
	}
	if tooLong {
		tw.err = fmt.Errorf("%s: %w", tw.name, ErrWriteTooLong)
		return n, tw.err
	}
	return n, nil
}

// Close finishes the current entry, writes the end-of-archive blocks and pads
// the stream to a whole record. It does not close the underlying writer.
// Closing twice returns nil.
func (tw *Writer) Close() error {
	if tw.err == ErrWriteAfterClose {
		return nil
	}
	if err := tw.finishEntry(); err != nil {
		return err
	}
	end := tw.written + 2*blockSize
	end += (recordSize - end%recordSize) % recordSize
	for tw.written < end {
		if err := tw.write(tw.zero[:]); err != nil {
			return err
		}
	}
	tw.err = ErrWriteAfterClose
	return nil
}

// finishEntry checks that the current entry is complete and pads its data.
func (tw *Writer) finishEntry() error {
	if tw.err != nil {
		return tw.err
	}
	if tw.nb > 0 {
		tw.err = fmt.Errorf("gnutar: %s: %d bytes of data missing", tw.name, tw.nb)
		return tw.err
	}
	if tw.pad > 0 {
		if err := tw.write(tw.zero[:tw.pad]); err != nil {
			return err
		}
		tw.pad = 0
	}
	return nil
}

// writeLong writes a ././@LongLink entry holding s and a NUL.
func (tw *Writer) writeLong(flag byte, s string) error {
	size := int64(len(s)) + 1
	tw.header(longName, flag, 0o644, size, 0, "")
	if err := tw.write(tw.blk[:]); err != nil {
		return err
	}
	nulBlock := len(s)%blockSize == 0 // s fills its last block: the NUL needs one more
	for len(s) > 0 {
		clear(tw.blk[:])
		s = s[copy(tw.blk[:], s):] // the NUL is a cleared byte after s
		if err := tw.write(tw.blk[:]); err != nil {
			return err
		}
	}
	if nulBlock {
		return tw.write(tw.zero[:])
	}
	return nil
}

// header fills tw.blk with a GNU header.
func (tw *Writer) header(name string, flag byte, mode, size, mtime int64, link string) {
	b := tw.blk[:]
	clear(b)
	copy(b[0:100], name)
	octal(b[100:108], mode)
	octal(b[108:116], 0)
	octal(b[116:124], 0)
	if size > maxOctalSize {
		b[124] = 0x80
		for i, v := 135, size; i > 124; i, v = i-1, v>>8 {
			b[i] = byte(v)
		}
	} else {
		octal(b[124:136], size)
	}
	octal(b[136:148], mtime)
	b[156] = flag
	copy(b[157:257], link)
	copy(b[257:265], "ustar  \x00")
	sum := int64(8 * ' ') // the checksum field counts as spaces
	for i, c := range b {
		if i < 148 || i >= 156 {
			sum += int64(c)
		}
	}
	octal(b[148:155], sum)
	b[155] = ' '
}

// octal writes v as zero-padded octal digits filling all of f but the last
// byte, which is NUL.
func octal(f []byte, v int64) {
	for i := len(f) - 2; i >= 0; i-- {
		f[i] = byte('0' + v&7)
		v >>= 3
	}
	f[len(f)-1] = 0
}

// write writes p to the underlying writer, making any failure sticky.
func (tw *Writer) write(p []byte) error {
	n, err := tw.w.Write(p)
	tw.written += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		tw.err = err
	}
	return err
}

func padding(size int64) int64 {
	return (blockSize - size%blockSize) % blockSize
}

// checkHeader validates hdr and returns the name as archived.
func checkHeader(hdr *Header) (string, error) {
	name := hdr.Name
	if hdr.Typeflag == TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	if !validPath(name) {
		return "", fmt.Errorf("gnutar: invalid entry name %q", hdr.Name)
	}
	switch hdr.Typeflag {
	case TypeReg:
		if hdr.Size < 0 {
			return "", fmt.Errorf("gnutar: %s: negative size %d", name, hdr.Size)
		}
	case TypeDir, TypeSymlink:
		if hdr.Size != 0 {
			return "", fmt.Errorf("gnutar: %s: size %d for a %s", name, hdr.Size, typeName(hdr.Typeflag))
		}
	default:
		return "", fmt.Errorf("gnutar: %s: unsupported typeflag %q", name, hdr.Typeflag)
	}
	if hdr.Typeflag == TypeSymlink {
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return "", fmt.Errorf("gnutar: %s: invalid symlink target %q", name, hdr.Linkname)
		}
	} else if hdr.Linkname != "" {
		return "", fmt.Errorf("gnutar: %s: link target %q for a %s", name, hdr.Linkname, typeName(hdr.Typeflag))
	}
	if hdr.Typeflag == TypeDir {
		name += "/"
	}
	return name, nil
}

// validPath is fs.ValidPath without its UTF-8 rule (GNU tar stores names as
// bytes): non-empty slash-separated elements, none of them "." or "..", and
// no NUL.
func validPath(name string) bool {
	if strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

func typeName(flag byte) string {
	switch flag {
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	}
	return "regular file"
}
