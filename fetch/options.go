package fetch

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/cargohash/cargohash/fetch/cargoconfig"
)

// DefaultJobs is how many crates the command line handles at once by
// default. What reaches the network of them is decided per host by the
// protocol (HTTP2Conns × HTTP2Streams, HTTP1Conns); the rest are cache and mirror reads,
// which need no more than this to keep the disk and CPU busy.
const DefaultJobs = HTTP2Conns * HTTP2Streams

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
	// Jobs is how many crates the caller handles at once (0 means
	// DefaultJobs). It also caps the requests in flight to one host, which
	// are at most HTTP2Conns × HTTP2Streams over HTTP/2 and HTTP1Conns over
	// HTTP/1.1.
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

	// Registries is cargo's configuration of registries
	// (cargoconfig.Load): it names the registries of Cargo.lock's sources
	// and holds their tokens. nil: no token is ever sent. See auth.go for
	// when a credential is sent, and where.
	Registries *cargoconfig.Config

	// Netrc is the netrc file whose credentials go to the http(s) mirrors
	// of DL, per host. "": $NETRC, else ~/.netrc.
	Netrc string

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
