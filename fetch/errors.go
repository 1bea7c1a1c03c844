package fetch

import (
	"errors"
	"fmt"
	"strings"
)

// Errors are classified with errors.Is so that the command line can map them
// to exit codes in one place:
//
//   - ErrFetch (exit 3): the bytes could not be obtained — a network failure
//     after retries, an HTTP error status, a stalled transfer, a missing file
//     in a file:// mirror, or ErrOffline.
//   - ErrNoChecksum and ErrSource (exit 2): the lock or the options are wrong.
//   - *ChecksumError: the bytes were obtained but are not the ones the lock
//     names. It is neither of the above; the caller decides.
//   - context.Canceled / context.DeadlineExceeded: passed through.
var (
	ErrFetch = errors.New("fetch failed")
	// ErrOffline is returned, wrapped, when Options.Offline is set and a
	// crate is neither in the cache nor in a local mirror or CARGO_HOME.
	// errors.Is(err, ErrFetch) holds for it too.
	ErrOffline error = offlineError{}
	// ErrNoChecksum: the lock gives no checksum for a registry crate (or an
	// invalid one), so its download cannot be verified.
	ErrNoChecksum = errors.New("no valid checksum in Cargo.lock")
	// ErrSource: no download URL can be derived for the package's source
	// (not a registry, a malformed --registry-dl override, a git index with
	// no git support wired in).
	ErrSource = errors.New("unsupported source")
	// ErrStalled is the cause of a transfer that made no progress for
	// Options.StallTimeout. It is retried like a broken connection.
	ErrStalled = errors.New("transfer stalled")
)

type offlineError struct{}

func (offlineError) Error() string        { return "not in the cache and offline" }
func (offlineError) Is(target error) bool { return target == ErrFetch }

// CrateError is the error of one crate, rendered "NAME@VERSION: err" or, for
// a failed verification, "verifying NAME@VERSION: err".
type CrateError struct {
	Crate string // NAME@VERSION
	Op    string // "" or "verifying"
	Err   error
}

func (e *CrateError) Error() string {
	if e.Op != "" {
		return e.Op + " " + e.Crate + ": " + e.Err.Error()
	}
	return e.Crate + ": " + e.Err.Error()
}

func (e *CrateError) Unwrap() error { return e.Err }

// ChecksumError says that a complete download is not the file Cargo.lock
// names.
type ChecksumError struct {
	Downloaded string // lowercase hex sha256 of the bytes received
	Want       string // lowercase hex sha256 from Cargo.lock
}

func (e *ChecksumError) Error() string {
	return "checksum mismatch\n\tdownloaded: " + e.Downloaded + "\n\tCargo.lock: " + e.Want
}

// HTTPError is a response with a status other than 200 OK.
type HTTPError struct {
	Method     string
	URL        string // redacted
	StatusCode int
	Status     string // "404 Not Found"
	Body       []byte // at most the first 64 KiB
	Attempts   int    // requests made, ≥ 1
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	if s := bodySnippet(e.Body); s != "" {
		msg += ": " + s
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (gave up after %d attempts)", e.Attempts)
	}
	return msg
}

func (e *HTTPError) Is(target error) bool { return target == ErrFetch }

// bodySnippet is the first line of an error body, if it looks like text.
func bodySnippet(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") { // HTML error pages say nothing useful
		return ""
	}
	for _, r := range s {
		if r < 0x20 || r == 0xfffd {
			return ""
		}
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// NetError is a failed transfer: a connection that could not be made or
// broke, a stalled or truncated body, or a file:// mirror file that could not
// be read. Op is the HTTP method, or "open"/"read" for files.
type NetError struct {
	Op       string
	URL      string // redacted
	Err      error
	Attempts int
}

func (e *NetError) Error() string {
	msg := e.Op + " " + e.URL + ": " + e.Err.Error()
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (gave up after %d attempts)", e.Attempts)
	}
	return msg
}

func (e *NetError) Unwrap() error        { return e.Err }
func (e *NetError) Is(target error) bool { return target == ErrFetch }
