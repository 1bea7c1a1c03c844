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
	"time"

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
//
// A Fetcher holds a shared lock (flock) on every pack it loaded until it
// closes; the last to close after loading compactAt packs merges the small
// ones nobody else holds (see compact).
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
	// f holds a shared lock on a loaded pack for as long as the Fetcher
	// is open, so that no other process's compaction removes it under
	// this one (nil for this run's pack).
	f     *os.File
	size  int64
	mtime int64 // of a loaded pack: of two with one crate, the newer wins
}

// packs is a Fetcher's view of the packs in one directory, loaded on first
// use, and this run's pack, created on first write.
type packs struct {
	dir string
	log *log.Logger

	load   sync.Once
	mu     sync.Mutex
	index  map[[sha256.Size]byte]packEntry
	loaded []*packFile

	w    *publish.Temp
	wp   *packFile
	end  int64
	own  map[[sha256.Size]byte]packEntry // this run's entries, written at close
	free []region                        // of this run's pack: failed downloads'
	werr error                           // once closed
}

// region is size bytes at off.
type region struct{ off, size int64 }

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
		if isPackName(e.Name()) {
			p.loadPack(filepath.Join(p.dir, e.Name()), e.Type())
		}
	}
}

// isPackName reports whether name is one createPack gives: 16 hex digits
// and packSuffix. Anything else in the directory is not cargohash's to
// read or remove (a user's notes.pack, a backup.pack directory).
func isPackName(name string) bool {
	hexPart, ok := strings.CutSuffix(name, packSuffix)
	if !ok || len(hexPart) != 16 {
		return false
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
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
	f, err := openRegular(path)
	if errors.Is(err, syscall.ELOOP) {
		damaged("a symlink")
		return
	} else if errors.Is(err, fs.ErrNotExist) {
		return // compacted away since the directory was listed
	} else if err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, unwrapPathError(err))
		return
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	// A compaction holds its packs' locks exclusively until it has
	// removed them: wait (a while at most), then skip a pack that is gone.
	if err := lockShared(f, compactWait); errors.Is(err, syscall.EWOULDBLOCK) {
		return // still being merged: its crates are fetched again, this once
	} else if err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, err)
		return
	}
	// A discarded pack is renamed aside while still open here: a rename
	// does not need it closed.
	fi, err := f.Stat()
	if err != nil {
		p.log.Printf("cache: not using pack %s: %v", path, err)
		return
	}
	switch st, ok := fi.Sys().(*syscall.Stat_t); {
	case ok && st.Nlink == 0:
		return // compacted away
	case !fi.Mode().IsRegular():
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
	case string(tr[:6]) == packMagic[:6] && string(tr[:8]) != packMagic && checked(tr[:]):
		return // another version's pack: not this one's to read, nor to remove
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
	pf := &packFile{path: path, indexOff: indexOff, f: f, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	keep = true
	var bad []int
	p.mu.Lock()
	p.loaded = append(p.loaded, pf)
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
		// Of two packs with one crate, the newer: if the older's copy was
		// found damaged and its record could not be made a tombstone (a
		// pack this user cannot write), the newer holds the good copy.
		key := [sha256.Size]byte(rec[:32])
		if old, dup := p.index[key]; !dup || old.pack.mtime < pf.mtime {
			p.index[key] = packEntry{pack: pf, rec: i, off: off, size: size}
		}
	}
	p.mu.Unlock()
	if len(bad) > 0 {
		p.log.Printf("cache: damaged pack %s (%d of %d index records); fetching those crates again", path, len(bad), count)
		tombstone(pf, bad...)
	}
}

// lockShared takes a shared lock on f, waiting at most wait for an
// exclusive holder (EWOULDBLOCK after that).
func lockShared(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drop forgets a damaged entry and, in a pack already written, makes its
// record a tombstone, so that the next run neither reads nor reports it;
// in this run's pack, not written yet, its region is free again, zeroed
// or cut off when the pack is written (clearFree), like a failed
// download's.
func (p *packs) drop(sum []byte, e packEntry) {
	if own := p.forget(sum, e); own {
		p.release(e.off, e.size) // once: two readers may find the damage
	} else if e.rec >= 0 {
		tombstone(e.pack, e.rec)
	}
}

// forget forgets an entry for this run, and reports whether it was one of
// this run's pack that this call took out.
func (p *packs) forget(sum []byte, e packEntry) (own bool) {
	key := [sha256.Size]byte(sum)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index[key] == e {
		delete(p.index, key)
	}
	if p.own[key] == e {
		delete(p.own, key)
		return true
	}
	return false
}

// tombstone zeroes records of pf's index (best effort: where the pack
// cannot be written, the newer pack with the crate fetched again wins;
// see loadPack). Opened non-blocking: a FIFO put in its place must not
// hang the run.
func tombstone(pf *packFile, recs ...int) {
	f, err := os.OpenFile(pf.path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
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
	if p.werr != nil {
		return nil, nil, 0, p.werr
	}
	if p.w == nil {
		t, err := p.createPack()
		if err != nil {
			return nil, nil, 0, err // the next download tries again
		}
		p.w, p.wp = t, &packFile{path: t.Name(), indexOff: -1, f: t.File}
	}
	for i, r := range p.free { // a failed download's region (a retry's, often)
		if r.size >= size {
			p.free[i] = region{r.off + size, r.size - size}
			return p.w.File, p.wp, r.off, nil
		}
	}
	off := p.end
	p.end += size
	return p.w.File, p.wp, off, nil
}

// createPack creates a new pack, under its temporary name until Commit.
func (p *packs) createPack() (*publish.Temp, error) {
	return publish.CreateTemp(filepath.Join(p.dir, fmt.Sprintf("%016x%s", rand.Uint64(), packSuffix)))
}

// release gives back a region whose download failed: the next download
// that fits reuses it, and what is left unused when the pack is written
// holds zeros, or is cut off at its end.
func (p *packs) release(off, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, region{off, size})
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
// place; with discard, or when nothing was added, it removes it. Then it
// compacts the packs it loaded if there are many (see compact) and lets
// go of them.
func (p *packs) close(discard bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.commit(discard)
	if !discard && len(p.loaded) >= compactAt {
		p.compact()
	}
	for _, pf := range p.loaded {
		pf.f.Close()
	}
	p.loaded = nil
	return err
}

// commit writes this run's pack (see close); p.mu is held.
func (p *packs) commit(discard bool) error {
	if p.w == nil {
		return nil
	}
	t := p.w
	p.w, p.werr = nil, errors.New("the fetcher is closed")
	if discard || len(p.own) == 0 {
		t.Abort()
		return nil
	}
	entries := make([]keyedEntry, 0, len(p.own))
	for k, e := range p.own {
		entries = append(entries, keyedEntry{k, e})
	}
	if err := p.clearFree(t.File); err != nil {
		t.Abort()
		return fmt.Errorf("cache: %w", err)
	}
	if err := writeIndex(t.File, p.end, entries); err != nil {
		t.Abort()
		return fmt.Errorf("cache: %w", err)
	}
	if err := t.Commit(0o644); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// clearFree cuts the unused regions at the end of this run's pack off and
// overwrites the others with zeros: no rejected byte stays in the cache.
// p.mu is held.
func (p *packs) clearFree(f *os.File) error {
	slices.SortFunc(p.free, func(a, b region) int { return cmp.Compare(b.off, a.off) }) // last first
	zeros := make([]byte, 32<<10)
	for _, r := range p.free {
		if r.size == 0 {
			continue
		}
		if r.off+r.size == p.end {
			p.end = r.off
			continue
		}
		for off := r.off; off < r.off+r.size; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), r.off+r.size-off)], off); err != nil {
				return err
			}
		}
	}
	p.free = nil
	return f.Truncate(p.end)
}

type keyedEntry struct {
	sum [sha256.Size]byte
	packEntry
}

// writeIndex writes the index of entries (which lie before end) and the
// trailer at end of f, and cuts f off after them: a pack ends with its
// trailer, whatever was written past end before (a compaction copies a
// crate before it knows the crate is damaged, and leaves it out).
func writeIndex(f *os.File, end int64, entries []keyedEntry) error {
	slices.SortFunc(entries, func(a, b keyedEntry) int { return cmp.Compare(a.off, b.off) })
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
	binary.LittleEndian.PutUint64(tr[8:], uint64(end))
	binary.LittleEndian.PutUint64(tr[16:], uint64(len(entries)))
	seal(tr)
	buf.Write(tr)
	if _, err := f.WriteAt(buf.Bytes(), end); err != nil {
		return err
	}
	return f.Truncate(end + int64(buf.Len()))
}

// Compaction: each run that downloads adds a pack, and every run reads
// the index of every pack (an open, a lock and two reads each). When a
// run closes having loaded compactAt packs or more, it merges those under
// compactBelow bytes that no other process has open into one, so that
// their number stays small and the large ones are not copied again and
// again.
const (
	compactAt    = 16
	compactBelow = 64 << 20
)

// compactWait bounds how long a run waits for another process's
// compaction of a pack (at most compactAt × compactBelow bytes copied,
// about a second) before it does without that pack.
var compactWait = 3 * time.Second

// compact merges the small loaded packs that it can lock exclusively
// (nobody else has them open) into a new pack, renamed into place before
// they are removed; their crates are verified as they are copied, and a
// damaged one is left out with one line. Best effort: on any failure the
// packs stay as they are. p.mu is held.
func (p *packs) compact() {
	var merge []*packFile
	for _, pf := range p.loaded {
		if pf.size < compactBelow && syscall.Flock(int(pf.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			merge = append(merge, pf)
		}
	}
	if len(merge) < 2 {
		return
	}
	from := map[*packFile]bool{}
	for _, pf := range merge {
		from[pf] = true
	}
	var entries []keyedEntry
	for k, e := range p.index {
		if from[e.pack] {
			entries = append(entries, keyedEntry{k, e})
		}
	}
	slices.SortFunc(entries, func(a, b keyedEntry) int {
		return cmp.Or(strings.Compare(a.pack.path, b.pack.path), cmp.Compare(a.off, b.off))
	})
	t, err := p.createPack()
	if err != nil {
		return
	}
	var end int64
	kept := entries[:0]
	for _, e := range entries {
		n, got, rerr, werr := copyEntry(e.packEntry, &regionWriter{f: t.File, off: end, end: end + e.size})
		if werr != nil {
			t.Abort() // writing the new pack failed: leave everything as it is
			return
		}
		if rerr != nil || n != e.size || !bytes.Equal(got, e.sum[:]) {
			p.log.Printf("cache: damaged cache entry %s at %d (%d bytes, sha256 %x); leaving it out of the compacted pack", e.pack.path, e.off, n, got)
			continue
		}
		kept = append(kept, keyedEntry{e.sum, packEntry{off: end, size: e.size}})
		end += e.size
	}
	if err := writeIndex(t.File, end, kept); err != nil {
		t.Abort()
		return
	}
	if err := t.Commit(0o644); err != nil {
		return
	}
	for _, pf := range merge {
		// Still locked: a reader that opens it now waits for the lock,
		// then finds it removed (loadPack) and reads the new pack.
		os.Remove(pf.path)
	}
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

// copyEntry copies the crate at e to w and returns the bytes copied and
// their sha256, and the error of opening or reading the pack (rerr) apart
// from that of writing w (werr).
func copyEntry(e packEntry, w io.Writer) (n int64, sum []byte, rerr, werr error) {
	r, err := openEntry(e)
	if err != nil {
		return 0, nil, err, nil
	}
	defer r.Close()
	h := sha256.New()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	rr := &readErrs{r: r}
	n, err = io.CopyBuffer(io.MultiWriter(w, h), rr, *buf)
	if rr.err != nil {
		return n, nil, rr.err, nil
	}
	return n, h.Sum(nil), nil, err
}

// openEntry opens the crate at e, through the pack's descriptor if the
// Fetcher holds one.
func openEntry(e packEntry) (io.ReadCloser, error) {
	if e.pack.f != nil {
		return sectionReadCloser{io.NewSectionReader(e.pack.f, e.off, e.size), io.NopCloser(nil)}, nil
	}
	f, err := openRegular(e.pack.path)
	if err != nil {
		return nil, err
	}
	return sectionReadCloser{io.NewSectionReader(f, e.off, e.size), f}, nil
}

// openRegular opens a crate file or pack for reading, without following a
// symlink and without the network poller (osfile).
func openRegular(path string) (*os.File, error) {
	return osfile.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
