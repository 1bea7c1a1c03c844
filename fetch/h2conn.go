package fetch

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
)

// h2Conns is the innermost RoundTripper of a Fetcher that built its own
// Transport. It makes the connection of each https host itself
// (Transport.NewClientConn: the Transport's TLS roots, ALPN and HTTP/2
// settings, and the proxy the Transport would choose for the request),
// and when the server speaks HTTP/2, sends all of that host's requests as
// streams of that one connection:
//
//   - The connection says how many streams the server allows as soon as
//     the server's SETTINGS frame arrives, which the server sends right
//     after the handshake, and the gate opens to that many (gate.streams).
//     Through the Transport's own pool the gate could open only to the 100
//     streams Go's client assumes before SETTINGS, and to the rest when the
//     first response arrived: a round trip plus the server's time later.
//     In-process, 232 crates at 20 ms per request took 55 ms this way
//     against 72 ms through the pool.
//   - A request for which the connection has no stream free waits for one,
//     with the stall watchdog stopped, where the pool would dial a
//     connection for it: a server that allows 128 streams is sent 128 at
//     once on one connection, as cargo does. That happens when the server
//     allows fewer than the 100 Go assumes until its SETTINGS arrive (the
//     connection tells only of more streams, not of fewer), and for
//     requests the gate does not count (redirects, index files).
//   - A connection that goes away (GOAWAY, closed when idle, broken) is
//     replaced by the next request, and a request it failed is sent once
//     more on the new one (GET and HEAD only; cargohash sends nothing else).
//
// A host that answers in HTTP/1.1 gets its first request on the
// connection made to learn that, which is then closed; the rest go through
// the Transport's pool of HTTP1Conns keep-alive connections.
type h2Conns struct {
	t      *http.Transport
	dialer *http.Transport // t for NewClientConn (see newH2Conns)
	mu     sync.Mutex
	hosts  map[string]*h2Host // by host:port
}

// h2Host is the connection of one host.
type h2Host struct {
	ready chan struct{}    // closed when the dial is over
	cc    *http.ClientConn // HTTP/2; set before ready is closed
	http1 bool             // the host speaks HTTP/1.1: use the Transport

	mu     sync.Mutex
	gates  []*gate // told how many streams the server allows
	gone   bool    // replaced: closed once its last request is done
	closed bool
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
	return &h2Conns{t: t, dialer: dialer, hosts: map[string]*h2Host{}}
}

// proxyKey is the context key of the proxyChoice of a connection's dial.
type proxyKey struct{}

type proxyChoice struct {
	url *url.URL
	err error
}

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
	for tries := 1; ; tries++ {
		h, first, err := c.conn(req, addr, g)
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
		resp, err := h.roundTrip(req)
		if err == nil || ctx.Err() != nil || !resend || tries == 3 {
			return resp, err
		}
		switch {
		case refused(err):
			// Sent before the server's SETTINGS said it allows fewer
			// streams than Go's client assumes until then: not
			// processed.
		case !h.takesMore():
			c.retire(addr, h)
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

// conn returns the connection of addr, waiting for the request that dials
// it or dialing it. When this call made a connection and it speaks
// HTTP/1.1, it is returned as first for the request to use and close.
func (c *h2Conns) conn(req *http.Request, addr string, g *gate) (h *h2Host, first *http.ClientConn, err error) {
	for {
		c.mu.Lock()
		h = c.hosts[addr]
		if h == nil {
			h = &h2Host{ready: make(chan struct{})}
			c.hosts[addr] = h
			c.mu.Unlock()
			return c.dial(req, addr, h, g)
		}
		c.mu.Unlock()
		select {
		case <-h.ready:
		case <-req.Context().Done():
			return nil, nil, req.Context().Err()
		}
		switch {
		case h.http1:
			if g != nil {
				g.learnConn(false)
			}
			return h, nil, nil
		case h.cc != nil:
			h.watch(g)
			return h, nil, nil
		}
		// Its dial failed and it is forgotten: dial again.
	}
}

func (c *h2Conns) dial(req *http.Request, addr string, h *h2Host, g *gate) (*h2Host, *http.ClientConn, error) {
	defer close(h.ready)
	ctx := req.Context()
	if c.t.Proxy != nil {
		u, err := c.t.Proxy(req)
		ctx = context.WithValue(ctx, proxyKey{}, proxyChoice{u, err})
	}
	h2 := false
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			h2 = err == nil && cs.NegotiatedProtocol == "h2"
		},
	})
	cc, err := c.dialer.NewClientConn(ctx, "https", addr)
	if err != nil {
		c.forget(addr, h)
		return nil, nil, err
	}
	if !h2 {
		h.http1 = true
		if g != nil {
			g.learnConn(false)
		}
		return h, cc, nil
	}
	h.cc = cc
	cc.SetStateHook(h.changed)
	h.watch(g)
	return h, nil, nil
}

// roundTrip sends req as a stream of the connection. When no stream is
// free, ClientConn.RoundTrip waits for one (or fails at once if the
// connection takes no more requests), so the stall watchdog is stopped
// until the request is written: until then it is not on the network. Also
// when a stream seemed free: the SETTINGS that say the server allows fewer
// than Go assumed may arrive just before the request goes.
func (h *h2Host) roundTrip(req *http.Request) (*http.Response, error) {
	resume := sync.OnceFunc(pauseWatchdog(req.Context()))
	defer resume()
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteHeaders: resume})
	return h.cc.RoundTrip(req.WithContext(ctx))
}

// takesMore reports whether the connection would take another request
// now, after one failed on it: if not, it is closed or has had a GOAWAY
// (the failed request's stream is free, unless the connection is full
// with requests the gate does not count, and is then replaced for
// nothing).
func (h *h2Host) takesMore() bool {
	if h.cc.Reserve() != nil {
		return false
	}
	h.cc.Release()
	return true
}

// watch tells g how many streams the connection allows, now and whenever
// that grows.
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

// changed is the connection's state hook: requests finished, the server's
// SETTINGS arrived, or it closed.
func (h *h2Host) changed(cc *http.ClientConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone && !h.closed && cc.InFlight() == 0 {
		h.closed = true
		go cc.Close()
	}
	h.tellLocked()
}

func (h *h2Host) tellLocked() {
	if h.gone || h.cc.Err() != nil {
		return
	}
	if n := h.cc.Available(); n > 0 {
		for _, g := range h.gates {
			g.streams(h.cc.InFlight() + n)
		}
	}
}

// retire stops giving out h's connection and closes it once its last
// request is done; the next request dials a new one.
func (c *h2Conns) retire(addr string, h *h2Host) {
	c.forget(addr, h)
	h.retire()
}

// retire marks h's connection gone and closes it if no request uses it;
// otherwise its state hook does when the last one is done.
func (h *h2Host) retire() {
	h.mu.Lock()
	h.gone = true
	idle := !h.closed && h.cc.InFlight() == 0
	h.closed = h.closed || idle
	h.mu.Unlock()
	if idle {
		h.cc.Close()
	}
}

func (c *h2Conns) forget(addr string, h *h2Host) {
	c.mu.Lock()
	if c.hosts[addr] == h {
		delete(c.hosts, addr)
	}
	c.mu.Unlock()
}

// CloseIdleConnections closes the HTTP/2 connections no request is using,
// and the Transport's idle ones.
func (c *h2Conns) CloseIdleConnections() {
	c.mu.Lock()
	var idle []*h2Host
	for addr, h := range c.hosts {
		select {
		case <-h.ready:
		default:
			continue
		}
		if h.cc != nil && h.cc.InFlight() == 0 {
			delete(c.hosts, addr)
			idle = append(idle, h)
		}
	}
	c.mu.Unlock()
	for _, h := range idle {
		h.retire()
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
