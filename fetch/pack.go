package fetch

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/cargohash/cargohash/internal/osfile"
	"github.com/cargohash/cargohash/internal/publish"
)

// Packs: the crates a prefetch downloads go into one file per run, not a
// file each. Creating a file is the costly part of caching a crate: an
// inode, a directory entry, a rename; on ext4 without a journal each
// creation also skips every inode freed in the last minute, so a cold run
// after a cache was removed grew quadratically with its crates (1,500
// crates: 1.22 s of which half was file creation). A run writes its pack
// under a temporary name (locked, swept when a killed run leaves it) and
// renames it into <CacheDir>/packs/RANDOM.pack when the Fetcher closes.
//
// A pack is the crates' bytes, each at an offset, then an index and a
// trailer:
//
//	record  (56 bytes): sha256 of the crate (32), offset (8), size (8),
//	                    the first 8 bytes of the sha256 of the 48 before
//	trailer (32 bytes): "CHPACK01", offset of the index (8), records (8),
//	                    the first 8 bytes of the sha256 of the 24 before
//
// integers little-endian. A record of zeros is a crate found damaged and
// dropped (tombstone). The crate bytes are re-verified on every read, as
// a file of their own would be: damaged bytes cost one line on the log,
// the record becomes a tombstone and the crate is fetched again. A damaged
// index record is dropped the same way; a pack without a valid trailer is
// discarded whole, with one line.
const (
	packSuffix    = ".pack"
	packMagic     = "CHPACK01"
	recordSize    = 56
	trailerSize   = 32
	checkSize     = 8
	maxPackRecord = 1 << 24 // records in one pack: a sanity bound, not a limit anyone meets
)

// packEntry is where a crate lies: size bytes at off in pack's file.
type packEntry struct {
	pack      *packFile
	rec       int // record number in the index; -1 in this run's pack, not yet written
	off, size int64
}

type packFile struct {
	path     string
	indexOff int64
}

// packs is a Fetcher's view of the packs in one directory, loaded on first
// use, and this run's pack, created on first write.
type packs struct {
	dir string
	log *log.Logger

	load  sync.Once
	mu    sync.Mutex
	index map[[sha256.Size]byte]packEntry

	w    *publish.Temp
	wp   *packFile
	end  int64
	own  map[[sha256.Size]byte]packEntry // this run's entries, written at close
	werr error
}

func newPacks(dir string, logger *log.Logger) *packs {
	return &packs{dir: dir, log: logger, index: map[[sha256.Size]byte]packEntry{}, own: map[[sha256.Size]byte]packEntry{}}
}

// lookup returns the entry of the crate with sha256 sum.
func (p *packs) lookup(sum []byte) (packEntry, bool) {
	p.load.Do(p.loadAll)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.index[[sha256.Size]byte(sum)]
	return e, ok
}

// loadAll reads the index of every pack in the directory. What cannot be
// read is left alone; what is damaged is dropped, one line per pack.
func (p *packs) loadAll() {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return // not made yet, or damaged: New and reserve say so
	}
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, packSuffix) && !strings.HasPrefix(name, ".") {
			p.loadPack(filepath.Join(p.dir, name), e.Type())
		}
	}
}

func (p *packs) loadPack(path string, mode fs.FileMode) {
	damaged := func(why string, args ...any) {
		p.log.Printf("cache: damaged pack %s (%s); discarding it", path, fmt.Sprintf(why, args...))
		publish.Discard(path)
	}
	if !mode.IsRegular() { // not opened: a FIFO would block
		damaged("a %s", fileKind(mode))
		return
	}
	f, err := osfile.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		damaged("a symlink")
		return
	} else if err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, unwrapPathError(err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		p.log.Printf("cache: not using pack %s: %v", path, err)
		return
	case !fi.Mode().IsRegular():
		f.Close()
		damaged("a %s", fileKind(fi.Mode()))
		return
	case fi.Size() < trailerSize:
		damaged("%d bytes", fi.Size())
		return
	}
	var tr [trailerSize]byte
	if _, err := f.ReadAt(tr[:], fi.Size()-trailerSize); err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, unwrapPathError(err))
		return
	}
	indexOff := int64(binary.LittleEndian.Uint64(tr[8:]))
	count := binary.LittleEndian.Uint64(tr[16:])
	switch {
	case string(tr[:8]) != packMagic || !checked(tr[:]):
		damaged("no pack trailer")
		return
	case count > maxPackRecord || indexOff < 0 || indexOff+int64(count)*recordSize != fi.Size()-trailerSize:
		damaged("index of %d records at %d does not fit %d bytes", count, indexOff, fi.Size())
		return
	}
	index := make([]byte, count*recordSize)
	if _, err := f.ReadAt(index, indexOff); err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, unwrapPathError(err))
		return
	}
	pf := &packFile{path: path, indexOff: indexOff}
	var bad []int
	p.mu.Lock()
	for i := range int(count) {
		rec := index[i*recordSize : (i+1)*recordSize]
		if isZero(rec) {
			continue // a tombstone
		}
		off := int64(binary.LittleEndian.Uint64(rec[32:]))
		size := int64(binary.LittleEndian.Uint64(rec[40:]))
		if !checked(rec) || off < 0 || size < 0 || off > indexOff-size {
			bad = append(bad, i)
			continue
		}
		key := [sha256.Size]byte(rec[:32])
		if _, dup := p.index[key]; !dup {
			p.index[key] = packEntry{pack: pf, rec: i, off: off, size: size}
		}
	}
	p.mu.Unlock()
	if len(bad) > 0 {
		p.log.Printf("cache: damaged pack %s (%d of %d index records); fetching those crates again", path, len(bad), count)
		tombstone(pf, bad...)
	}
}

// drop forgets a damaged entry and, in a pack already written, makes its
// record a tombstone, so that the next run neither reads nor reports it.
func (p *packs) drop(sum []byte, e packEntry) {
	key := [sha256.Size]byte(sum)
	p.mu.Lock()
	if p.index[key] == e {
		delete(p.index, key)
	}
	if p.own[key] == e {
		delete(p.own, key)
	}
	p.mu.Unlock()
	if e.rec >= 0 {
		tombstone(e.pack, e.rec)
	}
}

// tombstone zeroes records of pf's index (best effort: a pack that cannot
// be written is read, and reported, again next time).
func tombstone(pf *packFile, recs ...int) {
	f, err := osfile.OpenFile(pf.path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer f.Close()
	var zero [recordSize]byte
	for _, i := range recs {
		f.WriteAt(zero[:], pf.indexOff+int64(i)*recordSize)
	}
}

// reserve returns this run's pack, creating it on first use, and the
// offset of size bytes in it that are the caller's to write.
func (p *packs) reserve(size int64) (*os.File, *packFile, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil {
		if p.werr != nil {
			return nil, nil, 0, p.werr
		}
		t, err := publish.CreateTemp(filepath.Join(p.dir, fmt.Sprintf("%016x%s", rand.Uint64(), packSuffix)))
		if err != nil {
			p.werr = err
			return nil, nil, 0, err
		}
		p.w, p.wp = t, &packFile{path: t.Name(), indexOff: -1}
	}
	off := p.end
	p.end += size
	return p.w.File, p.wp, off, nil
}

// add makes the verified crate with sha256 sum at off in this run's pack
// an entry.
func (p *packs) add(sum []byte, pf *packFile, off, size int64) {
	e := packEntry{pack: pf, rec: -1, off: off, size: size}
	key := [sha256.Size]byte(sum)
	p.mu.Lock()
	p.index[key] = e
	p.own[key] = e
	p.mu.Unlock()
}

// close writes this run's index and trailer and renames its pack into
// place; with discard, or when nothing was added, it removes it.
func (p *packs) close(discard bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil {
		return nil
	}
	t := p.w
	p.w, p.werr = nil, errors.New("the fetcher is closed")
	if discard || len(p.own) == 0 {
		t.Abort()
		return nil
	}
	type keyed struct {
		sum [sha256.Size]byte
		packEntry
	}
	entries := make([]keyed, 0, len(p.own))
	for k, e := range p.own {
		entries = append(entries, keyed{k, e})
	}
	slices.SortFunc(entries, func(a, b keyed) int { return cmp.Compare(a.off, b.off) })
	var buf bytes.Buffer
	for _, e := range entries {
		rec := make([]byte, recordSize)
		copy(rec, e.sum[:])
		binary.LittleEndian.PutUint64(rec[32:], uint64(e.off))
		binary.LittleEndian.PutUint64(rec[40:], uint64(e.size))
		seal(rec)
		buf.Write(rec)
	}
	tr := make([]byte, trailerSize)
	copy(tr, packMagic)
	binary.LittleEndian.PutUint64(tr[8:], uint64(p.end))
	binary.LittleEndian.PutUint64(tr[16:], uint64(len(entries)))
	seal(tr)
	buf.Write(tr)
	if _, err := t.WriteAt(buf.Bytes(), p.end); err != nil {
		t.Abort()
		return fmt.Errorf("cache: %w", err)
	}
	if err := t.Commit(0o644); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// seal writes the check of b (its last checkSize bytes) over what comes before.
func seal(b []byte) {
	sum := sha256.Sum256(b[:len(b)-checkSize])
	copy(b[len(b)-checkSize:], sum[:checkSize])
}

// checked reports whether b's last checkSize bytes are its seal.
func checked(b []byte) bool {
	sum := sha256.Sum256(b[:len(b)-checkSize])
	return bytes.Equal(b[len(b)-checkSize:], sum[:checkSize])
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// regionWriter writes at off in f, never past end.
type regionWriter struct {
	f        *os.File
	off, end int64
}

func (w *regionWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > w.end-w.off {
		return 0, fmt.Errorf("more bytes than announced (%d)", w.end-w.off)
	}
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	return n, err
}

// sectionReadCloser is a crate inside a pack, open for reading.
type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// openEntry opens the crate at e.
func openEntry(e packEntry) (io.ReadCloser, error) {
	f, err := osfile.OpenFile(e.pack.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return sectionReadCloser{io.NewSectionReader(f, e.off, e.size), f}, nil
}
