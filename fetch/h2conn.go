package fetch

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
)

// h2Conns is the innermost RoundTripper of a Fetcher that built its own
// Transport. It makes the connection of each https host itself
// (Transport.NewClientConn: the Transport's proxy, TLS roots and ALPN,
// and its HTTP/2 settings), and when the server speaks HTTP/2, sends all
// of that host's requests as streams of that one connection:
//
//   - The connection says how many streams the server allows as soon as
//     the server's SETTINGS frame arrives, which the server sends right
//     after the handshake, and the gate opens to that many (gate.streams).
//     Through the Transport's own pool the gate could open only to the 100
//     streams Go's client assumes before SETTINGS, and to the rest when the
//     first response arrived: a round trip plus the server's time later.
//     In-process, 232 crates at 20 ms per request took 55 ms this way
//     against 72 ms through the pool.
//   - Requests beyond what the server allows wait for a stream of this
//     connection (a ClientConn waits when it is full), where the pool would
//     dial a connection for them: a server that allows 128 streams is sent
//     128 at once on one connection, as cargo does.
//   - A connection that goes away (GOAWAY, closed when idle, broken) is
//     replaced by the next request, and a request it failed is sent once
//     more on the new one: every request is a GET.
//
// A host that answers in HTTP/1.1 gets its first request on the
// connection made to learn that, which is then closed; the rest go through
// the Transport's pool of HTTP1Conns keep-alive connections.
type h2Conns struct {
	t      *http.Transport
	dialer *http.Transport // t without MaxConnsPerHost, for NewClientConn
	mu     sync.Mutex
	hosts  map[string]*h2Host // by host:port
}

// h2Host is the connection of one host.
type h2Host struct {
	ready chan struct{}    // closed when the dial is over
	cc    *http.ClientConn // HTTP/2; set before ready is closed
	http1 bool             // the host speaks HTTP/1.1: use the Transport

	mu    sync.Mutex
	gates []*gate // told how many streams the server allows
	gone  bool    // replaced: closed once its last request is done
}

// newH2Conns returns the h2Conns in front of t. Its connections are made
// by a copy of t without MaxConnsPerHost: in Go 1.26 a ClientConn that
// speaks HTTP/1.1 takes one from the Transport's count of the host's
// connections when it is closed, though it never added one, and the
// Transport then panics ("connCount underflow").
func newH2Conns(t *http.Transport) *h2Conns {
	dialer := t.Clone()
	dialer.MaxConnsPerHost = 0
	return &h2Conns{t: t, dialer: dialer, hosts: map[string]*h2Host{}}
}

func (c *h2Conns) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return c.t.RoundTrip(req)
	}
	addr := hostPort(req.URL)
	g, _ := req.Context().Value(gateKey{}).(*gate)
	if g != nil && g.addr != addr {
		g = nil // a redirect to another host: the gate is not its
	}
	for tries := 1; ; tries++ {
		h, first, err := c.conn(req.Context(), addr, g)
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
		resp, err := h.cc.RoundTrip(req)
		if err == nil || req.Context().Err() != nil || tries == 3 {
			return resp, err
		}
		switch {
		case refused(err):
			// Sent before the server's SETTINGS said it allows fewer
			// streams than Go's client assumes until then: not
			// processed, and the connection now waits for a stream.
		case h.cc.Err() != nil || h.cc.Available() == 0:
			// Closed, or not usable (GOAWAY): a full connection
			// would have waited for a stream instead.
			c.retire(addr, h)
		default:
			return nil, err // the request's own failure
		}
	}
}

// refused reports whether err is an HTTP/2 stream the server refused
// (REFUSED_STREAM: not processed, safe to send again). Go's HTTP/2 error
// types are not exported; should their text change, such a request is
// sent on a new connection instead.
func refused(err error) bool {
	return strings.Contains(err.Error(), "REFUSED_STREAM")
}

// conn returns the connection of addr, waiting for the request that dials
// it or dialing it. When this call made a connection and it speaks
// HTTP/1.1, it is returned as first for the request to use and close.
func (c *h2Conns) conn(ctx context.Context, addr string, g *gate) (h *h2Host, first *http.ClientConn, err error) {
	for {
		c.mu.Lock()
		h = c.hosts[addr]
		if h == nil {
			h = &h2Host{ready: make(chan struct{})}
			c.hosts[addr] = h
			c.mu.Unlock()
			return c.dial(ctx, addr, h, g)
		}
		c.mu.Unlock()
		select {
		case <-h.ready:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
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

func (c *h2Conns) dial(ctx context.Context, addr string, h *h2Host, g *gate) (*h2Host, *http.ClientConn, error) {
	defer close(h.ready)
	cc, err := c.dialer.NewClientConn(ctx, "https", addr)
	if err != nil {
		c.forget(addr, h)
		return nil, nil, err
	}
	// An HTTP/1.1 connection takes one request at a time; an HTTP/2 one
	// the 100 streams Go's client assumes until the server says.
	if cc.Available() <= 1 {
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

// watch tells g how many streams the connection allows, now and whenever
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

// changed is the connection's state hook: requests finished, the server's
// SETTINGS arrived, or it closed.
func (h *h2Host) changed(cc *http.ClientConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		if cc.InFlight() == 0 {
			go cc.Close()
		}
		return
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
	h.mu.Lock()
	h.gone = true
	idle := h.cc.InFlight() == 0
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
		h.cc.Close()
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
