package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cargohash/cargohash/internal/publish"
)

// A sink is where a crate fetched goes: a file of its own at dst, or with
// packed, when its size is known, this Fetcher's pack.
type sink struct {
	dst    string
	packed bool
}

// put streams r, size bytes (-1: unknown), to to while hashing it and
// checks it against want; progress, if not nil, sees the bytes so far. On
// any failure nothing is kept.
func (f *Fetcher) put(ctx context.Context, r io.Reader, size int64, want []byte, to sink, progress func(int64)) (File, error) {
	if !to.packed || size < 0 {
		n, err := f.store(ctx, r, want, to.dst, progress)
		return File{Path: to.dst, Size: n}, err
	}
	if size > f.opts.MaxSize {
		return File{}, fmt.Errorf("larger than %d bytes", f.opts.MaxSize)
	}
	w, pf, off, err := f.packs.reserve(size)
	if err != nil {
		return File{}, fmt.Errorf("cache: %w", err)
	}
	n, err := f.copyVerified(&regionWriter{f: w, off: off, end: off + size}, r, want, progress)
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, announced %d", n, size)
	}
	if err != nil {
		f.packs.release(off, size)
		return File{}, err
	}
	f.packs.add(want, pf, off, size)
	return File{Path: pf.path, Offset: off, Size: size}, nil
}

// store streams r into a temporary file next to dst while hashing it,
// compares the hash with want and renames the file to dst (replacing a
// damaged file there), through the one publish policy. On any failure no
// file is left. There is no fsync: every read of the store re-verifies the
// checksum (verifyFile), so a file a crash left torn is found and fetched
// again, and a sync per crate cost more than the download on a fast link.
func (f *Fetcher) store(ctx context.Context, r io.Reader, want []byte, dst string, progress func(int64)) (n int64, err error) {
	err = publish.File(ctx, dst, 0o644, publish.Options{NoSync: true}, func(file io.Writer) error {
		n, err = f.copyVerified(file, r, want, progress)
		return err
	})
	return n, err
}

// copyVerified copies r to w (at most MaxSize bytes) while hashing it, and
// checks the hash against want.
func (f *Fetcher) copyVerified(w io.Writer, r io.Reader, want []byte, progress func(int64)) (int64, error) {
	h := sha256.New()
	w = io.MultiWriter(w, h)
	if progress != nil {
		w = &progressWriter{w: w, fn: progress}
	}
	n, err := copyBody(w, io.LimitReader(r, f.opts.MaxSize+1))
	if err != nil {
		return n, err
	}
	if n > f.opts.MaxSize {
		return n, fmt.Errorf("larger than %d bytes", f.opts.MaxSize)
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		return n, &ChecksumError{Downloaded: hex.EncodeToString(got), Want: hex.EncodeToString(want)}
	}
	return n, nil
}

// fromPack returns the crate with sha256 want from a pack, verified unless
// unread. A damaged entry costs one line on the log and is dropped.
func (f *Fetcher) fromPack(id string, want []byte, unread bool) (File, bool) {
	e, ok := f.packs.lookup(want)
	if !ok {
		return File{}, false
	}
	file := File{Path: e.pack.path, Offset: e.off, Size: e.size}
	if unread {
		file.Unverified = want
		return file, true
	}
	if err := f.verifyEntry(id, e, want, io.Discard); err != nil {
		return File{}, false
	}
	return file, true
}

// unpack copies the crate with sha256 want from a pack to a file of its
// own at dst, verifying it. A damaged entry costs one line on the log and
// is dropped.
func (f *Fetcher) unpack(ctx context.Context, id string, want []byte, dst string) (File, bool) {
	e, ok := f.packs.lookup(want)
	if !ok {
		return File{}, false
	}
	err := publish.File(ctx, dst, 0o644, publish.Options{NoSync: true}, func(w io.Writer) error {
		return f.verifyEntry(id, e, want, w)
	})
	if err != nil {
		return File{}, false
	}
	return File{Path: dst, Size: e.size}, true
}

// verifyEntry copies the crate at e to w and checks it against want.
// Other bytes or fewer are damage: one line on the log, and the entry is
// dropped for good (see packs.drop). A pack that cannot be read now is
// reported too, but only forgotten for this run: the error may pass.
func (f *Fetcher) verifyEntry(id string, e packEntry, want []byte, w io.Writer) error {
	n, got, rerr, werr := copyEntry(e, w)
	if rerr != nil {
		f.log.Printf("%s: damaged cache entry %s at %d (unreadable: %v); fetching it again", id, e.pack.path, e.off, unwrapPathError(rerr))
		f.packs.forget(want, e)
		return rerr
	} else if werr != nil {
		return werr
	}
	if n != e.size || !equalBytes(got, want) {
		f.log.Printf("%s: damaged cache entry %s at %d (%d bytes, sha256 %x); fetching it again", id, e.pack.path, e.off, n, got)
		f.packs.drop(want, e)
		return errors.New("damaged")
	}
	return nil
}

// readErrs keeps the read error of r, apart from those of a writer.
type readErrs struct {
	r   io.Reader
	err error
}

func (r *readErrs) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// copyBody copies a download from r to w in two steps, which matter when
// a hundred downloads wait for their bodies at once:
//
//   - It waits for the first bytes with a small buffer, so that a waiting
//     download holds 2 KiB, not a copy buffer: fresh memory costs a page
//     fault per 4 KiB touched, and the buffers of a hundred waiting
//     downloads were a fifth of a cold prefetch's faults.
//   - Then it copies the rest through a pooled 32 KiB buffer: by then the
//     body has usually arrived. Each read of 4 KiB or more makes Go's
//     HTTP/2 client send a WINDOW_UPDATE (a TLS record and a write: 8 % of
//     a cold prefetch's CPU with 16 KiB reads), so the first read stays
//     under 4 KiB, which sends none, and the rest go in large reads.
//     128 KiB buffers cost more in page faults than they saved in writes.
//   - It writes only full buffers (and the last): a read returns what
//     has arrived, often one HTTP/2 frame (16 KiB from a server that
//     ignores http2MaxFrame), and a write per read was a pwrite per frame.
func copyBody(w io.Writer, r io.Reader) (int64, error) {
	small := smallBufs.Get().(*[]byte)
	n, err := readSome(r, *small)
	if err != nil {
		if n > 0 {
			if _, werr := w.Write((*small)[:n]); werr != nil {
				err = werr
			}
		}
		smallBufs.Put(small)
		if err == io.EOF {
			err = nil
		}
		return int64(n), err
	}
	big := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(big)
	buf := *big
	held := copy(buf, (*small)[:n])
	smallBufs.Put(small)
	var written int64
	for {
		k, err := fill(r, buf[held:])
		held += k
		if held == len(buf) || err != nil && held > 0 {
			if _, werr := w.Write(buf[:held]); werr != nil {
				return written, werr
			}
			written += int64(held)
			held = 0
		}
		if err == io.EOF {
			return written, nil
		} else if err != nil {
			return written, err
		}
	}
}

// fill reads into buf until it is full or reading fails: io.ReadFull,
// with r's error as it is (an io.EOF too).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := readSome(r, buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readSome reads until it has at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for range 100 {
		if n, err := r.Read(buf); n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, 2<<10); return &b }}
	copyBufs  = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// verifyFile reports whether path, whose Lstat is fi, holds the crate id
// with sha256 want. Anything else there is damage and costs one line on
// the log: other bytes (a flipped byte, a truncated file) and a file that
// cannot be read are left for the fetch that follows, whose rename
// replaces them; what a rename cannot replace or must not be read through
// (a directory, a symlink, a FIFO) is discarded first.
func (f *Fetcher) verifyFile(id, path string, fi fs.FileInfo, want []byte) (int64, bool, error) {
	if !fi.Mode().IsRegular() {
		f.log.Printf("%s: damaged cache entry %s (a %s, not a file); fetching it again", id, path, fileKind(fi.Mode()))
		return 0, false, publish.Discard(path)
	}
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		f.log.Printf("%s: damaged cache entry %s (unreadable: %v); fetching it again", id, path, unwrapPathError(err))
		return 0, false, nil
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		f.log.Printf("%s: damaged cache entry %s (unreadable: %v); fetching it again", id, path, unwrapPathError(err))
		return 0, false, nil
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		f.log.Printf("%s: damaged cache entry %s (%d bytes, sha256 %x); fetching it again", id, path, n, got)
		return 0, false, nil
	}
	return n, true, nil
}

// fileKind names a file type for a message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	default:
		return "special file"
	}
}

// storeDir makes dir, the crate store, a directory: something else in its
// place (a file, a dangling symlink) is replaced, with one line on the log.
func (f *Fetcher) storeDir(dir string) error {
	return publish.MakeDir(dir, func() {
		f.log.Printf("cache: %s is damaged (not a directory); replacing it", dir)
	})
}

// cacheKey names a crate in the store: the hex sha2-256 multihash of its
// checksum, which is the checksum in hex after "1220" (the multihash code
// of sha2-256, 0x12, and the digest's length, 0x20). Spelled out rather
// than computed by a multihash library, whose registry of hash functions
// cost every start of the command a millisecond or two.
func cacheKey(sum []byte) string {
	return "1220" + hex.EncodeToString(sum)
}

// parseChecksum decodes a lock checksum: 64 lowercase hex digits.
func parseChecksum(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrNoChecksum
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size || strings.ToLower(s) != s {
		return nil, fmt.Errorf("%w: %q", ErrNoChecksum, s)
	}
	return b, nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
