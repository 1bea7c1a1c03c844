package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/cargohash/cargohash/internal/redact"
	"github.com/hashicorp/go-retryablehttp"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// The HTTP stack, from the outside in:
//
//	retryablehttp.Client   retries (backoff with jitter, Retry-After) around
//	                       the request AND the consumption of its body: a
//	                       response handler downloads and verifies, and a
//	                       body that breaks mid-stream is retried like a
//	                       failed connection
//	http.Client            redirects (retryablehttp's copy cannot close
//	                       the connections: keepingConns)
//	authTransport          a registry's credential, to its origin only
//	                       (auth.go)
//	watchdog               cancels a request that makes no progress for
//	                       StallTimeout (no whole-request timeout)
//	h2Conns                one HTTP/2 connection per https host (two when
//	                       its streams are not enough), made with the
//	                       Transport's NewClientConn, that tells the gate
//	                       how many streams the server allows (h2conn.go)
//	http.Transport         proxies from the environment, CA roots from
//	                       NIX_SSL_CERT_FILE / SSL_CERT_FILE, pooled
//	                       connections: HTTP/2 when the server offers it
//	                       (one connection, many streams), else up to
//	                       HTTP1Conns keep-alive connections per host (the
//	                       gates in gate.go decide how many requests run)

// newHTTPClient builds the retrying client of a Fetcher.
func newHTTPClient(opts *Options) (*retryablehttp.Client, *http.Client, error) {
	var base *http.Client
	if opts.Client != nil {
		c := *opts.Client
		if c.Transport == nil {
			c.Transport = http.DefaultTransport
		}
		base = &c
	} else {
		t, err := defaultTransport(opts.Jobs, opts.StallTimeout)
		if err != nil {
			return nil, nil, err
		}
		base = &http.Client{Transport: newH2Conns(t)}
	}
	base.Transport = &authTransport{next: &watchdog{next: base.Transport, timeout: opts.StallTimeout}}

	rc := &retryablehttp.Client{
		HTTPClient:   keepingConns(base),
		Logger:       redactingLogger{log.New(opts.Log, "fetch: ", 0)},
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     opts.Retries,
		CheckRetry:   checkRetry,
		Backoff:      backoffFunc(opts.RetryAfterMax),
		ErrorHandler: errorHandler,
	}
	return rc, base, nil
}

// keepingConns is c without its CloseIdleConnections, for retryablehttp,
// which calls it each time a request fails for good: one missing crate
// (a 404) retired every HTTP/2 connection of the host through h2Conns,
// busy ones too, so that the next requests went on new connections while
// the old ones drained. The Fetcher closes its connections when it is
// done (Close).
func keepingConns(c *http.Client) *http.Client {
	k := *c
	k.Transport = roundTripOnly{c.Transport}
	return &k
}

// roundTripOnly is a RoundTripper with no other method.
type roundTripOnly struct{ http.RoundTripper }

// defaultTransport is http.DefaultTransport with proxies from the
// environment, the CA roots of NIX_SSL_CERT_FILE or SSL_CERT_FILE (the
// system's otherwise), at most as many connections per host as the gates
// let HTTP/1.1 requests run (a request may be handed a connection another
// freed while its own is still being dialed), all kept when idle, unread
// HTTP/2 data bounded per connection (http2ConnWindow), and HTTP/2
// connections checked after stall of silence: a PING, and the connection
// closed when no answer comes within http2PingTimeout (at most stall).
// Without that a connection whose server stopped answering stayed open,
// holding the streams of the requests the watchdog cancelled.
func defaultTransport(jobs int, stall time.Duration) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.MaxConnsPerHost = min(jobs, HTTP1Conns)
	t.MaxIdleConnsPerHost = t.MaxConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, 4*t.MaxIdleConnsPerHost)
	roots, err := certPool()
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	t.ForceAttemptHTTP2 = true
	t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerConnection: http2ConnWindow, MaxReadFrameSize: http2MaxFrame,
		SendPingTimeout: stall, PingTimeout: min(stall, http2PingTimeout)}
	return t, nil
}

// http2PingTimeout is how long an HTTP/2 server has to answer a PING,
// Go's default.
const http2PingTimeout = 15 * time.Second

// http2ConnWindow bounds what an HTTP/2 server may send on a connection
// before cargohash has read it. Go's client allows 1 GiB per connection
// and 4 MiB per stream, so HTTP2Streams streams of large crates could
// buffer 1 GiB in memory while the disk catches up; 32 MiB still lets one
// connection carry 320 MB/s at 100 ms round trips.
const http2ConnWindow = 32 << 20

// http2MaxFrame is the largest HTTP/2 frame cargohash accepts
// (SETTINGS_MAX_FRAME_SIZE): 1 MiB, the default of Go's HTTP/2 server, where
// Go's client asks for the protocol's minimum, 16 KiB. A server that
// honours it sends a crate as one DATA frame instead of one per 16 KiB:
// fewer frames for both sides to write and parse, and fewer reads here,
// each of which sends a WINDOW_UPDATE. Cold 232-crate prefetch at 20 ms,
// 40 pairs: 129.0 -> 124.2 ms wall, 139.5 -> 135.2 ms CPU. The read buffer
// of a connection grows to the largest frame it gets: at most 1 MiB.
const http2MaxFrame = 1 << 20

// certPool returns the roots named by NIX_SSL_CERT_FILE or SSL_CERT_FILE
// (first set wins), or nil for the system roots.
func certPool() (*x509.CertPool, error) {
	for _, env := range []string{"NIX_SSL_CERT_FILE", "SSL_CERT_FILE"} {
		file := os.Getenv(env)
		if file == "" {
			continue
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates in %s", env, file)
		}
		return pool, nil
	}
	return nil, nil
}

// redactingLogger is retryablehttp's logger: it drops the "[DEBUG] GET url"
// line retryablehttp prints for every request (a build log would hold one
// per crate) and redacts the URLs in the rest, which retryablehttp only
// strips of passwords.
type redactingLogger struct{ l *log.Logger }

func (r redactingLogger) Printf(format string, args ...any) {
	if format == "[DEBUG] %s %s" {
		return
	}
	msg := fmt.Sprintf(format, args...)
	r.l.Print(redact.Text(msg))
}

// retryAgain marks an error of a response handler as worth another attempt.
type retryAgain struct{ err error }

func (e *retryAgain) Error() string { return e.err.Error() }
func (e *retryAgain) Unwrap() error { return e.err }

// checkRetry decides whether an attempt is retried: connection errors
// (except certificate, scheme and redirect-loop errors), bodies that broke
// or stalled, 408, 429 and 5xx other than 501 are; other statuses and
// errors writing the download are not.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	retry, reason, cerr := retryDecision(ctx, resp, err)
	if st, ok := ctx.Value(attemptKey{}).(*attemptState); ok && retry {
		st.reason = reason
	}
	return retry, cerr
}

func retryDecision(ctx context.Context, resp *http.Response, err error) (bool, error, error) {
	if ctx.Err() != nil {
		return false, nil, ctx.Err()
	}
	if err != nil {
		var again *retryAgain
		var ne *NetError
		var ue *url.Error
		switch {
		case errors.As(err, &again), errors.As(err, &ne):
			return true, err, nil
		case errors.As(err, &ue):
			retry, cerr := retryablehttp.DefaultRetryPolicy(ctx, nil, err)
			return retry, ue.Err, cerr
		}
		return false, nil, nil
	}
	switch c := resp.StatusCode; {
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests,
		c >= 500 && c != http.StatusNotImplemented:
		return true, errors.New(resp.Status), nil
	}
	return false, nil, nil
}

// attemptKey is the context key of a download's *attemptState.
type attemptKey struct{}

// attemptState follows one download through retryablehttp's loop, which
// runs its hooks in the calling goroutine, one after the other.
type attemptState struct {
	crate  string
	reason error // why the last attempt is retried
}

// requestHook reports a retry as a Retrying event.
func (f *Fetcher) requestHook(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if attempt == 0 {
		return
	}
	if st, ok := req.Context().Value(attemptKey{}).(*attemptState); ok {
		f.emit(Event{Kind: Retrying, Crate: st.crate, Attempt: attempt + 1, Size: -1, Err: st.reason})
		st.reason = nil
	}
}

// backoffFunc waits exponentially longer (min·2ⁿ, at most max) with jitter
// (a random duration in the upper half), or as long as a 429 or 503
// response's Retry-After asks, but at most retryAfterMax.
func backoffFunc(retryAfterMax time.Duration) retryablehttp.Backoff {
	return func(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				return bounded(d, 0, retryAfterMax)
			}
		}
		d := min
		for i := 0; i < attempt && d < max; i++ {
			d *= 2
		}
		d = bounded(d, min, max)
		if half := d / 2; half > 0 {
			d = half + rand.N(half+1)
		}
		return d
	}
}

func bounded(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// errorHandler turns the last attempt's outcome into our error types once
// retryablehttp gives up.
func errorHandler(resp *http.Response, err error, attempts int) (*http.Response, error) {
	if err == nil && resp != nil {
		// A retryable status on the last attempt.
		herr := statusError(resp)
		herr.Attempts = attempts
		return nil, herr
	}
	if resp != nil {
		resp.Body.Close()
	}
	if err == nil {
		return nil, fmt.Errorf("giving up after %d attempts", attempts)
	}
	var again *retryAgain
	if errors.As(err, &again) {
		err = again.err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.Canceled) || errors.Is(ue.Err, context.DeadlineExceeded) {
			return nil, ue.Err
		}
		if u, perr := url.Parse(ue.URL); perr == nil {
			err = &NetError{Op: "GET", URL: redact.Parsed(u), Err: ue.Err}
		} else {
			err = &NetError{Op: "GET", URL: "<unparsable URL>", Err: ue.Err}
		}
	}
	var ne *NetError
	var he *HTTPError
	switch {
	case errors.As(err, &ne):
		ne.Attempts = attempts
	case errors.As(err, &he):
		he.Attempts = attempts
	}
	return nil, err
}

// statusError reads at most 64 KiB of an error response and closes it.
func statusError(resp *http.Response) *HTTPError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	method, u := "GET", ""
	if resp.Request != nil {
		method = resp.Request.Method
		u = redact.Parsed(resp.Request.URL)
	}
	return &HTTPError{Method: method, URL: u, StatusCode: resp.StatusCode, Status: resp.Status, Body: body, Attempts: 1}
}

// httpBody is a 200 response body being consumed. Read errors other than
// EOF become *NetError, which is retried.
type httpBody struct {
	ctx  context.Context // the caller's, not the watchdog's
	resp *http.Response
	url  string // redacted
}

func (b *httpBody) Read(p []byte) (int, error) {
	n, err := b.resp.Body.Read(p)
	if err != nil && err != io.EOF {
		if err := b.ctx.Err(); err != nil {
			return n, err
		}
		err = &NetError{Op: http.MethodGet, URL: b.url, Err: err}
	}
	return n, err
}

// size is the announced length of the body, -1 if unknown.
func (b *httpBody) size() int64 { return b.resp.ContentLength }

// readAll reads the whole body, failing (without retry) beyond limit bytes.
func (b *httpBody) readAll(limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(b, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", b.url, limit)
	}
	return data, nil
}

// get performs a GET of rawURL and hands a 200 response to consume, retrying
// the request together with consume while the failure is transient.
func (f *Fetcher) get(ctx context.Context, rawURL string, consume func(*httpBody) error) error {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSource, redact.URL(rawURL), err)
	}
	req.Header.Set("User-Agent", f.userAgent)
	redacted := redact.Parsed(req.URL)
	req.SetResponseHandler(func(resp *http.Response) error {
		defer func() {
			resp.Body.Close()
			resp.Body = http.NoBody // retryablehttp drains it before a retry
		}()
		if resp.StatusCode != http.StatusOK {
			return statusError(resp)
		}
		b := &httpBody{ctx: ctx, resp: resp, url: redacted}
		if resp.Request != nil {
			b.url = redact.Parsed(resp.Request.URL)
		}
		return consume(b)
	})
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// watchdog is a RoundTripper that cancels a request when it makes no
// progress — no response headers, then no body bytes — for timeout. The
// cancellation cause, ErrStalled, is reported as the error.
type watchdog struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (w *watchdog) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithCancelCause(parent)
	timer := time.AfterFunc(w.timeout, func() { cancel(ErrStalled) })
	watched := context.WithValue(ctx, stallTimerKey{}, &stallTimer{timer: timer, timeout: w.timeout})
	resp, err := w.next.RoundTrip(req.WithContext(watched))
	if err != nil {
		timer.Stop()
		if parent.Err() == nil && context.Cause(ctx) == ErrStalled {
			err = fmt.Errorf("no response for %v: %w", w.timeout, ErrStalled)
		}
		cancel(nil)
		return nil, err
	}
	timer.Reset(w.timeout)
	resp.Body = &watchedBody{rc: resp.Body, timer: timer, timeout: w.timeout, ctx: ctx, parent: parent, cancel: cancel}
	return resp, nil
}

// stallTimerKey is the context key of a request's *stallTimer.
type stallTimerKey struct{}

// stallTimer is the watchdog's timer of a request.
type stallTimer struct {
	timer   *time.Timer
	timeout time.Duration
}

// pauseWatchdog stops the watchdog of ctx's request while it waits for
// something other than the network (h2Conns, for a stream); call the
// function it returns when the wait is over.
func pauseWatchdog(ctx context.Context) (resume func()) {
	st, ok := ctx.Value(stallTimerKey{}).(*stallTimer)
	if !ok || !st.timer.Stop() {
		return func() {} // none, or it fired already
	}
	return func() { st.timer.Reset(st.timeout) }
}

// CloseIdleConnections passes the call on, so that http.Client's reaches
// the transport.
func (w *watchdog) CloseIdleConnections() {
	if c, ok := w.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type watchedBody struct {
	rc      io.ReadCloser
	timer   *time.Timer
	timeout time.Duration
	ctx     context.Context
	parent  context.Context
	cancel  context.CancelCauseFunc
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	if err != nil && err != io.EOF && b.parent.Err() == nil && context.Cause(b.ctx) == ErrStalled {
		err = fmt.Errorf("no data for %v: %w", b.timeout, ErrStalled)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
