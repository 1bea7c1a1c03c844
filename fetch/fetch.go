// Package fetch downloads the registry crates a Cargo.lock names and
// verifies each against the lock's checksum while it streams.
//
// The bytes checked are the .crate file exactly as served: its sha256 must
// equal the package's "checksum" in Cargo.lock (equivalently
// `sha256sum NAME-VERSION.crate`). A download is written to a temporary file
// next to its destination, hashed as it is written, compared and only then
// renamed into place, so a failed or mismatched download never leaves a file
// behind.
//
// Where a crate comes from, in order: the content-addressed cache (a pack
// of many crates, <CacheDir>/packs/RANDOM.pack, see pack.go, or a file of
// its own, <CacheDir>/crates/<hex sha2-256 multihash of the checksum>;
// re-verified on every read; a damaged entry is fetched again, one line on
// the log, and dropped or replaced by the new file's rename), cargo's own
// download cache
// ($CARGO_HOME/registry/cache/*/NAME-VERSION.crate, used when its sha256
// matches), then the registry's download URL (see DownloadURL), which may be
// an http(s) URL or a file:// mirror.
//
// HTTP requests are retried with exponential backoff and jitter on
// connection errors, bodies that break or stall mid-stream, 408, 429 (with
// Retry-After honoured up to a bound) and 5xx; a complete body with the
// wrong checksum is retried once. The retry loop covers the download and
// its verification as one step.
//
// The package does not fetch git dependencies (see fetch/git), unpack
// crates or read registry index entries other than config.json.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
)

// Fetcher fetches and verifies crates. It is safe for concurrent use; run
// Crate from an errgroup with SetLimit(Jobs). Close it when done.
type Fetcher struct {
	opts      Options
	dir       string // where verified crates are stored, a file each
	packs     *packs // and where they are stored many to a file
	tempDir   string // "" unless NoCache: removed by Close
	cargoHome string // "" if not used
	userAgent string
	client    *retryablehttp.Client
	base      *http.Client
	log       *log.Logger
	configs   onceMap[registryConfig]

	netrcOnce sync.Once
	netrcPath string
	netrc     []netrcEntry
	gates     *gates
	// cargoCaches is cargoRegistryCaches, listed on first use.
	cargoCaches func() []string
}

// New returns a Fetcher. It creates the cache directory, or a temporary
// directory when there is no cache.
func New(opts Options) (*Fetcher, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = DefaultRetryWaitMin
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = DefaultRetryWaitMax
	}
	opts.RetryWaitMax = max(opts.RetryWaitMax, opts.RetryWaitMin)
	if opts.RetryAfterMax <= 0 {
		opts.RetryAfterMax = DefaultRetryAfterMax
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	for src, dl := range opts.DL {
		u, err := url.Parse(dl)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			return nil, fmt.Errorf("%w: dl %q of %s: not an http(s):// or file:// URL", ErrSource, redact.URL(dl), src)
		}
	}

	f := &Fetcher{opts: opts, userAgent: opts.UserAgent, log: log.New(opts.Log, "fetch: ", 0), gates: newGates(opts.Jobs)}
	if f.userAgent == "" {
		f.userAgent = "cargohash/" + moduleVersion()
	}
	if !opts.NoCargoHome {
		f.cargoHome = opts.CargoHome
		if f.cargoHome == "" {
			f.cargoHome = defaultCargoHome()
		}
	}
	f.cargoCaches = sync.OnceValue(f.cargoRegistryCaches)
	var err error
	f.client, f.base, err = newHTTPClient(&f.opts)
	if err != nil {
		return nil, err
	}
	f.client.RequestLogHook = f.requestHook
	if opts.NoCache || opts.CacheDir == "" {
		f.tempDir, err = os.MkdirTemp("", "cargohash-crates-")
		if err != nil {
			return nil, err
		}
		f.dir = f.tempDir
		f.packs = newPacks(f.tempDir, f.log)
	} else {
		f.dir = filepath.Join(opts.CacheDir, "crates")
		packDir := filepath.Join(opts.CacheDir, "packs")
		for _, dir := range []string{f.dir, packDir} {
			if err := f.storeDir(dir); err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
		}
		f.packs = newPacks(packDir, f.log)
	}
	return f, nil
}

// Close puts the crates this Fetcher downloaded into a pack (Packed) in
// the cache, removes the temporary directory (with NoCache: the crates
// whose files CrateFile returned) and closes idle connections.
func (f *Fetcher) Close() error {
	f.base.CloseIdleConnections()
	err := f.packs.close(f.tempDir != "")
	if f.tempDir != "" {
		return os.RemoveAll(f.tempDir)
	}
	return err
}

// Crate returns the path of the verified .crate file of a registry package,
// fetching it if needed: a file of its own. The file must not be modified;
// with a cache it stays after Close.
func (f *Fetcher) Crate(ctx context.Context, pkg lockfile.Package) (path string, err error) {
	file, err := f.CrateFile(ctx, pkg, 0)
	return file.Path, err
}

// A File is where a crate's .crate bytes are: Size bytes at Offset in the
// file Path (Offset 0 and Path the crate's alone unless CrateFile was
// asked for Packed).
type File struct {
	Path   string
	Offset int64
	Size   int64
	// Unverified is nil, or the sha256 the bytes must have if CrateFile
	// handed over a cached crate unread: a caller who reads the crate
	// anyway verifies it in that one read, and one who finds other bytes
	// must not use them and calls CrateFile without Unread, which
	// verifies the entry, drops it and fetches the crate again.
	Unverified []byte
}

// Open opens the crate's bytes for reading.
func (file File) Open() (io.ReadCloser, error) {
	return openEntry(packEntry{pack: &packFile{path: file.Path}, off: file.Offset, size: file.Size})
}

// OpenFile opens the whole file Path, to read with Section the bytes of
// every File in it: the crates of a pack can share one descriptor.
func (file File) OpenFile() (*os.File, error) { return openRegular(file.Path) }

// Section returns a reader of the crate's bytes in f, the file Path.
func (file File) Section(f io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(f, file.Offset, file.Size)
}

// Handover says how CrateFile may hand a crate over.
type Handover uint8

const (
	// Unread: a crate in the cache is handed over without being read
	// (File.Unverified).
	Unread Handover = 1 << iota
	// Packed: the crate may be a region of a cache pack (File.Offset),
	// and a download of known size goes into this Fetcher's pack, which
	// Close puts in the cache, instead of into a file of its own. Much
	// cheaper than a file per crate; the files are valid until Close.
	Packed
)

// CrateFile is Crate, with the file's size, handed over as how says.
func (f *Fetcher) CrateFile(ctx context.Context, pkg lockfile.Package, how Handover) (File, error) {
	file, err := f.crate(ctx, pkg, how)
	if err != nil {
		if ce := (*CrateError)(nil); !errors.As(err, &ce) {
			err = &CrateError{Crate: pkg.ID(), Err: err}
		}
		f.emit(Event{Kind: Failed, Crate: pkg.ID(), Err: err})
	}
	return file, err
}

// Open returns the verified .crate file of a registry package and its size.
func (f *Fetcher) Open(ctx context.Context, pkg lockfile.Package) (io.ReadCloser, int64, error) {
	crate, err := f.CrateFile(ctx, pkg, Packed)
	if err != nil {
		return nil, 0, err
	}
	file, err := crate.Open()
	if err != nil {
		return nil, 0, &CrateError{Crate: pkg.ID(), Err: err}
	}
	return file, crate.Size, nil
}

func (f *Fetcher) crate(ctx context.Context, pkg lockfile.Package, how Handover) (File, error) {
	id := pkg.ID()
	if pkg.Source.Kind != lockfile.Registry && pkg.Source.Kind != lockfile.Sparse {
		return File{}, fmt.Errorf("%w: %q is not a registry source", ErrSource, pkg.Source.Raw)
	}
	want, err := parseChecksum(pkg.Checksum)
	if err != nil {
		return File{}, err
	}
	to := sink{dst: filepath.Join(f.dir, cacheKey(want)), packed: how&Packed != 0}
	cached := func(file File) (File, error) {
		f.emit(Event{Kind: Done, Crate: id, From: FromCache, Bytes: file.Size, Size: file.Size})
		return file, nil
	}

	// The cache: a pack, then a file of its own.
	if to.packed {
		if file, ok := f.fromPack(id, want, how&Unread != 0); ok {
			return cached(file)
		}
	}
	fi, err := os.Lstat(to.dst)
	switch {
	case err == nil && how&Unread != 0 && fi.Mode().IsRegular():
		return cached(File{Path: to.dst, Size: fi.Size(), Unverified: want})
	case err == nil:
		if size, ok, err := f.verifyFile(id, to.dst, fi, want); err != nil {
			return File{}, fmt.Errorf("cache: %w", err)
		} else if ok {
			return cached(File{Path: to.dst, Size: size})
		}
		// Damaged: with Packed, the fetch that follows goes to a pack,
		// which later runs look at first; otherwise its rename replaces
		// the file. (Not removed here: another process may have replaced
		// it with good bytes meanwhile and handed them out.)
	case !errors.Is(err, fs.ErrNotExist):
		return File{}, fmt.Errorf("cache: %w", err)
	}
	if !to.packed {
		if file, ok := f.unpack(ctx, id, want, to.dst); ok {
			return cached(file)
		}
	}
	if err := ctx.Err(); err != nil {
		return File{}, err
	}

	// Cargo's download cache.
	if file, ok := f.fromCargoHome(ctx, pkg, want, to); ok {
		f.emit(Event{Kind: Done, Crate: id, From: FromCargoHome, Bytes: file.Size, Size: file.Size})
		return file, nil
	}

	// The registry.
	f.emit(Event{Kind: Started, Crate: id, Size: -1})
	rawURL, auth, err := f.resolve(ctx, pkg)
	if err != nil {
		return File{}, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return File{}, fmt.Errorf("%w: download URL %s: %v", ErrSource, redact.URL(rawURL), err)
	}
	var file File
	from := FromNetwork
	switch u.Scheme {
	case "file":
		from = FromMirror
		file, err = f.fromFile(ctx, pkg, u, want, to)
	case "http", "https":
		if f.opts.Offline {
			return File{}, fmt.Errorf("GET %s: %w", redact.Parsed(u), ErrOffline)
		}
		file, err = f.download(withCredential(ctx, auth.credential(), rawURL), pkg, rawURL, f.gates.of(u), want, to)
		err = auth.check(err)
	default:
		return File{}, fmt.Errorf("%w: download URL %s: scheme %q", ErrSource, redact.Parsed(u), u.Scheme)
	}
	if err != nil {
		var ce *ChecksumError
		if errors.As(err, &ce) {
			return File{}, &CrateError{Crate: id, Op: "verifying", Err: ce}
		}
		return File{}, err
	}
	f.emit(Event{Kind: Done, Crate: id, From: from, Bytes: file.Size, Size: file.Size})
	return file, nil
}

// download GETs rawURL into dst, verifying it against want, when the gate
// of its host gives it a turn. A complete body with the wrong checksum is
// retried once.
func (f *Fetcher) download(ctx context.Context, pkg lockfile.Package, rawURL string, gate *gate, want []byte, to sink) (File, error) {
	if err := gate.acquire(ctx); err != nil {
		return File{}, err
	}
	defer gate.release()
	var file File
	mismatches := 0
	ctx = context.WithValue(gate.trace(ctx), attemptKey{}, &attemptState{crate: pkg.ID()})
	err := f.get(ctx, rawURL, func(b *httpBody) error {
		gate.learn(b.resp.ProtoMajor)
		id := pkg.ID()
		total := b.size()
		progress := func(n int64) {
			f.emit(Event{Kind: Progress, Crate: id, Bytes: n, Size: total})
		}
		got, err := f.put(ctx, b, total, want, to, progress)
		if err != nil {
			var ce *ChecksumError
			if errors.As(err, &ce) {
				mismatches++
				if mismatches == 1 {
					err = &retryAgain{err}
				}
			}
			// Not logged: a retry is a Retrying event, the last error
			// the caller's.
			return err
		}
		file = got
		return nil
	})
	return file, err
}

// fromFile copies a file:// mirror's crate to to, verifying it.
func (f *Fetcher) fromFile(ctx context.Context, pkg lockfile.Package, u *url.URL, want []byte, to sink) (File, error) {
	file, err := os.Open(u.Path)
	if err != nil {
		return File{}, &NetError{Op: "open", URL: redact.Parsed(u), Err: unwrapPathError(err)}
	}
	defer file.Close()
	total := regularSize(file)
	r := &ctxReader{ctx: ctx, r: file, op: "read", url: redact.Parsed(u)}
	return f.put(ctx, r, total, want, to, func(n int64) {
		f.emit(Event{Kind: Progress, Crate: pkg.ID(), Bytes: n, Size: total})
	})
}

// fromCargoHome looks for NAME-VERSION.crate in every registry directory of
// cargo's download cache and copies the first one with the right checksum to
// to.
func (f *Fetcher) fromCargoHome(ctx context.Context, pkg lockfile.Package, want []byte, to sink) (File, bool) {
	name := pkg.Name + "-" + pkg.Version + ".crate"
	for _, dir := range f.cargoCaches() {
		p := filepath.Join(dir, name)
		file, err := os.Open(p)
		if err != nil {
			continue
		}
		got, err := f.put(ctx, file, regularSize(file), want, to, nil)
		file.Close()
		if err == nil {
			return got, true
		}
		f.log.Printf("%s: not using %s: %v", pkg.ID(), p, err)
	}
	return File{}, false
}

// regularSize is the size of file if it is a regular file, else -1
// (unknown: see put).
func regularSize(file *os.File) int64 {
	if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() {
		return fi.Size()
	}
	return -1
}

// cargoRegistryCaches lists the registry directories of cargo's download
// cache, once per Fetcher rather than once per crate.
func (f *Fetcher) cargoRegistryCaches() []string {
	if f.cargoHome == "" {
		return nil
	}
	root := filepath.Join(f.cargoHome, "registry", "cache")
	entries, _ := os.ReadDir(root) // none is the common case
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	return dirs
}

// ctxReader stops reading a local file when ctx is done and names the file
// in read errors.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	op  string
	url string
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &NetError{Op: c.op, URL: c.url, Err: unwrapPathError(err)}
	}
	return n, err
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
