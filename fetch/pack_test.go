package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// packWorld is a registry of n crates and their bytes.
func packWorld(t *testing.T, n int) (*fetchtest.Registry, []lockfile.Package, map[string][]byte) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	data := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("c%03d", i)
		// Sizes from a few hundred bytes to ~100 KiB, so regions cross
		// copy buffers.
		body := strings.Repeat(fmt.Sprintf("// %s %d\n", name, i*i), 1+i*i*37%4000)
		d := fetchtest.Crate(name, "1.0.0", map[string]string{"src/lib.rs": body})
		pkgs = append(pkgs, reg.Add(name, "1.0.0", d))
		data[pkgs[i].ID()] = d
	}
	return reg, pkgs, data
}

// readFile reads a File's bytes.
func readFile(t *testing.T, file File) []byte {
	t.Helper()
	r, err := file.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPack: Packed downloads, many at once, land in one pack that Close
// puts in the cache; the next Fetcher finds every crate there without a
// request, in a pack (Packed) or as a file of its own (Crate).
func TestPack(t *testing.T) {
	reg, pkgs, data := packWorld(t, 60)
	cache := t.TempDir()
	f, err := New(Options{CacheDir: cache, NoCargoHome: true, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	files := make([]File, len(pkgs))
	errs := make(chan error, len(pkgs))
	for i, p := range pkgs {
		go func() {
			var err error
			files[i], err = f.CrateFile(context.Background(), p, Packed)
			errs <- err
		}()
	}
	for range pkgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range pkgs {
		if files[i].Path != files[0].Path || files[i].Unverified != nil {
			t.Errorf("%s: %+v, want in the pack %s, verified", p.ID(), files[i], files[0].Path)
		}
		if got := readFile(t, files[i]); !bytes.Equal(got, data[p.ID()]) {
			t.Errorf("%s: %d bytes in the pack differ from the crate's %d", p.ID(), len(got), len(data[p.ID()]))
		}
	}
	onlyEntries(t, filepath.Join(cache, "crates")) // no file per crate
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	packs, _ := os.ReadDir(filepath.Join(cache, "packs"))
	if len(packs) != 1 || !strings.HasSuffix(packs[0].Name(), ".pack") {
		t.Fatalf("packs %v, want one NAME.pack (no temporary name left)", packs)
	}
	if fi, _ := packs[0].Info(); fi.Mode().Perm() != 0o644 {
		t.Errorf("pack mode %v, want 0644", fi.Mode())
	}

	requests := reg.TotalRequests()
	for _, how := range []Handover{Packed, Packed | Unread} {
		g := newTestFetcher(t, Options{CacheDir: cache})
		for _, p := range pkgs {
			file, err := g.CrateFile(context.Background(), p, how)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(file.Path) != filepath.Join(cache, "packs") || (file.Unverified != nil) != (how&Unread != 0) {
				t.Errorf("%s with %d: %+v", p.ID(), how, file)
			}
			if got := readFile(t, file); !bytes.Equal(got, data[p.ID()]) {
				t.Errorf("%s: the pack's bytes differ from the crate's", p.ID())
			}
		}
		g.Close()
	}
	// A file of its own, taken out of the pack.
	g := newTestFetcher(t, Options{CacheDir: cache})
	path, err := g.Crate(context.Background(), pkgs[7])
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, data[pkgs[7].ID()])
	if n := reg.TotalRequests() - requests; n != 0 {
		t.Errorf("%d requests from a warm cache, want 0", n)
	}
	g.Close()
	if packs, _ := os.ReadDir(filepath.Join(cache, "packs")); len(packs) != 1 {
		t.Errorf("packs %v after runs that downloaded nothing, want the one", packs)
	}
}

// TestPackDamage: a damaged crate in this run's pack or in the cache's is
// reported once, fetched again and not found again; the next run reports
// nothing.
func TestPackDamage(t *testing.T) {
	reg, pkgs, data := packWorld(t, 5)
	cache := t.TempDir()
	var log bytes.Buffer
	f := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	files := packAll(t, f, pkgs)
	// This run's own pack, damaged under it.
	reftest.FlipByte(t, files[1].Path, files[1].Offset+files[1].Size/2)
	before := reg.Requests(reg.CratePath(pkgs[1].Name, pkgs[1].Version))
	file, err := f.CrateFile(context.Background(), pkgs[1], Packed)
	if err != nil {
		t.Fatal(err)
	}
	// Fetched again, maybe into the same region: it is free again.
	if got := readFile(t, file); !bytes.Equal(got, data[pkgs[1].ID()]) || reg.Requests(reg.CratePath(pkgs[1].Name, pkgs[1].Version)) != before+1 {
		t.Errorf("damaged entry not fetched again: %+v", file)
	}
	if n := strings.Count(log.String(), "damaged"); n != 1 {
		t.Errorf("%d notes, want 1:\n%s", n, &log)
	}
	// The cache's pack, damaged in another crate.
	pack := closeToOnePack(t, f, cache)
	whole, _ := os.ReadFile(pack)
	at := bytes.Index(whole, data[pkgs[3].ID()])
	if at < 0 {
		t.Fatal("crate 3 not in the pack")
	}
	reftest.FlipByte(t, pack, int64(at+10))
	for run, want := range []int{1, 0} {
		log.Reset()
		before := reg.Requests(reg.CratePath("c003", "1.0.0"))
		g := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
		for _, p := range pkgs {
			file, err := g.CrateFile(context.Background(), p, Packed)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, file); !bytes.Equal(got, data[p.ID()]) {
				t.Errorf("run %d: %s: bytes differ", run, p.ID())
			}
		}
		g.Close()
		if n := strings.Count(log.String(), "damaged"); n != want {
			t.Errorf("run %d: %d notes, want %d:\n%s", run, n, want, &log)
		}
		if n := reg.Requests(reg.CratePath("c003", "1.0.0")) - before; n != want {
			t.Errorf("run %d: %d requests of the damaged crate, want %d", run, n, want)
		}
	}
}

// TestPackUnknownSize: a download without a Content-Length cannot have a
// region of the pack reserved for it; it goes to a file of its own.
func TestPackUnknownSize(t *testing.T) {
	data := fetchtest.Crate("chunked", "1.0.0", map[string]string{"src/lib.rs": strings.Repeat("// x\n", 3000)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data[:100])
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(data[100:])
	}))
	t.Cleanup(srv.Close)
	pkg := lockfile.Package{Name: "chunked", Version: "1.0.0", Checksum: fetchtest.Checksum(data)}
	pkg.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
	cache := t.TempDir()
	f := newTestFetcher(t, Options{CacheDir: cache, DL: map[string]string{CratesIOAlias: srv.URL + "/{crate}"}})
	file, err := f.CrateFile(context.Background(), pkg, Packed)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "crates", "1220"+pkg.Checksum); file.Path != want || file.Offset != 0 || file.Size != int64(len(data)) {
		t.Errorf("%+v, want the file %s", file, want)
	}
	checkFile(t, file.Path, data)
}

// TestPackNoCache: without a cache the pack lives in the temporary
// directory, and Close leaves nothing.
func TestPackNoCache(t *testing.T) {
	_, pkgs, data := packWorld(t, 3)
	f := newTestFetcher(t, Options{NoCache: true})
	var file File
	for _, p := range pkgs {
		var err error
		if file, err = f.CrateFile(context.Background(), p, Packed); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, file); !bytes.Equal(got, data[p.ID()]) {
			t.Errorf("%s: bytes differ", p.ID())
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(file.Path)); !os.IsNotExist(err) {
		t.Errorf("%s left after Close", filepath.Dir(file.Path))
	}
}

// TestPackCompaction: a run that loads compactAt packs merges them into
// one as it closes, verifying every crate; a pack another Fetcher has open
// is left alone; the next run finds every crate without a request.
func TestPackCompaction(t *testing.T) {
	reg, pkgs, data := packWorld(t, compactAt+3)
	cache := t.TempDir()
	var log bytes.Buffer
	fetchOne := func(f *Fetcher, p lockfile.Package) {
		t.Helper()
		file, err := f.CrateFile(context.Background(), p, Packed)
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, file); !bytes.Equal(got, data[p.ID()]) {
			t.Fatalf("%s: bytes differ", p.ID())
		}
	}
	packsNow := func() []string {
		packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack"))
		return packs
	}
	// compactAt runs, a pack each.
	for _, p := range pkgs[:compactAt] {
		f := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
		fetchOne(f, p)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(packsNow()); n != compactAt {
		t.Fatalf("%d packs, want %d", n, compactAt)
	}
	// One of them is damaged; another Fetcher holds them all open.
	for _, pack := range packsNow() {
		whole, _ := os.ReadFile(pack)
		if at := bytes.Index(whole, data[pkgs[5].ID()]); at >= 0 {
			reftest.FlipByte(t, pack, int64(at+100))
		}
	}
	holder := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	fetchOne(holder, pkgs[0])
	f := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	fetchOne(f, pkgs[compactAt])
	f.Close()
	if n := len(packsNow()); n != compactAt+1 {
		t.Errorf("%d packs with another Fetcher holding them, want %d (none merged)", n, compactAt+1)
	}
	log.Reset()
	holder.Close() // the last to close compacts
	f = newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	fetchOne(f, pkgs[compactAt+1])
	f.Close()
	if n := len(packsNow()); n != 3 { // the merged one, and the last two runs'
		t.Errorf("%d packs after compaction, want 3", n)
	}
	if n := strings.Count(log.String(), "damaged"); n != 1 {
		t.Errorf("%d notes, want 1 (the damaged crate, left out):\n%s", n, log.String())
	}
	log.Reset()
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	for _, p := range pkgs[:compactAt+2] {
		fetchOne(g, p)
	}
	g.Close()
	if n := reg.Requests(reg.CratePath(pkgs[5].Name, pkgs[5].Version)); n != 2 { // the crate left out, again
		t.Errorf("%d requests of the crate left out, want 2", n)
	}
	if log.Len() != 0 {
		t.Errorf("log after compaction:\n%s", &log)
	}
}

// TestPackRejectedBytes: the bytes of a download that fails (other bytes
// than the lock pins, a body cut short) do not stay in the pack: a retry
// reuses the region, and what is left unused is cut off or zeroed.
func TestPackRejectedBytes(t *testing.T) {
	reg, pkgs, data := packWorld(t, 4)
	reg.Inject(reg.CratePath("c001", "1.0.0"), fetchtest.Fault{Kind: fetchtest.WrongBytes, Times: -1})
	reg.Inject(reg.CratePath("c002", "1.0.0"), fetchtest.Fault{Kind: fetchtest.Truncate})
	cache := t.TempDir()
	f := newTestFetcher(t, Options{CacheDir: cache})
	for i, p := range pkgs {
		_, err := f.CrateFile(context.Background(), p, Packed)
		if (err != nil) != (i == 1) {
			t.Fatalf("%s: %v", p.ID(), err)
		}
	}
	whole, _ := os.ReadFile(closeToOnePack(t, f, cache))
	var kept int
	for i, p := range pkgs {
		if i != 1 {
			kept += len(data[p.ID()])
		}
	}
	// At most one hole, of zeros, where a failed download was.
	if want := kept + 3*recordSize + trailerSize; len(whole) < want || len(whole) > want+len(data[pkgs[1].ID()]) {
		t.Errorf("pack of %d bytes, want %d (the three good crates, their index and trailer) and at most one hole", len(whole), want)
	}
	wrong := bytes.Clone(data[pkgs[1].ID()])
	if bytes.Contains(whole, wrong[:len(wrong)/2-1]) {
		t.Error("the rejected crate's bytes are in the pack")
	}
}

// onePack is a cache holding one crate, in one pack.
func onePack(t *testing.T) (reg *fetchtest.Registry, pkgs []lockfile.Package, data map[string][]byte, cache, pack string) {
	t.Helper()
	reg, pkgs, data = packWorld(t, 1)
	cache = t.TempDir()
	f := newTestFetcher(t, Options{CacheDir: cache})
	if _, err := f.CrateFile(context.Background(), pkgs[0], Packed); err != nil {
		t.Fatal(err)
	}
	return reg, pkgs, data, cache, closeToOnePack(t, f, cache)
}

// packAll fetches pkgs with f into its pack, in order.
func packAll(t *testing.T, f *Fetcher, pkgs []lockfile.Package) []File {
	t.Helper()
	var files []File
	for _, p := range pkgs {
		file, err := f.CrateFile(context.Background(), p, Packed)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	return files
}

// closeToOnePack closes f and returns the one pack of cache.
func closeToOnePack(t *testing.T, f *Fetcher, cache string) string {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs %v, want one", packs)
	}
	return packs[0]
}

// TestPackForeignVersion: a pack another version of cargohash wrote (a
// sealed trailer with another version) is neither read nor removed.
func TestPackForeignVersion(t *testing.T) {
	_, pkgs, _, cache, pack := onePack(t)
	whole, _ := os.ReadFile(pack)
	tr := whole[len(whole)-trailerSize:]
	copy(tr, "CHPACK02")
	seal(tr)
	os.WriteFile(pack, whole, 0o644)
	var log bytes.Buffer
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	if _, err := g.CrateFile(context.Background(), pkgs[0], Packed); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if _, err := os.Stat(pack); err != nil || log.Len() != 0 {
		t.Errorf("the other version's pack: %v; log:\n%s", err, &log)
	}
}

// TestPackNewerWins: of two packs with one crate, the newer is read, so
// that a damaged copy whose record could not be made a tombstone (a pack
// this user cannot write) is not read, nor reported, again once the crate
// was fetched into a newer pack.
func TestPackNewerWins(t *testing.T) {
	reg, pkgs, data, cache, older := onePack(t)
	newer := filepath.Join(cache, "packs", "0000000000000000.pack") // listed first
	whole, _ := os.ReadFile(older)
	if err := os.WriteFile(newer, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	os.Chtimes(older, past, past)
	reftest.FlipByte(t, older, int64(bytes.Index(whole, data[pkgs[0].ID()])+50))
	os.Chtimes(older, past, past)
	var log bytes.Buffer
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	before := reg.TotalRequests()
	file, err := g.CrateFile(context.Background(), pkgs[0], Packed)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if file.Path != newer || log.Len() != 0 || reg.TotalRequests() != before {
		t.Errorf("read %s, want the newer pack %s; log:\n%s", file.Path, newer, &log)
	}
}

// TestPackBeingCompacted: a pack another process holds exclusively (a
// compaction merging it) is waited for a while, then done without: its
// crate is fetched again, with no line on the log.
func TestPackBeingCompacted(t *testing.T) {
	defer func(d time.Duration) { compactWait = d }(compactWait)
	compactWait = 50 * time.Millisecond
	reg, pkgs, _, cache, pack := onePack(t)
	f, err := os.Open(pack)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
	before := reg.Requests(reg.CratePath(pkgs[0].Name, pkgs[0].Version))
	if _, err := g.CrateFile(context.Background(), pkgs[0], Packed); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(reg.CratePath(pkgs[0].Name, pkgs[0].Version)) - before; n != 1 || log.Len() != 0 {
		t.Errorf("%d requests (want 1), log:\n%s", n, &log)
	}
}

// randomWorld is a registry of n crates of size bytes each that do not
// compress (the registry serves any bytes: they need not be a valid crate).
func randomWorld(t *testing.T, n, size int) (*fetchtest.Registry, []lockfile.Package, map[string][]byte) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	var pkgs []lockfile.Package
	data := map[string][]byte{}
	for i := range n {
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		p := reg.Add(fmt.Sprintf("r%03d", i), "1.0.0", d)
		pkgs = append(pkgs, p)
		data[p.ID()] = d
	}
	return reg, pkgs, data
}

// TestPackCompactionDamagedLastEntry: compaction leaves a damaged crate
// out of the merged pack, after it has copied it. Those bytes were not cut
// off before the index was written: when the damaged crate was the last
// one copied (and larger than the index), the merged pack ended in crate
// bytes, not a trailer, and the next run discarded it whole and fetched
// every crate it merged again (found by review).
func TestPackCompactionDamagedLastEntry(t *testing.T) {
	reg, pkgs, data := randomWorld(t, compactAt, 64<<10)
	cache := t.TempDir()
	for _, p := range pkgs { // one pack per run
		f := newTestFetcher(t, Options{CacheDir: cache})
		if _, err := f.CrateFile(context.Background(), p, Packed); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack")) // sorted
	if len(packs) != compactAt {
		t.Fatalf("%d packs, want %d", len(packs), compactAt)
	}
	// Damage the crate of the pack whose path sorts last: compaction
	// copies it last.
	last := packs[len(packs)-1]
	whole, _ := os.ReadFile(last)
	var damaged lockfile.Package
	for _, p := range pkgs {
		if at := bytes.Index(whole, data[p.ID()]); at >= 0 {
			damaged = p
			reftest.FlipByte(t, last, int64(at+100))
		}
	}
	// A run that reads another crate, then closes: it compacts.
	var logged lockedBuffer
	f := newTestFetcher(t, Options{CacheDir: cache, Log: &logged})
	other := pkgs[0]
	if other.ID() == damaged.ID() {
		other = pkgs[1]
	}
	if _, err := f.CrateFile(context.Background(), other, Packed); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack")); len(packs) != 1 {
		t.Fatalf("packs after compaction: %v, want the merged one", packs)
	}

	// The next run: every crate but the damaged one from the merged pack.
	var logged2 lockedBuffer
	crateRequests := func() (n int) {
		for _, p := range pkgs {
			n += reg.Requests(reg.CratePath(p.Name, p.Version))
		}
		return n
	}
	before := crateRequests()
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &logged2})
	for _, p := range pkgs {
		if _, err := g.CrateFile(context.Background(), p, Packed); err != nil {
			t.Fatal(err)
		}
	}
	g.Close()
	if n := crateRequests() - before; n != 1 || strings.Contains(logged2.String(), "damaged pack") {
		t.Errorf("after compacting around one damaged crate: %d requests (want 1, the damaged crate's); log:\n%s", n, logged2.String())
	}
}

// TestForeignFilesInPacks: files cargohash did not write, dropped in
// packs/ under a name ending in .pack but not of the form cargohash gives
// its packs (16 hex digits), are left alone: they were taken for damaged
// packs and removed (found by review).
func TestForeignFilesInPacks(t *testing.T) {
	_, pkgs, _, cache, _ := onePack(t)
	dir := filepath.Join(cache, "packs")
	notes := filepath.Join(dir, "notes.pack")
	if err := os.WriteFile(notes, []byte("my notes, not a pack\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.pack")
	if err := os.MkdirAll(backup, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(backup, "keep.txt"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged lockedBuffer
	g := newTestFetcher(t, Options{CacheDir: cache, Log: &logged})
	if _, err := g.CrateFile(context.Background(), pkgs[0], Packed); err != nil {
		t.Fatal(err)
	}
	g.Close()
	for _, p := range []string{notes, filepath.Join(backup, "keep.txt")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a file cargohash did not write is gone: %v", err)
		}
	}
}

// TestOwnPackDamagedRegionFreed: the region of a crate of this run's pack
// found damaged is free again, like a failed download's: the crate fetched
// again may take it, and what is left is zeroed or cut off at Close. It
// was kept, so the rejected bytes went into the cache (found by review).
func TestOwnPackDamagedRegionFreed(t *testing.T) {
	_, pkgs, data := randomWorld(t, 3, 16<<10)
	cache := t.TempDir()
	f := newTestFetcher(t, Options{CacheDir: cache})
	files := packAll(t, f, pkgs)
	at := files[1].Offset + files[1].Size/2
	reftest.FlipByte(t, files[1].Path, at)
	if _, err := f.CrateFile(context.Background(), pkgs[1], Packed); err != nil {
		t.Fatal(err)
	}
	pack := closeToOnePack(t, f, cache)
	whole, _ := os.ReadFile(pack)
	bad := bytes.Clone(data[pkgs[1].ID()])
	bad[files[1].Size/2] ^= 0xff
	if bytes.Contains(whole, bad) {
		t.Errorf("the damaged copy of %s (rejected) is in the committed pack %s", pkgs[1].ID(), pack)
	}
}

// TestPackGoneBeforeOpen: a pack another process's compaction removed
// between this run's listing of packs/ and its open is skipped without a
// word, as one removed after the open is (found by review).
func TestPackGoneBeforeOpen(t *testing.T) {
	var buf lockedBuffer
	p := newPacks(t.TempDir(), log.New(&buf, "", 0))
	p.loadPack(filepath.Join(p.dir, "0123456789abcdef.pack"), 0) // listed, then removed
	if buf.String() != "" {
		t.Errorf("a pack compacted away meanwhile is reported:\n%s", buf.String())
	}
}
