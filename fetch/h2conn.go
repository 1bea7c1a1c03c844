package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// h2Conns is the innermost RoundTripper of a Fetcher that built its own
// Transport. It makes the connections of each https host itself
// (Transport.NewClientConn: the Transport's TLS roots, ALPN and HTTP/2
// settings, and the proxy the Transport would choose for the request),
// and when the server speaks HTTP/2, sends all of that host's requests as
// streams of at most HTTP2Conns connections:
//
//   - A connection says how many streams the server allows as soon as the
//     server's SETTINGS frame arrives, which the server sends right after
//     the handshake, and the gate opens to that many (gate.streams).
//     Through the Transport's own pool the gate could open only to the 100
//     streams Go's client assumes before SETTINGS, and to the rest when the
//     first response arrived: a round trip plus the server's time later.
//     In-process, 232 crates at 20 ms per request took 55 ms this way
//     against 72 ms through the pool.
//   - A connection carries at most HTTP2Streams streams. When every
//     stream of a host's connections is taken and requests wait, a second
//     connection is made, as cargo does (curl's limit of 2 connections
//     per host): a 1,500-crate lock from a server that allows 250 streams
//     goes in three round trips instead of six. Not before the first
//     connection's SETTINGS are known: until then its count of streams is
//     Go's guess. The gate is told the streams of the connection that may
//     still be made as if it were there (streams like the first's), so
//     that the requests that would use it reach h2Conns and make it. They
//     wait for it or for a stream of the first, whichever comes first:
//     a dial that hangs holds no request. Until its own SETTINGS arrive,
//     the second is taken to allow what the first does.
//   - A request for which no connection has a stream free and none can be
//     made waits for a stream of the least busy one, with the stall
//     watchdog stopped, where the pool would dial a connection for it. That
//     happens when the server allows fewer streams than the gate was
//     told, and for requests the gate does not count (redirects, index
//     files). (A server that allows fewer than the 100 streams Go's
//     client assumes until SETTINGS arrive gets up to 100 requests on its
//     first connection, where they wait, or are refused and sent again.)
//   - A connection that goes away (GOAWAY, closed when idle, broken) is
//     dropped when its state hook says so, and replaced by the next
//     request that finds no other or the others full; a request it failed
//     is sent once more (GET and HEAD only; cargohash sends nothing else),
//     and a refused one up to 8 times (not processed by the server).
//
// A host that answers in HTTP/1.1 gets its first request on the
// connection made to learn that, which is then closed; the rest go through
// the Transport's pool of HTTP1Conns keep-alive connections.
type h2Conns struct {
	t      *http.Transport
	dialer *http.Transport // t for NewClientConn (see newH2Conns)
	mu     sync.Mutex
	hosts  map[string]*h2Host // by host:port
	// dials is the context of the dials of second connections, which no
	// request waits for; CloseIdleConnections cancels it (and makes a new
	// one), so that none ends after it with a connection no one closes.
	dials     context.Context
	stopDials context.CancelFunc
}

// h2Host is the connections of one host. Nothing that may run a
// connection's state hook (SetStateHook, RoundTrip, Reserve, Release,
// Close) is called with its mu held: the hook (changed) takes it.
type h2Host struct {
	ready chan struct{} // closed when the first dial is over
	http1 bool          // the host speaks HTTP/1.1: use the Transport; set before ready is closed

	mu      sync.Mutex
	conns   []*h2Conn     // HTTP/2 connections that take requests
	dialing bool          // another connection is being made (dialMore)
	noMore  bool          // such a dial failed: make do with conns
	wake    chan struct{} // closed when a stream may have come free or a dial ended; nil if no one waits
	gates   []*gate       // told how many streams the connections allow
}

// h2Conn is one HTTP/2 connection of a host.
type h2Conn struct {
	cc      *http.ClientConn
	pending atomic.Int32 // requests pick chose it for that have no stream yet
	settled bool         // its server's SETTINGS arrived (h2Host.mu)
	streams int          // how many it allows, last seen with one free (h2Host.mu)
	gone    bool         // retired: closed once its last request is done
	closed  bool
}

// newH2Conns returns the h2Conns in front of t. Its connections are made
// by a copy of t that differs in two ways:
//   - no MaxConnsPerHost: in Go 1.26 a ClientConn that speaks HTTP/1.1
//     takes one from the Transport's count of the host's connections when
//     it is closed, though it never added one, and the Transport then
//     panics ("connCount underflow");
//   - the proxy is the one t chooses for the request the connection is
//     made for: NewClientConn asks with a URL of the bare host, without its
//     port (so a NO_PROXY entry with a port would not match).
func newH2Conns(t *http.Transport) *h2Conns {
	dialer := t.Clone()
	dialer.MaxConnsPerHost = 0
	dialer.Proxy = func(r *http.Request) (*url.URL, error) {
		if p, ok := r.Context().Value(proxyKey{}).(proxyChoice); ok {
			return p.url, p.err
		}
		return nil, nil
	}
	c := &h2Conns{t: t, dialer: dialer, hosts: map[string]*h2Host{}}
	c.dials, c.stopDials = context.WithCancel(context.Background())
	return c
}

// proxyKey is the context key of the proxyChoice of a connection's dial.
type proxyKey struct{}

type proxyChoice struct {
	url *url.URL
	err error
}

// errNoConn is pick's: the host has no connection left; make the first
// again.
var errNoConn = errors.New("no HTTP/2 connection")

func (c *h2Conns) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return c.t.RoundTrip(req)
	}
	ctx := req.Context()
	addr := hostPort(req.URL)
	g, _ := ctx.Value(gateKey{}).(*gate)
	if g != nil && g.addr != addr {
		g = nil // a redirect to another host: the gate is not its
	}
	resend := req.Method == http.MethodGet || req.Method == http.MethodHead
	for tries, refusals := 1, 0; ; {
		h, first, err := c.host(req, addr, g)
		switch {
		case err != nil:
			return nil, err
		case first != nil:
			resp, err := first.RoundTrip(req)
			if err != nil {
				first.Close()
				return nil, err
			}
			resp.Body = &closingBody{ReadCloser: resp.Body, conn: first}
			return resp, nil
		case h.http1:
			return c.t.RoundTrip(req)
		}
		hc, err := c.pick(req, addr, h)
		if errors.Is(err, errNoConn) {
			c.forget(addr, h)
			continue
		} else if err != nil {
			return nil, err
		}
		resp, err := hc.roundTrip(req)
		if err == nil {
			h.settle(hc)
			return resp, nil
		}
		if ctx.Err() != nil || !resend {
			return nil, err
		}
		switch {
		case refused(err) && refusals < 8:
			// Sent before the server's SETTINGS said it allows fewer
			// streams than Go's client assumes until then: not
			// processed.
			refusals++
		case tries < 3 && !hc.takesMore():
			tries++
			h.retire(hc)
		default:
			return nil, err // the request's own failure
		}
	}
}

// refused reports whether err is an HTTP/2 stream the server refused
// (REFUSED_STREAM: not processed, safe to send again). Go's HTTP/2 error
// types are not exported; should their text change, such a request goes
// back to the retries of a failed request instead (retryablehttp's, after
// a backoff).
func refused(err error) bool {
	return strings.Contains(err.Error(), "REFUSED_STREAM")
}

// host returns the host of addr, waiting for the request that makes its
// first connection or making it. When this call made the connection and
// it speaks HTTP/1.1, it is returned as first for the request to use and
// close.
func (c *h2Conns) host(req *http.Request, addr string, g *gate) (h *h2Host, first *http.ClientConn, err error) {
	for {
		c.mu.Lock()
		h = c.hosts[addr]
		if h == nil {
			h = &h2Host{ready: make(chan struct{})}
			c.hosts[addr] = h
			c.mu.Unlock()
			return c.first(req, addr, h, g)
		}
		c.mu.Unlock()
		select {
		case <-h.ready:
		case <-req.Context().Done():
			return nil, nil, req.Context().Err()
		}
		h.mu.Lock()
		failed := !h.http1 && len(h.conns) == 0 && !h.dialing
		h.mu.Unlock()
		switch {
		case h.http1:
			if g != nil {
				g.learnConn(false)
			}
			return h, nil, nil
		case !failed:
			h.watch(g)
			return h, nil, nil
		}
		// Its first dial failed, or its connections are gone: it is
		// forgotten, make another.
		c.forget(addr, h)
	}
}

// first makes h's first connection, which tells its protocol.
func (c *h2Conns) first(req *http.Request, addr string, h *h2Host, g *gate) (*h2Host, *http.ClientConn, error) {
	defer close(h.ready)
	cc, h2, err := c.dial(req, addr)
	switch {
	case err != nil:
		c.forget(addr, h)
		return nil, nil, err
	case !h2:
		h.http1 = true
		if g != nil {
			g.learnConn(false)
		}
		return h, cc, nil
	}
	hc := &h2Conn{cc: cc}
	h.mu.Lock()
	h.conns = append(h.conns, hc)
	h.mu.Unlock()
	hc.watch(h)
	h.watch(g)
	return h, nil, nil
}

// dial makes a connection to addr for req, and reports whether it speaks
// HTTP/2.
func (c *h2Conns) dial(req *http.Request, addr string) (cc *http.ClientConn, h2 bool, err error) {
	ctx := req.Context()
	if c.t.Proxy != nil {
		u, err := c.t.Proxy(req)
		ctx = context.WithValue(ctx, proxyKey{}, proxyChoice{u, err})
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			h2 = err == nil && cs.NegotiatedProtocol == "h2"
		},
	})
	cc, err = c.dialer.NewClientConn(ctx, "https", addr)
	return cc, h2, err
}

// pick returns a connection of h for req: one with a stream free; else,
// when fewer than HTTP2Conns are there and one has had the server's
// SETTINGS, it starts making another (dialMore) and waits, like the
// requests that come while it is made, for that connection or a free
// stream, whichever comes first; else the least busy one, where req
// waits for a stream. errNoConn: h has none left. The request is counted
// as pending on the connection until it has its stream (h2Conn.roundTrip).
//
// Not ClientConn.Reserve: a reservation is turned into a stream only
// after the request takes the connection's lock for new streams, which
// the first request waiting for a stream holds; when the server's
// SETTINGS allow fewer streams than were reserved before they arrived, the
// reservations alone fill the connection and nothing moves again (seen
// with a server allowing 64: 100 requests stuck for the test's timeout).
func (c *h2Conns) pick(req *http.Request, addr string, h *h2Host) (*h2Conn, error) {
	ctx := req.Context()
	for {
		h.mu.Lock()
		var least *h2Conn
		for _, hc := range h.conns {
			if h.freeLocked(hc) > 0 {
				hc.pending.Add(1)
				h.mu.Unlock()
				return hc, nil
			}
			if least == nil || hc.busyLocked() < least.busyLocked() {
				least = hc
			}
		}
		if h.mayAddLocked() {
			h.dialing = true // the gates counted it already (tellLocked)
			go c.dialMore(req, addr, h)
		}
		if h.dialing {
			if h.wake == nil {
				h.wake = make(chan struct{})
			}
			wake := h.wake
			h.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		defer h.mu.Unlock()
		if least == nil {
			return nil, errNoConn
		}
		least.pending.Add(1)
		return least, nil
	}
}

// dialMore makes another connection for h, which req found full. No
// request waits for it alone: a server that accepts a connection and
// never answers holds only the dial, for the Transport's handshake
// timeout, while the requests go on the first connection as its streams
// come free. A failed dial leaves h with the connections it has.
func (c *h2Conns) dialMore(req *http.Request, addr string, h *h2Host) {
	c.mu.Lock()
	ctx := c.dials
	c.mu.Unlock()
	cc, h2, err := c.dial(req.WithContext(ctx), addr)
	if err == nil && !h2 {
		cc.Close()
		err = errors.New("HTTP/1.1 on a second connection to an HTTP/2 host")
	}
	var hc *h2Conn
	h.mu.Lock()
	h.dialing = false
	switch {
	case err == nil && ctx.Err() != nil:
		// Made as CloseIdleConnections stopped the dials, which looks at
		// h.conns after (with h.mu): no one would close it.
		defer cc.Close()
	case err == nil:
		hc = &h2Conn{cc: cc}
		h.conns = append(h.conns, hc)
	case ctx.Err() == nil:
		h.noMore = true // the server's choice, or the network's
	}
	h.tellLocked()
	h.wakeLocked()
	h.mu.Unlock()
	if hc != nil {
		hc.watch(h)
	}
}

// wakeLocked wakes the requests waiting in pick. h.mu is held.
func (h *h2Host) wakeLocked() {
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
}

// freeLocked is how many more requests hc takes at once: streams free (at
// most HTTP2Streams in all), less those of requests picked for it that
// have not taken theirs yet.
// Until hc's SETTINGS arrive, Go's client counts 100 streams free; when
// another connection of the host had its SETTINGS, hc is taken to allow
// as many as that one, which saves requests a refusal by a server that
// allows fewer. h.mu is held.
func (h *h2Host) freeLocked(hc *h2Conn) int {
	free := min(hc.cc.Available(), HTTP2Streams-hc.cc.InFlight())
	if !hc.settled {
		for _, other := range h.conns {
			if other.settled && other.cc.Err() == nil {
				free = min(free, other.streamsNow()-hc.cc.InFlight())
				break
			}
		}
	}
	return free - int(hc.pending.Load())
}

// streamsNow is how many streams hc allows as Go's client sees it now:
// those in flight and those free.
func (hc *h2Conn) streamsNow() int {
	return hc.cc.InFlight() + hc.cc.Available()
}

// busyLocked is how many requests hc has, in flight or about to be.
// h2Host.mu is held.
func (hc *h2Conn) busyLocked() int {
	return hc.cc.InFlight() + int(hc.pending.Load())
}

// mayAddLocked reports whether h may make another connection: fewer than
// HTTP2Conns, none being made, none failed, and the number of streams of
// one known from its server's SETTINGS. h.mu is held.
func (h *h2Host) mayAddLocked() bool {
	if len(h.conns) >= HTTP2Conns || h.dialing || h.noMore {
		return false
	}
	for _, hc := range h.conns {
		if hc.settled {
			return true
		}
	}
	return false
}

// watch sets hc's state hook, which tells h's gates of its changes. Not
// with h.mu held: SetStateHook may run the hook at once.
func (hc *h2Conn) watch(h *h2Host) {
	hc.cc.SetStateHook(func(*http.ClientConn) { h.changed(hc) })
}

// roundTrip sends req, which pick chose hc for, as a stream of hc. When
// no stream is free (SETTINGS that say the server allows fewer than Go
// assumed may arrive just before the request goes, and pick may choose a
// full connection), ClientConn.RoundTrip waits for one (or fails at once
// if the connection takes no more requests), so the stall watchdog is
// stopped until the request is written: until then it is not on the
// network. Then it is no longer pending: it has its stream.
func (hc *h2Conn) roundTrip(req *http.Request) (*http.Response, error) {
	resume := pauseWatchdog(req.Context())
	sent := sync.OnceFunc(func() { // with the connection's write lock held
		hc.pending.Add(-1)
		resume()
	})
	defer sent()
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteHeaders: sent})
	return hc.cc.RoundTrip(req.WithContext(ctx))
}

// takesMore reports whether the connection would take another request
// now, after one failed on it: if not, it is closed or has had a GOAWAY
// (the failed request's stream is free, unless the connection is full
// with requests the gate does not count, and is then replaced for
// nothing).
func (hc *h2Conn) takesMore() bool {
	if hc.cc.Reserve() != nil {
		return false
	}
	hc.cc.Release()
	return true
}

// settle notes that a response arrived on hc: its server's SETTINGS did
// before, whatever they said.
func (h *h2Host) settle(hc *h2Conn) {
	h.mu.Lock()
	if !hc.settled {
		hc.settled = true
		h.noteStreamsLocked(hc)
		h.tellLocked()
	}
	h.mu.Unlock()
}

// watch tells g how many streams the connections allow, now and whenever
// that changes.
func (h *h2Host) watch(g *gate) {
	if g == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.gates {
		if w == g {
			return
		}
	}
	h.gates = append(h.gates, g)
	h.tellLocked()
}

// changed is a connection's state hook: requests finished, the server's
// SETTINGS arrived, or it closed.
//
// A connection that takes no more requests (closed, or a GOAWAY: no
// stream free though fewer are in flight than it allows) is retired here,
// so that pick neither sends requests to it nor counts it.
func (h *h2Host) changed(hc *h2Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cc := hc.cc
	inFlight, free := cc.InFlight(), cc.Available()
	if free > 0 && inFlight+free != http2EarlyStreams {
		hc.settled = true // Go's guess until SETTINGS is exactly that
	}
	h.noteStreamsLocked(hc)
	if !hc.gone && (cc.Err() != nil || free == 0 && inFlight < hc.streams) {
		h.retireLocked(hc)
	}
	if hc.doneLocked() {
		go cc.Close()
	}
	h.tellLocked()
	h.wakeLocked()
}

// noteStreamsLocked notes how many streams hc allows, once its SETTINGS
// are known and while it has one free. h.mu is held.
func (h *h2Host) noteStreamsLocked(hc *h2Conn) {
	if n := hc.cc.Available(); hc.settled && n > 0 {
		hc.streams = hc.cc.InFlight() + n
	}
}

// tellLocked tells the gates how many requests the host's connections
// take at once, each at most HTTP2Streams, and as many more as the first
// if another may be made (mayAddLocked) or is being made. h.mu is held.
func (h *h2Host) tellLocked() {
	n, most := 0, 0
	for _, hc := range h.conns {
		if hc.cc.Err() != nil {
			continue
		}
		streams := min(HTTP2Streams, hc.streamsNow())
		n += streams
		if hc.settled {
			most = max(most, streams)
		}
	}
	if h.dialing || h.mayAddLocked() {
		n += most
	}
	if n > 0 {
		for _, g := range h.gates {
			g.streams(n)
		}
	}
}

// retire stops giving out hc and closes it once its last request is done;
// the next request that finds no other connection makes a new one.
func (h *h2Host) retire(hc *h2Conn) {
	h.mu.Lock()
	h.retireLocked(hc)
	done := hc.doneLocked()
	h.tellLocked()
	h.wakeLocked() // another connection may be made now
	h.mu.Unlock()
	if done {
		hc.cc.Close()
	}
}

// doneLocked reports, once, that hc is retired and its last request is
// done: the caller closes it. h2Host.mu is held.
func (hc *h2Conn) doneLocked() bool {
	if !hc.gone || hc.closed || hc.cc.InFlight() > 0 {
		return false
	}
	hc.closed = true
	return true
}

// retireLocked takes hc out of h's connections. h.mu is held.
func (h *h2Host) retireLocked(hc *h2Conn) {
	if i := slices.Index(h.conns, hc); i >= 0 {
		h.conns = slices.Delete(h.conns, i, i+1)
	}
	hc.gone = true
}

func (c *h2Conns) forget(addr string, h *h2Host) {
	c.mu.Lock()
	if c.hosts[addr] == h {
		delete(c.hosts, addr)
	}
	c.mu.Unlock()
}

// CloseIdleConnections closes the HTTP/2 connections no request is
// using, and retires the others, which close when their last request is
// done (Fetcher.Close calls it once no request is left; streams being
// reset still count as in flight for a moment); then the Transport's idle
// connections. It stops the dials of second connections under way.
func (c *h2Conns) CloseIdleConnections() {
	c.mu.Lock()
	c.stopDials()
	c.dials, c.stopDials = context.WithCancel(context.Background())
	var hosts []*h2Host
	for _, h := range c.hosts {
		select {
		case <-h.ready:
			hosts = append(hosts, h)
		default:
		}
	}
	c.mu.Unlock()
	for _, h := range hosts {
		h.mu.Lock()
		conns := slices.Clone(h.conns)
		h.mu.Unlock()
		for _, hc := range conns {
			h.retire(hc)
		}
	}
	c.t.CloseIdleConnections()
}

// closingBody closes the connection of its response when it is closed.
type closingBody struct {
	io.ReadCloser
	conn *http.ClientConn
}

func (b *closingBody) Close() error {
	err := b.ReadCloser.Close()
	b.conn.Close()
	return err
}
