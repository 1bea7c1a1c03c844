// Package fetch downloads the registry crates a Cargo.lock names and
// verifies each against the lock's checksum while it streams.
//
// The bytes checked are the .crate file exactly as served: its sha256 must
// equal the package's "checksum" in Cargo.lock (equivalently
// `sha256sum NAME-VERSION.crate`). A download is written to a temporary file
// next to its destination, hashed as it is written, compared, synced and only
// then renamed into place, so a failed or mismatched download never leaves a
// file behind.
//
// Where a crate comes from, in order: the content-addressed cache
// (<CacheDir>/crates/<hex sha2-256 multihash of the checksum>, re-verified on
// every read), cargo's own download cache
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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/multiformats/go-multihash"

	"github.com/cargohash/cargohash/lockfile"
)

// DefaultJobs is the number of concurrent downloads the command line runs
// by default. Crate files are small and crates.io's CDN is fast, so latency,
// not bandwidth, is what parallelism hides.
const DefaultJobs = 16

// Defaults of the retry and watchdog settings.
const (
	DefaultRetries       = 5
	DefaultRetryWaitMin  = 500 * time.Millisecond
	DefaultRetryWaitMax  = 20 * time.Second
	DefaultRetryAfterMax = 60 * time.Second
	DefaultStallTimeout  = 60 * time.Second
	DefaultMaxSize       = 1 << 30
)

// Options configure a Fetcher. The zero value is usable: no cache, no log,
// defaults for everything else.
type Options struct {
	// Jobs is how many downloads the caller runs at once; it sizes the
	// connection pool. 0 means DefaultJobs.
	Jobs int

	// CacheDir is the root of the persistent cache (crates are stored in
	// CacheDir/crates). "" or NoCache: crates are kept in a temporary
	// directory that Close removes.
	CacheDir string
	NoCache  bool

	// Offline forbids network access: crates come from the cache, file://
	// mirrors and CARGO_HOME only; anything else fails with ErrOffline.
	Offline bool

	// CargoHome is where cargo keeps its download cache; "" means
	// $CARGO_HOME, else ~/.cargo. NoCargoHome disables its use.
	CargoHome   string
	NoCargoHome bool

	// DL overrides the dl template of registries, by raw source string
	// from Cargo.lock or by CratesIOAlias ("crates-io", both crates.io
	// sources). An overridden registry's config.json is never fetched.
	// Values are http(s):// or file:// templates with the markers of
	// DownloadURL.
	DL map[string]string

	// GitReadFile reads a file at the HEAD of a git registry index; it is
	// needed for registry+URL sources other than crates.io that have no DL
	// override. The command line wires fetch/git here.
	GitReadFile func(ctx context.Context, url, path string) ([]byte, error)

	// Client is the base HTTP client. nil: a client with proxies from the
	// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and the CA roots of
	// NIX_SSL_CERT_FILE or SSL_CERT_FILE (system roots if neither is set).
	// Its Transport is wrapped with the stall watchdog and retries.
	Client *http.Client

	// UserAgent defaults to "cargohash/<module version>".
	UserAgent string

	// Log receives retry and diagnostic messages; nil discards them.
	Log io.Writer

	// Progress, if set, is called for every Event, from the goroutines
	// that call Crate: it must be safe for concurrent use and quick.
	Progress func(Event)

	// Retries is the number of retries after the first attempt (0:
	// DefaultRetries, negative: none). RetryWaitMin and RetryWaitMax bound
	// the exponential backoff, RetryAfterMax a server's Retry-After.
	Retries       int
	RetryWaitMin  time.Duration
	RetryWaitMax  time.Duration
	RetryAfterMax time.Duration

	// StallTimeout cancels and retries a request that receives nothing —
	// no response headers, then no body bytes — for that long. There is no
	// timeout on a request that keeps making progress.
	StallTimeout time.Duration

	// MaxSize is the largest crate file accepted (default 1 GiB).
	MaxSize int64
}

// EventKind says what an Event reports.
type EventKind int

const (
	// Started: the crate is not in the cache and is being fetched.
	Started EventKind = iota
	// Progress: Bytes of Size (-1 if unknown) have been received.
	Progress
	// Retrying: attempt number Attempt (≥ 2) starts because the previous
	// one failed with Err; Bytes restarts from 0.
	Retrying
	// Done: the crate is verified and stored; From says where it came from.
	Done
	// Failed: Crate returns Err.
	Failed
)

// Origin says where a crate came from.
type Origin string

const (
	FromCache     Origin = "cache"
	FromCargoHome Origin = "cargo-home"
	FromMirror    Origin = "mirror"
	FromNetwork   Origin = "network"
)

// Event is a progress report for the command line's display.
type Event struct {
	Kind  EventKind
	Crate string // NAME@VERSION
	From  Origin // Done only
	Bytes int64  // received so far (Progress), total (Done)
	Size  int64  // announced size, -1 if unknown
	Err   error  // Retrying, Failed
	// Attempt is the number of the attempt starting (Retrying only).
	Attempt int
}

// Fetcher fetches and verifies crates. It is safe for concurrent use; run
// Crate from an errgroup with SetLimit(Jobs). Close it when done.
type Fetcher struct {
	opts      Options
	dir       string // where verified crates are stored
	tempDir   string // "" unless NoCache: removed by Close
	cargoHome string // "" if not used
	userAgent string
	client    *retryablehttp.Client
	base      *http.Client
	log       *log.Logger
	configs   onceMap
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
			return nil, fmt.Errorf("%w: dl %q of %s: not an http(s):// or file:// URL", ErrSource, Redact(dl), src)
		}
	}

	f := &Fetcher{opts: opts, userAgent: opts.UserAgent, log: log.New(opts.Log, "fetch: ", 0)}
	if f.userAgent == "" {
		f.userAgent = "cargohash/" + moduleVersion()
	}
	if !opts.NoCargoHome {
		f.cargoHome = opts.CargoHome
		if f.cargoHome == "" {
			f.cargoHome = defaultCargoHome()
		}
	}
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
	} else {
		f.dir = filepath.Join(opts.CacheDir, "crates")
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	return f, nil
}

// Close removes the temporary directory (with NoCache: the crates whose
// paths Crate returned) and closes idle connections.
func (f *Fetcher) Close() error {
	f.base.CloseIdleConnections()
	if f.tempDir != "" {
		return os.RemoveAll(f.tempDir)
	}
	return nil
}

// Crate returns the path of the verified .crate file of a registry package,
// fetching it if needed. The file must not be modified; with a cache it
// stays after Close.
func (f *Fetcher) Crate(ctx context.Context, pkg lockfile.Package) (path string, err error) {
	path, err = f.crate(ctx, pkg)
	if err != nil {
		if ce := (*CrateError)(nil); !errors.As(err, &ce) {
			err = &CrateError{Crate: pkg.ID(), Err: err}
		}
		f.emit(Event{Kind: Failed, Crate: pkg.ID(), Err: err})
	}
	return path, err
}

// Open returns the verified .crate file of a registry package and its size.
func (f *Fetcher) Open(ctx context.Context, pkg lockfile.Package) (io.ReadCloser, int64, error) {
	path, err := f.Crate(ctx, pkg)
	if err != nil {
		return nil, 0, err
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, &CrateError{Crate: pkg.ID(), Err: err}
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, &CrateError{Crate: pkg.ID(), Err: err}
	}
	return file, fi.Size(), nil
}

func (f *Fetcher) crate(ctx context.Context, pkg lockfile.Package) (string, error) {
	id := pkg.ID()
	if pkg.Source.Kind != lockfile.Registry && pkg.Source.Kind != lockfile.Sparse {
		return "", fmt.Errorf("%w: %q is not a registry source", ErrSource, pkg.Source.Raw)
	}
	want, err := parseChecksum(pkg.Checksum)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(f.dir, cacheKey(want))

	// The cache.
	if size, ok, err := f.verifyFile(dst, want); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	} else if ok {
		f.emit(Event{Kind: Done, Crate: id, From: FromCache, Bytes: size, Size: size})
		return dst, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	// Cargo's download cache.
	if size, ok := f.fromCargoHome(pkg, want, dst); ok {
		f.emit(Event{Kind: Done, Crate: id, From: FromCargoHome, Bytes: size, Size: size})
		return dst, nil
	}

	// The registry.
	f.emit(Event{Kind: Started, Crate: id, Size: -1})
	rawURL, err := f.URL(ctx, pkg)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: download URL %s: %v", ErrSource, Redact(rawURL), err)
	}
	var size int64
	from := FromNetwork
	switch u.Scheme {
	case "file":
		from = FromMirror
		size, err = f.fromFile(ctx, pkg, u, want, dst)
	case "http", "https":
		if f.opts.Offline {
			return "", fmt.Errorf("GET %s: %w", redactURL(u), ErrOffline)
		}
		size, err = f.download(ctx, pkg, rawURL, want, dst)
	default:
		return "", fmt.Errorf("%w: download URL %s: scheme %q", ErrSource, redactURL(u), u.Scheme)
	}
	if err != nil {
		var ce *ChecksumError
		if errors.As(err, &ce) {
			return "", &CrateError{Crate: id, Op: "verifying", Err: ce}
		}
		return "", err
	}
	f.emit(Event{Kind: Done, Crate: id, From: from, Bytes: size, Size: size})
	return dst, nil
}

// download GETs rawURL into dst, verifying it against want. A complete body
// with the wrong checksum is retried once.
func (f *Fetcher) download(ctx context.Context, pkg lockfile.Package, rawURL string, want []byte, dst string) (int64, error) {
	var size int64
	mismatches := 0
	ctx = context.WithValue(ctx, attemptKey{}, &attemptState{crate: pkg.ID()})
	err := f.get(ctx, rawURL, func(b *httpBody) error {
		id := pkg.ID()
		total := b.size()
		progress := func(n int64) {
			f.emit(Event{Kind: Progress, Crate: id, Bytes: n, Size: total})
		}
		n, err := f.store(b, want, dst, progress)
		if err != nil {
			var ce *ChecksumError
			if errors.As(err, &ce) {
				mismatches++
				if mismatches == 1 {
					err = &retryAgain{err}
				}
			}
			f.log.Printf("%s: %v", id, err)
			return err
		}
		size = n
		return nil
	})
	return size, err
}

// fromFile copies a file:// mirror's crate into dst, verifying it.
func (f *Fetcher) fromFile(ctx context.Context, pkg lockfile.Package, u *url.URL, want []byte, dst string) (int64, error) {
	file, err := os.Open(u.Path)
	if err != nil {
		return 0, &NetError{Op: "open", URL: redactURL(u), Err: unwrapPathError(err)}
	}
	defer file.Close()
	total := int64(-1)
	if fi, err := file.Stat(); err == nil {
		total = fi.Size()
	}
	r := &ctxReader{ctx: ctx, r: file, op: "read", url: redactURL(u)}
	return f.store(r, want, dst, func(n int64) {
		f.emit(Event{Kind: Progress, Crate: pkg.ID(), Bytes: n, Size: total})
	})
}

// fromCargoHome looks for NAME-VERSION.crate in every registry directory of
// cargo's download cache and copies the first one with the right checksum to
// dst.
func (f *Fetcher) fromCargoHome(pkg lockfile.Package, want []byte, dst string) (int64, bool) {
	if f.cargoHome == "" {
		return 0, false
	}
	root := filepath.Join(f.cargoHome, "registry", "cache")
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, false
	}
	name := pkg.Name + "-" + pkg.Version + ".crate"
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(root, e.Name(), name)
		file, err := os.Open(p)
		if err != nil {
			continue
		}
		n, err := f.store(file, want, dst, nil)
		file.Close()
		if err == nil {
			return n, true
		}
		f.log.Printf("%s: not using %s: %v", pkg.ID(), p, err)
	}
	return 0, false
}

// store streams r into a temporary file next to dst while hashing it,
// compares the hash with want, syncs and renames the file to dst. On any
// failure no file is left.
func (f *Fetcher) store(r io.Reader, want []byte, dst string, progress func(int64)) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	if progress != nil {
		w = &progressWriter{w: w, fn: progress}
	}
	n, err = io.Copy(w, io.LimitReader(r, f.opts.MaxSize+1))
	if err != nil {
		return n, err
	}
	if n > f.opts.MaxSize {
		return n, fmt.Errorf("larger than %d bytes", f.opts.MaxSize)
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		return n, &ChecksumError{Downloaded: hex.EncodeToString(got), Want: hex.EncodeToString(want)}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return n, err
	}
	if err := tmp.Sync(); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dst)
}

// verifyFile reports whether path holds bytes with sha256 want. A file with
// other bytes is removed; a missing file is not an error.
func (f *Fetcher) verifyFile(path string, want []byte) (int64, bool, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return 0, false, err
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		f.log.Printf("removing corrupt cache entry %s (sha256 %x)", path, got)
		if err := os.Remove(path); err != nil {
			return 0, false, err
		}
		return 0, false, nil
	}
	return n, true, nil
}

func (f *Fetcher) emit(e Event) {
	if f.opts.Progress != nil {
		f.opts.Progress(e)
	}
}

// cacheKey names a crate in the store: the hex sha2-256 multihash of its
// checksum ("1220" followed by the checksum in hex).
func cacheKey(sum []byte) string {
	mh, err := multihash.Encode(sum, multihash.SHA2_256)
	if err != nil { // only for a digest of the wrong length, which parseChecksum rules out
		return hex.EncodeToString(sum)
	}
	return multihash.Multihash(mh).HexString()
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

// DefaultCacheDir is $XDG_CACHE_HOME/cargohash, else ~/.cache/cargohash, or
// "" when neither is usable (no HOME, or a HOME that does not exist, as in a
// Nix builder).
func DefaultCacheDir() string {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "cargohash")
	}
	home := os.Getenv("HOME")
	if !filepath.IsAbs(home) {
		return ""
	}
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		return ""
	}
	return filepath.Join(home, ".cache", "cargohash")
}

// defaultCargoHome is $CARGO_HOME, else ~/.cargo, else "".
func defaultCargoHome() string {
	if c := os.Getenv("CARGO_HOME"); c != "" {
		return c
	}
	if home := os.Getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".cargo")
	}
	return ""
}

// moduleVersion is the version of the main module, "devel" for a build
// from a work tree.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// progressWriter reports the running byte count after each write.
type progressWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
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

// onceMap computes a value once per key, sharing it with concurrent callers.
// Failures caused by a cancelled context are not kept, so a later caller
// with a live context tries again.
type onceMap struct {
	mu sync.Mutex
	m  map[string]*onceEntry
}

type onceEntry struct {
	done      chan struct{}
	val       string
	err       error
	abandoned bool // failed because its caller's context ended; not kept
}

func (o *onceMap) do(ctx context.Context, key string, fn func(context.Context) (string, error)) (string, error) {
	for {
		o.mu.Lock()
		if o.m == nil {
			o.m = make(map[string]*onceEntry)
		}
		e, ok := o.m[key]
		if !ok {
			e = &onceEntry{done: make(chan struct{})}
			o.m[key] = e
			o.mu.Unlock()
			e.val, e.err = fn(ctx)
			if e.err != nil && ctx.Err() != nil {
				o.mu.Lock()
				delete(o.m, key)
				o.mu.Unlock()
				e.abandoned = true
			}
			close(e.done)
			return e.val, e.err
		}
		o.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if e.abandoned {
			continue // the first caller's context ended; try again with ours
		}
		return e.val, e.err
	}
}
